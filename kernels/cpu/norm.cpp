// Normalisations. Statistics are accumulated in double: the rows are short (<= a few thousand)
// so it costs little, and it keeps the result within float rounding of PyTorch's whatever order
// PyTorch sums in.
//
// layer_norm's two sums run in one chain each in the portable loop: a double add per value waits
// on the one before (~4 cycles), so a decode step's 73 norms of 2 x 1024 values cost ~6 us each,
// ~0.4 ms a step. The AVX-512 path sums the same doubles in 32 lanes (4 x 8) and adds the lanes up
// at the end: the sums differ only in their last double bits, below the float rounding of the
// mean and the scale that come out of them; the normalisation itself is the portable one's
// float expression, lane by lane.
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/cpu_common.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593 in its AVX-512 intrinsics
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace mg::cpu {

namespace {

// y = (x - mu) * rstd * g + b for one row, given its mean and biased variance in double.
// The scalar loops here stay out of line: inlined into the AVX-512 function they would be
// compiled with FMA, and GCC would contract their multiply-adds (other bits than the portable path).
__attribute__((noinline)) void normalise_row(const float* xr, const float* g, const float* bt, int64_t d, double mean, double var, float eps,
                   float* yr) {
  const float rstd = float(1.0 / std::sqrt(var + double(eps)));
  const float mu = float(mean);
  for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] - mu) * rstd * g[i] + (bt ? bt[i] : 0.0f);
}

// sum + x[i] and sum + (x[i] - mean)^2 over [0, n), in index order.
__attribute__((noinline)) double add_values(double sum, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  return sum;
}
__attribute__((noinline)) double add_squares(double sum, const float* x, int64_t n, double mean) {
  for (int64_t i = 0; i < n; ++i) sum += (x[i] - mean) * (x[i] - mean);
  return sum;
}

void layer_norm_row(const float* xr, const float* g, const float* bt, int64_t d, float eps, float* yr) {
  const double mean = add_values(0.0, xr, d) / double(d);
  const double var = add_squares(0.0, xr, d, mean) / double(d);
  normalise_row(xr, g, bt, d, mean, var, eps, yr);
}

// GCC contracts a multiply and an add written as intrinsics into an FMA under target("avx512f");
// the rounding-mode forms are opaque to it, so each product is rounded as in the portable loop.
constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

__attribute__((target("avx512f"))) inline __m512d widen(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }

__attribute__((target("avx512f"))) void layer_norm_row_avx512(const float* xr, const float* g, const float* bt,
                                                              int64_t d, float eps, float* yr) {
  __m512d a[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
  int64_t i = 0;
  for (; i + 32 <= d; i += 32)
    for (int k = 0; k < 4; ++k) a[k] = _mm512_add_pd(a[k], widen(xr + i + 8 * k));
  for (; i + 8 <= d; i += 8) a[0] = _mm512_add_pd(a[0], widen(xr + i));
  double mean = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a[0], a[1]), _mm512_add_pd(a[2], a[3])));
  mean = add_values(mean, xr + i, d - i) / double(d);

  const __m512d m = _mm512_set1_pd(mean);
  for (int k = 0; k < 4; ++k) a[k] = _mm512_setzero_pd();
  i = 0;
  for (; i + 32 <= d; i += 32)
    for (int k = 0; k < 4; ++k) {
      const __m512d c = _mm512_sub_pd(widen(xr + i + 8 * k), m);
      a[k] = _mm512_add_pd(a[k], _mm512_mul_round_pd(c, c, kNearest));
    }
  for (; i + 8 <= d; i += 8) {
    const __m512d c = _mm512_sub_pd(widen(xr + i), m);
    a[0] = _mm512_add_pd(a[0], _mm512_mul_round_pd(c, c, kNearest));
  }
  double var = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a[0], a[1]), _mm512_add_pd(a[2], a[3])));
  var = add_squares(var, xr + i, d - i, mean) / double(d);

  const float rstd = float(1.0 / std::sqrt(var + double(eps)));
  const __m512 vmu = _mm512_set1_ps(float(mean)), vrstd = _mm512_set1_ps(rstd);
  i = 0;
  for (; i + 16 <= d; i += 16) {
    // ((x - mu) * rstd) * g + b, each rounded as in normalise_row (no fused multiply-add).
    const __m512 c = _mm512_mul_round_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + i), vmu), vrstd, kNearest);
    const __m512 t = _mm512_mul_round_ps(c, _mm512_loadu_ps(g + i), kNearest);
    _mm512_storeu_ps(yr + i, _mm512_add_ps(t, bt ? _mm512_loadu_ps(bt + i) : _mm512_setzero_ps()));
  }
  if (i < d) normalise_row(xr + i, g + i, bt ? bt + i : nullptr, d - i, mean, var, eps, yr + i);
}

}  // namespace

// torch.nn.functional.layer_norm over the last dim: biased variance, eps inside the sqrt. A row
// is summed and normalised by one thread, so its bits do not depend on the rows beside it.
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps, const Exec& ex) {
  const int64_t d = x.cols(), rows = x.rows();
  Tensor y = Tensor::empty(DType::F32, x.shape);
  const float* xp = x.f32();
  const float* g = gamma.f32();
  const float* bt = beta ? beta->f32() : nullptr;
  float* yp = y.f32();
  const bool avx512 = ex.simd() && ex.allow_avx512 && cpu_has_avx512();
  detail::parallel_for(ex, rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (avx512)
        layer_norm_row_avx512(xp + r * d, g, bt, d, eps, yp + r * d);
      else
        layer_norm_row(xp + r * d, g, bt, d, eps, yp + r * d);
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
