// Exact GELU (torch's default approximate='none'): x/2 * (1 + erf(x / sqrt 2)), the activation of
// every MusicGen decoder FFN. libm's erff is a scalar call that no compiler vectorises; at batch 1
// with CFG the 24 FFNs of musicgen-small spent ~2.5 ms of a step in it (as much as the q4 weights'
// bytes of several layers), so erf runs in vector lanes here.
//
// erf(z) for |z| <= 4 is z P(z^2) / Q(z^2) (degree 13 odd over degree 8 even: the rational form of
// Eigen and XLA's float erf, within ~2e-7 of erf); beyond 4, erf is +-1 in float, so z is clamped
// there. The scalar twin uses the same fma chain and one correctly rounded division, so AVX-512,
// AVX2, the tails and the portable path give the same bits, whatever the thread count or the rows
// in a batch. NaN passes through (min/max keep the clamp's second operand: the x itself).
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/cpu_common.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593 in its AVX-512 intrinsics
#endif

namespace mg::cpu {

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kClamp = 4.0f;
// Numerator (odd powers z^13 .. z^1) and denominator (even powers z^8 .. z^0), highest first.
constexpr float kNum[7] = {-2.72614225801306e-10f, 2.77068142495902e-08f, -2.10102402082508e-06f,
                           -5.69250639462346e-05f, -7.34990630326855e-04f, -2.95459980854025e-03f,
                           -1.60960333262415e-02f};
constexpr float kDen[5] = {-1.45660718464996e-05f, -2.13374055278905e-04f, -1.68282697438203e-03f,
                           -7.37332916720468e-03f, -1.42647390514189e-02f};

inline float erf_one(float z) {
  z = std::fmin(std::fmax(z, -kClamp), kClamp);  // fmin/fmax return the number when one is NaN...
  const float z2 = z * z;
  float p = kNum[0];
  for (int i = 1; i < 7; ++i) p = std::fma(p, z2, kNum[i]);
  float q = kDen[0];
  for (int i = 1; i < 5; ++i) q = std::fma(q, z2, kDen[i]);
  return (z * p) / q;
}

inline float gelu_one(float v) {
  if (std::isnan(v)) return v;  // ...so NaN is passed through here, as the lanes do
  return 0.5f * v * (1.0f + erf_one(v * kInvSqrt2));
}

__attribute__((target("avx512f"))) void gelu_avx512(const float* x, float* y, int64_t n) {
  const __m512 lo = _mm512_set1_ps(-kClamp), hi = _mm512_set1_ps(kClamp);
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), s = _mm512_set1_ps(kInvSqrt2);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    // max/min return their second operand when either is NaN: v stays NaN through the clamp.
    const __m512 z = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_mul_ps(v, s)));
    const __m512 z2 = _mm512_mul_ps(z, z);
    __m512 p = _mm512_set1_ps(kNum[0]);
    for (int k = 1; k < 7; ++k) p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(kNum[k]));
    __m512 q = _mm512_set1_ps(kDen[0]);
    for (int k = 1; k < 5; ++k) q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(kDen[k]));
    const __m512 erf = _mm512_div_ps(_mm512_mul_ps(z, p), q);
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, erf)));
  }
  for (; i < n; ++i) y[i] = gelu_one(x[i]);
}

__attribute__((target("avx2,fma"))) void gelu_avx2(const float* x, float* y, int64_t n) {
  const __m256 lo = _mm256_set1_ps(-kClamp), hi = _mm256_set1_ps(kClamp);
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), s = _mm256_set1_ps(kInvSqrt2);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 z = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_mul_ps(v, s)));
    const __m256 z2 = _mm256_mul_ps(z, z);
    __m256 p = _mm256_set1_ps(kNum[0]);
    for (int k = 1; k < 7; ++k) p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(kNum[k]));
    __m256 q = _mm256_set1_ps(kDen[0]);
    for (int k = 1; k < 5; ++k) q = _mm256_fmadd_ps(q, z2, _mm256_set1_ps(kDen[k]));
    const __m256 erf = _mm256_div_ps(_mm256_mul_ps(z, p), q);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, erf)));
  }
  for (; i < n; ++i) y[i] = gelu_one(x[i]);
}

void gelu_range(const Exec& ex, const float* x, float* y, int64_t n) {
  if (ex.simd() && ex.allow_avx512 && cpu_has_avx512()) return gelu_avx512(x, y, n);
  if (ex.simd()) return gelu_avx2(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_one(x[i]);
}

// Values per thread below which splitting costs more than it saves: a decode step's 2 x 4096 FFN
// activations (~2.6 us on one core) were no faster on two threads (2.3-2.6 us best of 20).
constexpr int64_t kMinChunk = 1 << 14;

}  // namespace

Tensor gelu(const Tensor& x, const Exec& ex) {
  Tensor out = Tensor::empty(DType::F32, x.shape);
  const float* xp = x.f32();
  float* yp = out.f32();
  detail::parallel_for(ex, x.numel(), kMinChunk,
                       [&](int64_t i0, int64_t i1) { gelu_range(ex, xp + i0, yp + i0, i1 - i0); });
  return out;
}

void gelu_inplace(Tensor& x, const Exec& ex) {
  float* p = x.f32();
  detail::parallel_for(ex, x.numel(), kMinChunk, [&](int64_t i0, int64_t i1) { gelu_range(ex, p + i0, p + i0, i1 - i0); });
}

}  // namespace mg::cpu
