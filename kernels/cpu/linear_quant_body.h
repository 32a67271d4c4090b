// The quantized GEMV loops over row-order weights shared by linear_q8.cpp and linear_q4.cpp,
// instantiated per weight format (a Fmt type: kBlockBytes, scale(block), values_avx2(block) -> 32
// signed int8 in a ymm, values(block, int8[32])). Only those two files and linear_quant_x16.cpp
// include this.
#pragma once

// GCC 12 warns about the "undefined" pass-through operand inside its own AVX-512 intrinsics when
// they are inlined into target("avx512f") functions (GCC bug 105593): not ours to fix. Only the
// three kernel files include this header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/linear_quant.h"
#include "kernels/quant.h"

#define MG_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define MG_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

namespace mg::cpu::detail::quant_body {

inline const uint8_t* block_at(const void* w, int64_t row, int64_t blocks_per_row, int64_t b, size_t bytes) {
  return static_cast<const uint8_t*>(w) + size_t(row * blocks_per_row + b) * bytes;
}

// The portable path: the documented arithmetic in plain C++ (std::fma as the SIMD paths' FMA).
template <class Fmt>
void rows_portable(const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  const int64_t nb = x.k / kQuantBlock;
  int8_t wv[32];
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t m = 0; m < x.m; ++m) {
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = block_at(w, n, nb, b, Fmt::kBlockBytes);
        Fmt::values(blk, wv);
        const int8_t* xq = x.q + m * x.k + b * kQuantBlock;
        int32_t s = 0;
        for (int j = 0; j < kQuantBlock; ++j) s += int32_t(xq[j]) * int32_t(wv[j]);
        acc = std::fma(float(s), Fmt::scale(blk) * x.d[m * nb + b], acc);
      }
      y[m * ldy + n] = acc;
    }
}

