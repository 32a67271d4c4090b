// The training ops against PyTorch autograd: tests/data/golden/train/ops.safetensors holds inputs,
// upstream gradients and torch's outputs and input gradients (tools/reference/make_train_goldens.py).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kernels/cpu/train_ops.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

namespace tr = mg::cpu::train;
using Vec = std::vector<float>;

class TrainOpsParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new std::map<std::string, mg::Tensor>(
        mg::load_safetensors(mgtest::golden_dir() + "/train/ops.safetensors"));
  }
  static void TearDownTestSuite() { delete golden_; }
  static Vec g(const std::string& name) {
    auto it = golden_->find(name);
    if (it == golden_->end()) throw mg::Error("golden tensor " + name + " is missing from train/ops.safetensors");
    return it->second.to_vector();
  }
  static int64_t dim(const std::string& name, int i) { return golden_->at(name).dim(i); }
  static std::map<std::string, mg::Tensor>* golden_;
};
std::map<std::string, mg::Tensor>* TrainOpsParity::golden_ = nullptr;

constexpr double kTol = 1e-5;

TEST_F(TrainOpsParity, LinearWithLora) {
  const Vec x = g("linear.x"), W = g("linear.W"), A = g("linear.A"), B = g("linear.B"), dy = g("linear.dy");
  const int64_t N = dim("linear.x", 0), I = dim("linear.x", 1), O = dim("linear.W", 0), R = dim("linear.A", 0);
  mg::cpu::Exec ex;
  Vec y(N * O), dx(N * I, 0.0f), dA(R * I, 0.0f), dB(O * R, 0.0f);
  tr::LoraCache c;
  tr::linear_forward(ex, x.data(), I, W.data(), N, I, O, {y.data(), O}, 0.0f);
  tr::lora_forward(ex, x.data(), I, A.data(), B.data(), N, I, O, R, 1.5f, {}, 0.0f, {y.data(), O}, c);
  tr::linear_backward_input(ex, dy.data(), O, W.data(), N, I, O, {dx.data(), I});
  tr::lora_backward(ex, dy.data(), O, x.data(), I, A.data(), B.data(), N, I, O, R, 1.5f, {}, 0.0f, c, dA.data(),
                    dB.data(), {dx.data(), I});
  EXPECT_LT(mgtest::rel_err(y, g("linear.y")), kTol);
  EXPECT_LT(mgtest::rel_err(dx, g("linear.dx")), kTol);
  EXPECT_LT(mgtest::rel_err(dA, g("linear.dA")), kTol);
  EXPECT_LT(mgtest::rel_err(dB, g("linear.dB")), kTol);
}

void attention_case(const std::string& p, bool causal, int64_t Tk_used, const std::function<Vec(const std::string&)>& g,
                    int64_t Tq, int64_t Tk) {
  const int H = 2;
  const int64_t hd = 3, D = 6;
  const Vec q = g(p + "q"), k = g(p + "k"), v = g(p + "v"), dout = g(p + "dout");
  mg::cpu::Exec ex;
  Vec out(Tq * D), probs(H * Tq * Tk_used), dq(Tq * D, 0.0f), dk(Tk * D, 0.0f), dv(Tk * D, 0.0f);
  const float scale = 1.0f / std::sqrt(float(hd));
  // The masked keys are not passed at all (train_ops.h): their gradients stay zero, as torch's.
  tr::attention_forward(ex, q.data(), D, k.data(), D, v.data(), D, Tq, Tk_used, H, hd, scale, causal, out.data(), D,
                        probs.data());
  tr::attention_backward(ex, dout.data(), D, q.data(), D, k.data(), D, v.data(), D, probs.data(), Tq, Tk_used, H, hd,
                         scale, dq.data(), D, dk.data(), D, dv.data(), D);
  EXPECT_LT(mgtest::rel_err(out, g(p + "out")), kTol) << p;
  EXPECT_LT(mgtest::rel_err(dq, g(p + "dq")), kTol) << p;
  EXPECT_LT(mgtest::rel_err(dk, g(p + "dk")), kTol) << p;
  EXPECT_LT(mgtest::rel_err(dv, g(p + "dv")), kTol) << p;
}

TEST_F(TrainOpsParity, CausalSelfAttention) {
  attention_case("attn_self.", true, 5, g, 5, 5);
}

TEST_F(TrainOpsParity, CrossAttentionWithKeyMask) {
  attention_case("attn_cross.", false, 3, g, 5, 4);  // the golden's last key is padding
}

TEST_F(TrainOpsParity, LayerNorm) {
  const Vec x = g("ln.x"), w = g("ln.w"), b = g("ln.b"), dy = g("ln.dy");
  const int64_t N = dim("ln.x", 0), D = dim("ln.x", 1);
  mg::cpu::Exec ex;
  Vec y(N * D), mean(N), rstd(N), dx(N * D, 0.0f);
  tr::layer_norm_forward(ex, x.data(), w.data(), b.data(), N, D, 1e-5f, y.data(), mean.data(), rstd.data());
  tr::layer_norm_backward(ex, dy.data(), x.data(), w.data(), mean.data(), rstd.data(), N, D, dx.data());
  EXPECT_LT(mgtest::rel_err(y, g("ln.y")), kTol);
  EXPECT_LT(mgtest::rel_err(dx, g("ln.dx")), kTol);
}

TEST_F(TrainOpsParity, Gelu) {
  const Vec x = g("gelu.x"), dy = g("gelu.dy");
  mg::cpu::Exec ex;
  Vec y(x.size()), dx(x.size(), 0.0f);
  tr::gelu_forward(ex, x.data(), y.data(), int64_t(x.size()));
  tr::gelu_backward(ex, dy.data(), x.data(), dx.data(), int64_t(x.size()));
  EXPECT_LT(mgtest::rel_err(y, g("gelu.y")), kTol);
  EXPECT_LT(mgtest::rel_err(dx, g("gelu.dx")), kTol);
}

TEST_F(TrainOpsParity, MaskedCrossEntropy) {
  const Vec logits = g("ce.logits");
  const int64_t N = dim("ce.logits", 0), V = dim("ce.logits", 2);
  const int K = int(dim("ce.logits", 1));
  const mg::Tensor& tt = golden_->at("ce.targets");
  std::vector<int32_t> t(tt.ptr<int32_t>(), tt.ptr<int32_t>() + tt.numel());
  mg::cpu::Exec ex;
  Vec d(logits.size());
  const double loss = tr::cross_entropy_forward_backward(ex, logits.data(), t.data(), N, K, V, 1.0f, d.data(), nullptr);
  EXPECT_NEAR(loss, g("ce.loss")[0], 1e-5 * std::abs(g("ce.loss")[0]));
  EXPECT_LT(mgtest::rel_err(d, g("ce.dlogits")), kTol);
}

}  // namespace
