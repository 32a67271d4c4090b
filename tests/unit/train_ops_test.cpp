// Every training op's backward against central finite differences of its forward (double sums of
// f32 forwards, so the tolerance is loose but catches any wrong term): a random scalar objective
// L = sum(out * w) whose gradient the backward must reproduce.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "kernels/cpu/train_ops.h"
#include "test_util.h"

namespace {

namespace tr = mg::cpu::train;
using Vec = std::vector<float>;

// Checks analytic[i] against the finite-difference gradient of f at x for a sample of indices.
void check_fd(const std::function<double()>& f, Vec& x, const Vec& analytic, const char* what, float h = 1e-2f) {
  ASSERT_EQ(x.size(), analytic.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float keep = x[i];
    x[i] = keep + h;
    const double up = f();
    x[i] = keep - h;
    const double down = f();
    x[i] = keep;
    const double fd = (up - down) / (2.0 * h);
    num += (fd - analytic[i]) * (fd - analytic[i]);
    den += fd * fd;
  }
  EXPECT_LT(std::sqrt(num / std::max(den, 1e-30)), 2e-3) << what;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

TEST(TrainOps, LinearWithLoraMatchesFiniteDifferences) {
  const int64_t N = 5, I = 6, O = 7, R = 3;
  const float s = 1.5f;
  Vec x = mgtest::random_vector(N * I, 1), W = mgtest::random_vector(O * I, 2), A = mgtest::random_vector(R * I, 3),
      B = mgtest::random_vector(O * R, 4), w = mgtest::random_vector(N * O, 5);
  mg::cpu::Exec ex;
  auto forward = [&]() {
    Vec y(N * O);
    tr::LoraCache c;
    tr::linear_forward(ex, x.data(), I, W.data(), N, I, O, {y.data(), O}, 0.0f);
    tr::lora_forward(ex, x.data(), I, A.data(), B.data(), N, I, O, R, s, {}, 0.0f, {y.data(), O}, c);
    return dot(y, w);
  };
  Vec y(N * O, 0.0f), dx(N * I, 0.0f), dA(R * I, 0.0f), dB(O * R, 0.0f);
  tr::LoraCache c;
  tr::linear_forward(ex, x.data(), I, W.data(), N, I, O, {y.data(), O}, 0.0f);
  tr::lora_forward(ex, x.data(), I, A.data(), B.data(), N, I, O, R, s, {}, 0.0f, {y.data(), O}, c);
  tr::linear_backward_input(ex, w.data(), O, W.data(), N, I, O, {dx.data(), I});
  tr::lora_backward(ex, w.data(), O, x.data(), I, A.data(), B.data(), N, I, O, R, s, {}, 0.0f, c, dA.data(), dB.data(),
                    {dx.data(), I});
  check_fd(forward, x, dx, "dx");
  check_fd(forward, A, dA, "dA");
  check_fd(forward, B, dB, "dB");
}

TEST(TrainOps, LoraDropoutMatchesFiniteDifferences) {
  const int64_t N = 4, I = 5, O = 3, R = 2;
  const float s = 2.0f, p = 0.25f;
  Vec x = mgtest::random_vector(N * I, 11), A = mgtest::random_vector(R * I, 12), B = mgtest::random_vector(O * R, 13),
      w = mgtest::random_vector(N * O, 14);
  std::vector<uint8_t> keep(N * I);
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = (i * 7 + 3) % 4 != 0;
  mg::cpu::Exec ex;
  auto forward = [&]() {
    Vec y(N * O, 0.0f);
    tr::LoraCache c;
    tr::lora_forward(ex, x.data(), I, A.data(), B.data(), N, I, O, R, s, keep, p, {y.data(), O}, c);
    return dot(y, w);
  };
  Vec y(N * O, 0.0f), dx(N * I, 0.0f), dA(R * I, 0.0f), dB(O * R, 0.0f);
  tr::LoraCache c;
  tr::lora_forward(ex, x.data(), I, A.data(), B.data(), N, I, O, R, s, keep, p, {y.data(), O}, c);
  tr::lora_backward(ex, w.data(), O, x.data(), I, A.data(), B.data(), N, I, O, R, s, keep, p, c, dA.data(), dB.data(),
                    {dx.data(), I});
  check_fd(forward, x, dx, "dx");
  check_fd(forward, A, dA, "dA");
  check_fd(forward, B, dB, "dB");
}

void attention_fd(bool causal, int64_t Tq, int64_t Tk) {
  const int H = 2;
  const int64_t hd = 3, D = H * hd;
  const float scale = 0.57f;
  Vec q = mgtest::random_vector(Tq * D, 21), k = mgtest::random_vector(Tk * D, 22), v = mgtest::random_vector(Tk * D, 23),
      w = mgtest::random_vector(Tq * D, 24);
  mg::cpu::Exec ex;
  Vec out(Tq * D), probs(H * Tq * Tk);
  auto forward = [&]() {
    tr::attention_forward(ex, q.data(), D, k.data(), D, v.data(), D, Tq, Tk, H, hd, scale, causal, out.data(), D,
                          probs.data());
    return dot(out, w);
  };
  forward();
  Vec dq(Tq * D, 0.0f), dk(Tk * D, 0.0f), dv(Tk * D, 0.0f);
  tr::attention_backward(ex, w.data(), D, q.data(), D, k.data(), D, v.data(), D, probs.data(), Tq, Tk, H, hd, scale,
                         dq.data(), D, dk.data(), D, dv.data(), D);
  check_fd(forward, q, dq, "dq");
  check_fd(forward, k, dk, "dk");
  check_fd(forward, v, dv, "dv");
}

TEST(TrainOps, CausalSelfAttentionMatchesFiniteDifferences) { attention_fd(true, 5, 5); }
TEST(TrainOps, CrossAttentionMatchesFiniteDifferences) { attention_fd(false, 5, 3); }

TEST(TrainOps, LayerNormMatchesFiniteDifferences) {
  const int64_t N = 3, D = 8;
  Vec x = mgtest::random_vector(N * D, 31), g = mgtest::random_vector(D, 32), b = mgtest::random_vector(D, 33),
      w = mgtest::random_vector(N * D, 34);
  mg::cpu::Exec ex;
  Vec y(N * D), mean(N), rstd(N);
  auto forward = [&]() {
    tr::layer_norm_forward(ex, x.data(), g.data(), b.data(), N, D, 1e-5f, y.data(), mean.data(), rstd.data());
    return dot(y, w);
  };
  forward();
  Vec dx(N * D, 0.0f);
  tr::layer_norm_backward(ex, w.data(), x.data(), g.data(), mean.data(), rstd.data(), N, D, dx.data());
  check_fd(forward, x, dx, "dx");
}

TEST(TrainOps, GeluMatchesFiniteDifferences) {
  Vec x = mgtest::random_vector(40, 41), w = mgtest::random_vector(40, 42);
  for (float& v : x) v *= 3.0f;
  mg::cpu::Exec ex;
  Vec y(40);
  auto forward = [&]() {
    tr::gelu_forward(ex, x.data(), y.data(), 40);
    return dot(y, w);
  };
  Vec dx(40, 0.0f);
  tr::gelu_backward(ex, w.data(), x.data(), dx.data(), 40);
  check_fd(forward, x, dx, "dx");
}

TEST(TrainOps, MaskedCrossEntropyMatchesFiniteDifferences) {
  const int64_t N = 5, V = 6;
  const int K = 3;
  Vec logits = mgtest::random_vector(N * K * V, 51);
  for (float& v : logits) v *= 3.0f;
  std::vector<int32_t> t(N * K);
  for (size_t i = 0; i < t.size(); ++i) t[i] = int32_t((i * 5 + 1) % V);
  t[1] = -1;
  t[3 * K + 2] = -1;
  mg::cpu::Exec ex;
  auto forward = [&]() { return tr::cross_entropy_forward_backward(ex, logits.data(), t.data(), N, K, V, 1.0f, nullptr, nullptr); };
  Vec d(N * K * V);
  tr::cross_entropy_forward_backward(ex, logits.data(), t.data(), N, K, V, 1.0f, d.data(), nullptr);
  check_fd(forward, logits, d, "dlogits", 1e-3f);
  for (int64_t j = 0; j < V; ++j) EXPECT_EQ(d[1 * V + j], 0.0f) << "a masked position has no gradient";
}

}  // namespace
