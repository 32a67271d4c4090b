// The GPU training ops (kernels/cuda/*_backward.cu, cross_entropy.cu) against their CPU references
// (kernels/cpu/train_ops.h) on random inputs. Skips without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "kernels/cpu/train_ops.h"
#include "kernels/cuda/train_ops_cuda.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace {

namespace ct = mg::cuda::train;
namespace tr = mg::cpu::train;
using Vec = std::vector<float>;

#define SKIP_WITHOUT_CUDA()                                                                            \
  do {                                                                                                 \
    if (!mg::cuda_available()) GTEST_SKIP() << "no CUDA device: the GPU training ops need a GPU";     \
  } while (0)

// Device copies of host vectors, read back with get().
struct Dev {
  std::unique_ptr<mg::Backend> be = mg::make_cuda_backend();
  std::vector<mg::Tensor> keep;
  float* put(const Vec& v) {
    keep.push_back(be->upload(mg::Tensor::from_vector(v, {int64_t(v.size())})));
    return static_cast<float*>(keep.back().data);
  }
  Vec get(const float* p) {
    for (const mg::Tensor& t : keep)
      if (t.data == p) return be->download(t).to_vector();
    ADD_FAILURE() << "not a device buffer of this test";
    return {};
  }
};

constexpr double kTol = 1e-5;

TEST(CudaTrainOps, LinearAndLora) {
  SKIP_WITHOUT_CUDA();
  const int64_t N = 37, I = 24, O = 72, R = 4;
  const float s = 2.0f;
  const Vec x = mgtest::random_vector(N * I, 1), W = mgtest::random_vector(O * I, 2), A = mgtest::random_vector(R * I, 3),
            B = mgtest::random_vector(O * R, 4), dy = mgtest::random_vector(N * O, 5);
  mg::cpu::Exec ex;
  Vec y(N * O), dx(N * I, 0.0f), dA(R * I, 0.0f), dB(O * R, 0.0f);
  tr::LoraCache c;
  tr::linear_forward(ex, x.data(), I, W.data(), N, I, O, {y.data(), O}, 0.0f);
  tr::lora_forward(ex, x.data(), I, A.data(), B.data(), N, I, O, R, s, {}, 0.0f, {y.data(), O}, c);
  tr::linear_backward_input(ex, dy.data(), O, W.data(), N, I, O, {dx.data(), I});
  tr::lora_backward(ex, dy.data(), O, x.data(), I, A.data(), B.data(), N, I, O, R, s, {}, 0.0f, c, dA.data(), dB.data(),
                    {dx.data(), I});
  Dev d;
  float *gx = d.put(x), *gW = d.put(W), *gA = d.put(A), *gB = d.put(B), *gdy = d.put(dy);
  float *gy = d.put(Vec(N * O, 0.0f)), *gxa = d.put(Vec(N * R, 0.0f)), *gdx = d.put(Vec(N * I, 0.0f)),
        *gdA = d.put(Vec(R * I, 0.0f)), *gdB = d.put(Vec(O * R, 0.0f));
  ct::linear_forward(gx, I, gW, N, I, O, gy, O, 0.0f);
  ct::lora_forward(gx, I, gA, gB, N, I, O, R, s, gy, O, gxa);
  ct::linear_backward_input(gdy, O, gW, N, I, O, gdx, I);
  ct::lora_backward(gdy, O, gx, I, gA, gB, gxa, N, I, O, R, s, gdA, gdB, gdx, I);
  EXPECT_LT(mgtest::rel_err(d.get(gy), y), kTol);
  EXPECT_LT(mgtest::rel_err(d.get(gdx), dx), kTol);
  EXPECT_LT(mgtest::rel_err(d.get(gdA), dA), kTol);
  EXPECT_LT(mgtest::rel_err(d.get(gdB), dB), kTol);
}

void attention_case(bool causal, int64_t Tq, int64_t Tk) {
  const int H = 4;
  const int64_t hd = 6, D = H * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  const Vec q = mgtest::random_vector(Tq * D, 11), k = mgtest::random_vector(Tk * D, 12),
            v = mgtest::random_vector(Tk * D, 13), dout = mgtest::random_vector(Tq * D, 14);
  mg::cpu::Exec ex;
  Vec out(Tq * D), probs(H * Tq * Tk), dq(Tq * D, 0.0f), dk(Tk * D, 0.0f), dv(Tk * D, 0.0f);
  tr::attention_forward(ex, q.data(), D, k.data(), D, v.data(), D, Tq, Tk, H, hd, scale, causal, out.data(), D,
                        probs.data());
  tr::attention_backward(ex, dout.data(), D, q.data(), D, k.data(), D, v.data(), D, probs.data(), Tq, Tk, H, hd, scale,
                         dq.data(), D, dk.data(), D, dv.data(), D);
  Dev d;
  float *gq = d.put(q), *gk = d.put(k), *gv = d.put(v), *gdo = d.put(dout);
  float *gout = d.put(Vec(Tq * D, 0.0f)), *gp = d.put(Vec(H * Tq * Tk, 0.0f)), *gdq = d.put(Vec(Tq * D, 0.0f)),
        *gdk = d.put(Vec(Tk * D, 0.0f)), *gdv = d.put(Vec(Tk * D, 0.0f));
  ct::attention_forward(gq, D, gk, D, gv, D, Tq, Tk, H, hd, scale, causal, gout, D, gp);
  ct::attention_backward(gdo, D, gq, D, gk, D, gv, D, gp, Tq, Tk, H, hd, scale, gdq, D, gdk, D, gdv, D);
  EXPECT_LT(mgtest::rel_err(d.get(gout), out), kTol);
  EXPECT_LT(mgtest::rel_err(d.get(gp), probs), kTol);
  EXPECT_LT(mgtest::rel_err(d.get(gdq), dq), kTol);
  EXPECT_LT(mgtest::rel_err(d.get(gdk), dk), kTol);
  EXPECT_LT(mgtest::rel_err(d.get(gdv), dv), kTol);
}

