// ELU, the activation between every SEANet conv: x > 0 ? x : alpha * expm1(x). It runs on every
// sample of every channel at every level of the codec (about 10 per sample of audio per conv level),
// so a scalar expm1 made it the single largest op of EnCodec on the CPU; this file vectorises it.
//
// expm1 for x <= 0, accurate to about 1 ulp like glibc's expm1f and PyTorch's vectorised (Sleef)
// one: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite, two-part ln2), expm1(r) by its Taylor series
// to r^8 (truncation < 2e-10 relative), then expm1(x) = 2^n expm1(r) + (2^n - 1), both terms exact
// in float for the n that occur, so only the final sum rounds. Below x = -20, expm1 is -1 in float
// (e^-20 is below half an ulp of 1), so x is clamped there. NaN passes through.
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/vec_math.h"

// GCC 12 warns about the "undefined" pass-through operand inside its own AVX-512 intrinsics when
// they are inlined into target("avx512f") functions (GCC bug 105593): not ours to fix.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace mg::cpu {

namespace {

constexpr float kClamp = -20.0f;

// The scalar twin of the vector loops (their tails and the portable path), so every element gets
// the same formula whatever the CPU.
inline float expm1_neg(float x) { return std::isnan(x) ? x : vmath::expm1(std::max(x, kClamp)); }

// (Zero goes through as alpha * v: the polynomial path would turn -0 into +0, torch keeps -0.)
inline float elu_one(float v, float alpha) { return v > 0.0f ? v : v == 0.0f ? alpha * v : alpha * expm1_neg(v); }

__attribute__((target("avx512f"))) void elu_avx512(const float* x, float* y, int64_t n, float alpha) {
  const __m512 clamp = _mm512_set1_ps(kClamp), va = _mm512_set1_ps(alpha), zero = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
    if (pos == 0xFFFF) {  // all positive: a copy
      _mm512_storeu_ps(y + i, v);
      continue;
    }
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    __m512 e = _mm512_mul_ps(va, vmath::expm1_16(_mm512_max_ps(v, clamp)));
    e = _mm512_mask_blend_ps(pos | nan, e, v);
    e = _mm512_mask_mul_ps(e, _mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ), v, va);
    _mm512_storeu_ps(y + i, e);
  }
  for (; i < n; ++i) y[i] = elu_one(x[i], alpha);
}

__attribute__((target("avx2,fma"))) void elu_avx2(const float* x, float* y, int64_t n, float alpha) {
  const __m256 clamp = _mm256_set1_ps(kClamp), va = _mm256_set1_ps(alpha), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 pos = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
    if (_mm256_movemask_ps(pos) == 0xFF) {
      _mm256_storeu_ps(y + i, v);
      continue;
    }
    const __m256 keep = _mm256_or_ps(pos, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    __m256 e = _mm256_mul_ps(va, vmath::expm1_8(_mm256_max_ps(v, clamp)));
    e = _mm256_blendv_ps(e, v, keep);
    e = _mm256_blendv_ps(e, _mm256_mul_ps(v, va), _mm256_cmp_ps(v, zero, _CMP_EQ_OQ));
    _mm256_storeu_ps(y + i, e);
  }
  for (; i < n; ++i) y[i] = elu_one(x[i], alpha);
}

}  // namespace

namespace detail {

void elu_row(const Exec& ex, const float* x, float* y, int64_t n, float alpha) {
  if (ex.simd() && ex.allow_avx512 && cpu_has_avx512()) return elu_avx512(x, y, n, alpha);
  if (ex.simd()) return elu_avx2(x, y, n, alpha);
  for (int64_t i = 0; i < n; ++i) y[i] = elu_one(x[i], alpha);
}

}  // namespace detail

Tensor elu(const Tensor& x, float alpha, const Exec& ex) {
  Tensor out = Tensor::empty(DType::F32, x.shape);
  const float* xp = x.f32();
  float* yp = out.f32();
  detail::parallel_for(ex, x.numel(), 1 << 14,
                       [&](int64_t i0, int64_t i1) { detail::elu_row(ex, xp + i0, yp + i0, i1 - i0, alpha); });
  return out;
}

}  // namespace mg::cpu
