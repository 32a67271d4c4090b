// Normalisations. Statistics are accumulated in double: the rows are short (<= a few thousand)
// so it costs little, and it keeps the result within float rounding of PyTorch's whatever order
// PyTorch sums in.
#include <cmath>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

// torch.nn.functional.layer_norm over the last dim: biased variance, eps inside the sqrt.
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps, const Exec& ex) {
  const int64_t d = x.cols(), rows = x.rows();
  Tensor y = Tensor::empty(DType::F32, x.shape);
  const float* xp = x.f32();
  const float* g = gamma.f32();
  const float* bt = beta ? beta->f32() : nullptr;
  float* yp = y.f32();
  detail::parallel_for(ex, rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = xp + r * d;
      double mean = 0.0;
      for (int64_t i = 0; i < d; ++i) mean += xr[i];
      mean /= double(d);
      double var = 0.0;
      for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      var /= double(d);
      const float rstd = float(1.0 / std::sqrt(var + double(eps)));
      const float mu = float(mean);
      float* yr = yp + r * d;
      for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] - mu) * rstd * g[i] + (bt ? bt[i] : 0.0f);
    }
  });
  return y;
}

// T5LayerNorm (transformers): x * rsqrt(mean(x^2) + eps) * gamma; no mean subtraction, no bias.
Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps, const Exec& ex) {
  const int64_t d = x.cols(), rows = x.rows();
  Tensor y = Tensor::empty(DType::F32, x.shape);
  const float* xp = x.f32();
  const float* g = gamma.f32();
  float* yp = y.f32();
  detail::parallel_for(ex, rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = xp + r * d;
      double ss = 0.0;
      for (int64_t i = 0; i < d; ++i) ss += double(xr[i]) * xr[i];
      const float rs = float(1.0 / std::sqrt(ss / double(d) + double(eps)));
      float* yr = yp + r * d;
      for (int64_t i = 0; i < d; ++i) yr[i] = g[i] * (xr[i] * rs);
    }
  });
  return y;
}

// torch.nn.GroupNorm on x[B, C, T] (2-D [C, T] is B = 1): mean and biased variance over the
// C/groups channels and all T of each group, then a per-channel affine.
Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                  const Exec& ex) {
  const int64_t b = x.ndim() == 3 ? x.dim(0) : 1, c = x.dim(-2), t = x.dim(-1);
  Tensor y = Tensor::empty(DType::F32, x.shape);
  const int64_t cg = c / groups, span = cg * t;
  const float* xp = x.f32();
  const float* g = gamma.f32();
  const float* bt = beta.f32();
  float* yp = y.f32();
  detail::parallel_for(ex, b * groups, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* xs = xp + i * span;  // (batch, group) blocks are contiguous
      double mean = 0.0;
      for (int64_t j = 0; j < span; ++j) mean += xs[j];
      mean /= double(span);
      double var = 0.0;
      for (int64_t j = 0; j < span; ++j) var += (xs[j] - mean) * (xs[j] - mean);
      var /= double(span);
      const float rstd = float(1.0 / std::sqrt(var + double(eps)));
      const float mu = float(mean);
      const int64_t c0 = (i % groups) * cg;
      for (int64_t ch = 0; ch < cg; ++ch) {
        const float sc = g[c0 + ch] * rstd, sh = bt[c0 + ch];
        const float* xr = xs + ch * t;
        float* yr = yp + i * span + ch * t;
        for (int64_t j = 0; j < t; ++j) yr[j] = (xr[j] - mu) * sc + sh;
      }
    }
  });
  return y;
}

}  // namespace mg::cpu
