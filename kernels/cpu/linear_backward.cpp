// Linear and LoRA forward/backward for training (train_ops.h). The base weight W is frozen; the
// LoRA matrices A [R, I] and B [O, R] get gradients. All products are OpenBLAS GEMMs.
#include <algorithm>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/train_ops.h"

namespace mg::cpu::train {

using detail::sgemm;

void linear_forward(const Exec& ex, const float* x, int64_t ldx, const float* W, int64_t N, int64_t I, int64_t O,
                    MatView y, float beta) {
  sgemm(ex, false, true, N, O, I, 1.0f, x, ldx, W, I, beta, y.p, y.ld);
}

void linear_backward_input(const Exec& ex, const float* dy, int64_t lddy, const float* W, int64_t N, int64_t I,
                           int64_t O, MatView dx) {
  sgemm(ex, false, false, N, I, O, 1.0f, dy, lddy, W, I, 1.0f, dx.p, dx.ld);
}

namespace {

// x * keep / (1 - p): what the LoRA branch sees under dropout.
std::vector<float> dropped(const float* x, int64_t ldx, int64_t N, int64_t I, const std::vector<uint8_t>& keep,
                           float p) {
  std::vector<float> xd(size_t(N * I));
  const float s = 1.0f / (1.0f - p);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) xd[n * I + i] = keep[n * I + i] ? x[n * ldx + i] * s : 0.0f;
  return xd;
}

}  // namespace

void lora_forward(const Exec& ex, const float* x, int64_t ldx, const float* A, const float* B, int64_t N, int64_t I,
                  int64_t O, int64_t R, float scale, const std::vector<uint8_t>& keep, float dropout, MatView y,
                  LoraCache& cache) {
  const float* xin = x;
  int64_t ld = ldx;
  cache.xd.clear();
  if (!keep.empty()) {
    cache.xd = dropped(x, ldx, N, I, keep, dropout);
    xin = cache.xd.data();
    ld = I;
  }
  cache.xa.assign(size_t(N * R), 0.0f);
  sgemm(ex, false, true, N, R, I, 1.0f, xin, ld, A, I, 0.0f, cache.xa.data(), R);
  sgemm(ex, false, true, N, O, R, scale, cache.xa.data(), R, B, R, 1.0f, y.p, y.ld);
}

void lora_backward(const Exec& ex, const float* dy, int64_t lddy, const float* x, int64_t ldx, const float* A,
                   const float* B, int64_t N, int64_t I, int64_t O, int64_t R, float scale,
                   const std::vector<uint8_t>& keep, float dropout, const LoraCache& cache, float* dA, float* dB,
                   MatView dx) {
  const float* xin = keep.empty() ? x : cache.xd.data();
  const int64_t ld = keep.empty() ? ldx : I;
  // g[N, R] = dy B: the gradient at xa, unscaled.
  std::vector<float> g(size_t(N * R));
  sgemm(ex, false, false, N, R, O, 1.0f, dy, lddy, B, R, 0.0f, g.data(), R);
  sgemm(ex, true, false, O, R, N, scale, dy, lddy, cache.xa.data(), R, 1.0f, dB, R);  // dB += s dy^T xa
  sgemm(ex, true, false, R, I, N, scale, g.data(), R, xin, ld, 1.0f, dA, I);          // dA += s g^T xd
  if (!dx.p) return;
  if (keep.empty()) {
    sgemm(ex, false, false, N, I, R, scale, g.data(), R, A, I, 1.0f, dx.p, dx.ld);  // dx += s g A
    return;
  }
  std::vector<float> gx(size_t(N * I), 0.0f);
  sgemm(ex, false, false, N, I, R, scale / (1.0f - dropout), g.data(), R, A, I, 0.0f, gx.data(), I);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i)
      if (keep[n * I + i]) dx.p[n * dx.ld + i] += gx[n * I + i];
}

}  // namespace mg::cpu::train
