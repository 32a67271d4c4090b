// Lane maths shared by the CPU kernels: horizontal sums (GEMVs, attention, LSTM), and exp / expm1
// (the LSTM's gates, ELU).
//
// exp and expm1 come from one range
// reduction and one polynomial, Cephes' expf: x = n ln2 + r (ln2 split in two so n * hi is exact),
// |r| <= ln2 / 2, e^r - 1 = r + r^2 P(r). Then exp(x) = 2^n (1 + r + r^2 P) and
// expm1(x) = 2^n (r + r^2 P) + (2^n - 1), where both terms are exact in float for the n used, so
// only the final sum rounds (expm1 stays accurate near 0, where exp - 1 would not).
// AVX-512 (16 lanes), AVX2 (8 lanes) and scalar versions of each step give the same bits.
#pragma once

#include <immintrin.h>

#include <cmath>

namespace mg::cpu::vmath {

// ---- horizontal sums, in a fixed pairwise order ----
__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
// Through memory: GCC 12's reduce/shuffle intrinsics trip -Wuninitialized (its bug 105593).
__attribute__((target("avx512f"))) inline float hsum16(__m512 v) {
  alignas(64) float l[16];
  _mm512_store_ps(l, v);
  for (int w = 8; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) l[i] += l[i + w];
  return l[0];
}

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                         4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// ---- scalar ----
inline float reduce(float x, float& n) {
  n = std::nearbyint(x * kLog2e);
  return std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, x));
}
inline float poly(float r) {
  float p = kP[0];
  for (int i = 1; i < 6; ++i) p = std::fma(p, r, kP[i]);
  return p;
}
// expm1 for x in [-87, 0] (callers clamp).
inline float expm1(float x) {
  float n;
  const float r = reduce(x, n);
  const float p = std::fma(poly(r), r * r, r);
  const float two_n = std::ldexp(1.0f, int(n));
  return std::fma(two_n, p, two_n - 1.0f);
}

// ---- AVX-512 ----
__attribute__((target("avx512f"))) inline __m512 reduce16(__m512 x, __m512& n) {
  n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x));
}
__attribute__((target("avx512f"))) inline __m512 poly16(__m512 r) {
  __m512 p = _mm512_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP[i]));
  return p;
}
// exp for x in [-86, 88.4] (callers clamp): 2^n stays a normal number.
__attribute__((target("avx512f"))) inline __m512 exp16(__m512 x) {
  __m512 n;
  const __m512 r = reduce16(x, n);
  const __m512 e = _mm512_fmadd_ps(poly16(r), _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(e, n);
}
// expm1 for x in [-87, 0] (callers clamp).
__attribute__((target("avx512f"))) inline __m512 expm1_16(__m512 x) {
  __m512 n;
  const __m512 r = reduce16(x, n);
  const __m512 p = _mm512_fmadd_ps(poly16(r), _mm512_mul_ps(r, r), r);
  const __m512 two_n = _mm512_scalef_ps(_mm512_set1_ps(1.0f), n);
  return _mm512_fmadd_ps(two_n, p, _mm512_sub_ps(two_n, _mm512_set1_ps(1.0f)));
}

// ---- AVX2 ----
__attribute__((target("avx2,fma"))) inline __m256 reduce8(__m256 x, __m256& n) {
  n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x));
}
__attribute__((target("avx2,fma"))) inline __m256 poly8(__m256 r) {
  __m256 p = _mm256_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP[i]));
  return p;
}
// 2^(n + bias - 127) through the exponent field (n + bias in [1, 254]).
__attribute__((target("avx2,fma"))) inline __m256 pow2_8(__m256 n, int bias) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(bias)), 23));
}
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  __m256 n;
  const __m256 r = reduce8(x, n);
  const __m256 e = _mm256_fmadd_ps(poly8(r), _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // n can be 128 and 2^128 is not a float: scale by 2^(n-1), then by 2 (both exact).
  return _mm256_mul_ps(_mm256_mul_ps(e, pow2_8(n, 126)), _mm256_set1_ps(2.0f));
}
__attribute__((target("avx2,fma"))) inline __m256 expm1_8(__m256 x) {
  __m256 n;
  const __m256 r = reduce8(x, n);
  const __m256 p = _mm256_fmadd_ps(poly8(r), _mm256_mul_ps(r, r), r);
  const __m256 two_n = pow2_8(n, 127);
  return _mm256_fmadd_ps(two_n, p, _mm256_sub_ps(two_n, _mm256_set1_ps(1.0f)));
}

}  // namespace mg::cpu::vmath