MG_TARGET_AVX2 inline __m256i lanes_avx2(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
MG_TARGET_AVX512 inline __m256i lanes_vnni(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

// The block sums of R <= 4 rows (each 8 int32 lanes in l[r]) in lanes 0..R-1: exact integer adds.
template <int R>
MG_TARGET_AVX2 inline __m128i block_sums(const __m256i* l) {
  const __m256i a = _mm256_hadd_epi32(l[0], l[R > 1 ? 1 : 0]);
  const __m256i c = R > 2 ? _mm256_hadd_epi32(l[R > 2 ? 2 : 0], l[R > 3 ? 3 : 0]) : a;
  const __m256i h = _mm256_hadd_epi32(a, c);  // [r0 r1 r2 r3: lanes 0-3 | r0 r1 r2 r3: lanes 4-7]
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// M activation rows x R (<= 4) weight rows per pass: each weight block is loaded and made unsigned
// once (|w|, with w's signs moved onto x: u8 x s8 is what the instructions multiply), then used M
// times; the R rows' block sums of an activation row come out as one vector (block_sums), so the
// scale products, conversions and FMAs are one instruction each for R rows.
// Weight rows are short (576 or 1088 bytes at k = 1024) and a pass reads R of them side by side:
// streams too short for the hardware prefetcher to follow, so each pass prefetches the next R
// rows (they follow in memory), a few lines per block, into L2 (measured: into L1 was no faster
// for q4_0 and slower for q8_0, whose passes are larger).
#define MG_QUANT_ROWS_BODY(LANES)                                                                    \
  const int64_t nb = x.k / kQuantBlock;                                                              \
  __m128 acc[M];                                                                                     \
  for (int m = 0; m < M; ++m) acc[m] = _mm_setzero_ps();                                             \
  constexpr int kLinesPerBlock = int((R * Fmt::kBlockBytes + 63) / 64);                             \
  const char* next = reinterpret_cast<const char*>(block_at(w, n + R, nb, 0, Fmt::kBlockBytes));     \
  for (int64_t b = 0; b < nb; ++b) {                                                                 \
    for (int l = 0; l < kLinesPerBlock; ++l) _mm_prefetch(next + (b * kLinesPerBlock + l) * 64, _MM_HINT_T1); \
    __m256i xv[M];                                                                                   \
    for (int m = 0; m < M; ++m)                                                                      \
      xv[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + (m0 + m) * x.k + b * kQuantBlock)); \
    __m256i li[M][R];                                                                                \
    alignas(16) float wd[4] = {0, 0, 0, 0};                                                          \
    for (int r = 0; r < R; ++r) {                                                                    \
      const uint8_t* blk = block_at(w, n + r, nb, b, Fmt::kBlockBytes);                              \
      const __m256i wv = Fmt::values_avx2(blk);                                                      \
      const __m256i wu = _mm256_sign_epi8(wv, wv);                                                   \
      wd[r] = Fmt::scale_f16c(blk);                                                                  \
      for (int m = 0; m < M; ++m) li[m][r] = LANES(wu, _mm256_sign_epi8(xv[m], wv));                 \
    }                                                                                                \
    const __m128 wd4 = _mm_load_ps(wd);                                                              \
    for (int m = 0; m < M; ++m) {                                                                    \
      const __m128 d = _mm_mul_ps(wd4, _mm_set1_ps(x.d[(m0 + m) * nb + b]));                         \
      acc[m] = _mm_fmadd_ps(_mm_cvtepi32_ps(block_sums<R>(li[m])), d, acc[m]);                       \
    }                                                                                                \
  }                                                                                                  \
  for (int m = 0; m < M; ++m) {                                                                      \
    alignas(16) float out[4];                                                                        \
    _mm_store_ps(out, acc[m]);                                                                       \
    for (int r = 0; r < R; ++r) y[(m0 + m) * ldy + n + r] = out[r];                                  \
  }

template <class Fmt, int M, int R>
MG_TARGET_AVX2 void rows_avx2(const QuantizedRows& x, int64_t m0, const void* w, float* y, int64_t ldy, int64_t n) {
  MG_QUANT_ROWS_BODY(lanes_avx2)
}

// AVX-512 VNNI on row-order weights (the rows a 16-row interleaved tensor leaves in row order, and
// tensors not loaded through the CPU backend): the AVX2 loop with vpdpbusd on 256-bit registers.
template <class Fmt, int M, int R>
MG_TARGET_AVX512 void rows_avx512(const QuantizedRows& x, int64_t m0, const void* w, float* y, int64_t ldy,
                                  int64_t n) {
  MG_QUANT_ROWS_BODY(lanes_vnni)
}

// Weight rows per pass for M activation rows (M * R block-sum registers, within AVX2's 16 ymm).
template <int M>
constexpr int rows_per_pass() {
  return M <= 2 ? 4 : 2;
}

template <class Fmt, bool Vnni, int M>
void run_m(const QuantizedRows& x, int64_t m0, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  int64_t n = n0;
  constexpr int R = rows_per_pass<M>();
  for (; n + R <= n1; n += R)
    Vnni ? rows_avx512<Fmt, M, R>(x, m0, w, y, ldy, n) : rows_avx2<Fmt, M, R>(x, m0, w, y, ldy, n);
  for (; n < n1; ++n)
    Vnni ? rows_avx512<Fmt, M, 1>(x, m0, w, y, ldy, n) : rows_avx2<Fmt, M, 1>(x, m0, w, y, ldy, n);
}

// Weight rows in tiles that stay in cache while every group of (at most 4) activation rows passes.
template <class Fmt, bool Vnni>
void rows_simd(const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  constexpr int64_t kTile = 24;
  for (int64_t t0 = n0; t0 < n1; t0 += kTile) {
    const int64_t t1 = std::min(n1, t0 + kTile);
    int64_t m0 = 0;
    for (; m0 + 4 <= x.m; m0 += 4) run_m<Fmt, Vnni, 4>(x, m0, w, y, ldy, t0, t1);
    switch (x.m - m0) {
      case 3: run_m<Fmt, Vnni, 3>(x, m0, w, y, ldy, t0, t1); break;
      case 2: run_m<Fmt, Vnni, 2>(x, m0, w, y, ldy, t0, t1); break;
      case 1: run_m<Fmt, Vnni, 1>(x, m0, w, y, ldy, t0, t1); break;
      default: break;
    }
  }
}

template <class Fmt>
void gemv(KernelPath p, const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  if (p == KernelPath::Avx512) return rows_simd<Fmt, true>(x, w, y, ldy, n0, n1);
  if (p == KernelPath::Avx2) return rows_simd<Fmt, false>(x, w, y, ldy, n0, n1);
  rows_portable<Fmt>(x, w, y, ldy, n0, n1);
}

}  // namespace mg::cpu::detail::quant_body