TEST(CudaTrainOps, CausalSelfAttention) {
  SKIP_WITHOUT_CUDA();
  attention_case(true, 50, 50);
}

TEST(CudaTrainOps, CrossAttention) {
  SKIP_WITHOUT_CUDA();
  attention_case(false, 50, 9);
}

TEST(CudaTrainOps, LayerNormAndGelu) {
  SKIP_WITHOUT_CUDA();
  const int64_t N = 33, D = 300;
  const Vec x = mgtest::random_vector(N * D, 21), w = mgtest::random_vector(D, 22), b = mgtest::random_vector(D, 23),
            dy = mgtest::random_vector(N * D, 24);
  mg::cpu::Exec ex;
  Vec y(N * D), m(N), r(N), dx(N * D, 0.0f), gy(N * D), gdx(N * D, 0.0f);
  tr::layer_norm_forward(ex, x.data(), w.data(), b.data(), N, D, 1e-5f, y.data(), m.data(), r.data());
  tr::layer_norm_backward(ex, dy.data(), x.data(), w.data(), m.data(), r.data(), N, D, dx.data());
  tr::gelu_forward(ex, x.data(), gy.data(), N * D);
  tr::gelu_backward(ex, dy.data(), x.data(), gdx.data(), N * D);
  Dev d;
  float *px = d.put(x), *pw = d.put(w), *pb = d.put(b), *pdy = d.put(dy);
  float *py = d.put(Vec(N * D, 0.0f)), *pm = d.put(Vec(N, 0.0f)), *pr = d.put(Vec(N, 0.0f)),
        *pdx = d.put(Vec(N * D, 0.0f)), *pgy = d.put(Vec(N * D, 0.0f)), *pgdx = d.put(Vec(N * D, 0.0f));
  ct::layer_norm_forward(px, pw, pb, N, D, 1e-5f, py, pm, pr);
  ct::layer_norm_backward(pdy, px, pw, pm, pr, N, D, pdx);
  ct::gelu_forward(px, pgy, N * D);
  ct::gelu_backward(pdy, px, pgdx, N * D);
  EXPECT_LT(mgtest::rel_err(d.get(py), y), kTol);
  EXPECT_LT(mgtest::rel_err(d.get(pdx), dx), 1e-4);
  EXPECT_LT(mgtest::rel_err(d.get(pgy), gy), kTol);
  EXPECT_LT(mgtest::rel_err(d.get(pgdx), gdx), kTol);
}

TEST(CudaTrainOps, MaskedCrossEntropy) {
  SKIP_WITHOUT_CUDA();
  const int64_t N = 40, V = 2048;
  const int K = 4;
  Vec logits = mgtest::random_vector(N * K * V, 31);
  for (float& v : logits) v *= 4.0f;
  std::vector<int32_t> t(N * K);
  for (size_t i = 0; i < t.size(); ++i) t[i] = (i % 7 == 3) ? -1 : int32_t((i * 131) % V);
  mg::cpu::Exec ex;
  Vec dl(N * K * V);
  const double loss = tr::cross_entropy_forward_backward(ex, logits.data(), t.data(), N, K, V, 0.5f, dl.data(), nullptr);
  Dev d;
  float* gl = d.put(logits);
  float* gdl = d.put(Vec(N * K * V, 0.0f));
  mg::Tensor ti = mg::Tensor::empty(mg::DType::I32, {int64_t(t.size())});
  std::copy(t.begin(), t.end(), ti.ptr<int32_t>());
  mg::Tensor gt = d.be->upload(ti);
  const double gloss = ct::cross_entropy_forward_backward(gl, static_cast<const int32_t*>(gt.data), N, K, V, 0.5f, gdl);
  EXPECT_NEAR(gloss, loss, 1e-5 * loss);
  EXPECT_LT(mgtest::rel_err(d.get(gdl), dl), 1e-5);
}

}  // namespace
