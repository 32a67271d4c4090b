// The quantized GEMV loops shared by linear_q8.cpp and linear_q4.cpp, instantiated per weight
// format (a Fmt type: kBlockBytes, scale(block), values_avx2(block) -> 32 signed int8 in a ymm,
// values(block, int8[32]), kOffset, pair_unsigned_avx512(block0, block1) -> two rows' blocks
// as 64 unsigned bytes w + kOffset, and kQuads: whether quads_avx512, written for q4_0's nibbles,
// runs first). Only those two files include this.
#pragma once

// GCC 12 warns about the "undefined" pass-through operand inside its own AVX-512 intrinsics when
// they are inlined into target("avx512f") functions (GCC bug 105593): not ours to fix. Only the
// two kernel files include this header.
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

inline float reduce8(const float a[8]) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }

// The portable path: the documented arithmetic in plain C++ (std::fma as the SIMD paths' FMA).
template <class Fmt>
void rows_portable(const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  const int64_t nb = x.k / kQuantBlock;
  int8_t wv[32];
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t m = 0; m < x.m; ++m) {
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = block_at(w, n, nb, b, Fmt::kBlockBytes);
        Fmt::values(blk, wv);
        const int8_t* xq = x.q + m * x.k + b * kQuantBlock;
        const float d = Fmt::scale(blk) * x.d[m * nb + b];
        for (int l = 0; l < 8; ++l) {
          int32_t s = 0;
          for (int j = 4 * l; j < 4 * l + 4; ++j) s += int32_t(xq[j]) * int32_t(wv[j]);
          acc[l] = std::fma(float(s), d, acc[l]);
        }
      }
      y[m * ldy + n] = reduce8(acc);
    }
}

MG_TARGET_AVX2 inline float reduce8(__m256 v) {
  alignas(32) float a[8];
  _mm256_store_ps(a, v);
  return reduce8(a);
}

MG_TARGET_AVX2 inline __m256i lanes_avx2(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
MG_TARGET_AVX512 inline __m256i lanes_vnni(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

// M activation rows x R weight rows per pass: each weight block is loaded and made unsigned once
// (|w|, with w's signs moved onto x: u8 x s8 is what the instructions multiply), then used M times.
// Weight rows are short (576 or 1088 bytes at k = 1024) and a pass reads R of them side by side:
// streams too short for the hardware prefetcher to follow, so each pass prefetches the next R
// rows (they follow in memory), a few lines per block, into L2 (measured: into L1 was no faster
// for q4_0 and slower for q8_0, whose passes are larger).
#define MG_QUANT_ROWS_BODY(LANES)                                                                    \
  const int64_t nb = x.k / kQuantBlock;                                                              \
  __m256 acc[M][R];                                                                                  \
  for (int m = 0; m < M; ++m)                                                                        \
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();                                     \
  constexpr int kLinesPerBlock = int((R * Fmt::kBlockBytes + 63) / 64);                             \
  const char* next = reinterpret_cast<const char*>(block_at(w, n + R, nb, 0, Fmt::kBlockBytes));     \
  for (int64_t b = 0; b < nb; ++b) {                                                                 \
    for (int l = 0; l < kLinesPerBlock; ++l) _mm_prefetch(next + (b * kLinesPerBlock + l) * 64, _MM_HINT_T1); \
    __m256i xv[M];                                                                                   \
    float xd[M];                                                                                     \
    for (int m = 0; m < M; ++m) {                                                                    \
      xv[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + (m0 + m) * x.k + b * kQuantBlock)); \
      xd[m] = x.d[(m0 + m) * nb + b];                                                                \
    }                                                                                                \
    for (int r = 0; r < R; ++r) {                                                                    \
      const uint8_t* blk = block_at(w, n + r, nb, b, Fmt::kBlockBytes);                              \
      const __m256i wv = Fmt::values_avx2(blk);                                                      \
      const __m256i wu = _mm256_sign_epi8(wv, wv);                                                   \
      const float wd = Fmt::scale_f16c(blk);                                                         \
      for (int m = 0; m < M; ++m) {                                                                  \
        const __m256i li = LANES(wu, _mm256_sign_epi8(xv[m], wv));                                   \
        acc[m][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(li), _mm256_set1_ps(wd * xd[m]), acc[m][r]);  \
      }                                                                                              \
    }                                                                                                \
  }                                                                                                  \
  for (int m = 0; m < M; ++m)                                                                        \
    for (int r = 0; r < R; ++r) y[(m0 + m) * ldy + n + r] = reduce8(acc[m][r]);

template <class Fmt, int M, int R>
MG_TARGET_AVX2 void rows_avx2(const QuantizedRows& x, int64_t m0, const void* w, float* y, int64_t ldy, int64_t n) {
  MG_QUANT_ROWS_BODY(lanes_avx2)
}

template <class Fmt, int M, int R>
MG_TARGET_AVX512 void rows_avx512(const QuantizedRows& x, int64_t m0, const void* w, float* y, int64_t ldy,
                                  int64_t n) {
  MG_QUANT_ROWS_BODY(lanes_vnni)
}

// AVX-512 VNNI, two weight rows per zmm: the low 256 bits hold row r's block, the high 256 bits
// row r + 1's, against the activation block broadcast to both halves, so each half's 8 int32 lanes
// and its f32 accumulator are exactly the ymm path's (same lanes, same FMA chain, same bits), at
// half the instructions. vpdpbusd multiplies unsigned by signed bytes: the weights go in as
// w + Fmt::kOffset (q8_0: w ^ 0x80 = w + 128; q4_0: the nibbles themselves, w + 8), and the
// accumulator starts at -kOffset * (the lane's 4 activations summed), computed once per call
// (`corr`), so every lane's integer sum is the signed one, exactly. P row pairs per pass.
template <class Fmt, int M, int P>
MG_TARGET_AVX512 void pairs_avx512(const QuantizedRows& x, const int32_t* corr, int64_t m0, const void* w, float* y,
                                   int64_t ldy, int64_t n) {
  const int64_t nb = x.k / kQuantBlock;
  // The 2P rows of the next pass follow these in memory: fetch them while this pass computes.
  constexpr int kLinesPerBlock = int((2 * P * Fmt::kBlockBytes + 63) / 64);
  const char* next = reinterpret_cast<const char*>(block_at(w, n + 2 * P, nb, 0, Fmt::kBlockBytes));
  __m512 acc[M][P];
  for (int m = 0; m < M; ++m)
    for (int p = 0; p < P; ++p) acc[m][p] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    for (int l = 0; l < kLinesPerBlock; ++l) _mm_prefetch(next + (b * kLinesPerBlock + l) * 64, _MM_HINT_T1);
    __m512i wu[P];
    __m512 wd[P];
    for (int p = 0; p < P; ++p) {
      const uint8_t* b0 = block_at(w, n + 2 * p, nb, b, Fmt::kBlockBytes);
      const uint8_t* b1 = block_at(w, n + 2 * p + 1, nb, b, Fmt::kBlockBytes);
      wu[p] = Fmt::pair_unsigned_avx512(b0, b1);
      uint16_t h0, h1;
      std::memcpy(&h0, b0, 2);
      std::memcpy(&h1, b1, 2);
      wd[p] = _mm512_cvtph_ps(_mm256_set_m128i(_mm_set1_epi16(short(h1)), _mm_set1_epi16(short(h0))));
    }
    for (int m = 0; m < M; ++m) {
      const __m512i xv = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + (m0 + m) * x.k + b * kQuantBlock)));
      const __m512i cv =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr + ((m0 + m) * nb + b) * 8)));
      const __m512 xd = _mm512_set1_ps(x.d[(m0 + m) * nb + b]);
      for (int p = 0; p < P; ++p) {
        const __m512i li = _mm512_dpbusd_epi32(cv, wu[p], xv);
        acc[m][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(li), _mm512_mul_ps(wd[p], xd), acc[m][p]);
      }
    }
  }
  for (int m = 0; m < M; ++m)
    for (int p = 0; p < P; ++p) {
      y[(m0 + m) * ldy + n + 2 * p] = reduce8(_mm512_castps512_ps256(acc[m][p]));
      y[(m0 + m) * ldy + n + 2 * p + 1] = reduce8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[m][p]), 1)));
    }
}

// q4_0 on AVX-512 VNNI, four weight rows per 512-bit register: a block's 16 nibble bytes per row
// fill one 128-bit segment, so the low nibbles of four rows (values 0-15: lanes 0-3) are one
// register and the high nibbles (values 16-31: lanes 4-7) another, against the activation block's
// first or second half broadcast to every segment. Each segment's 4 int32 lanes and their f32
// accumulators are again exactly the 8 lanes of the ymm path (lanes 0-3 in `lo`, 4-7 in `hi`), and
// one scale product serves both registers: about a third fewer instructions per weight byte than
// two rows per register, which q4_0 (compute-bound there, not memory-bound) needs. Q quads per pass.
template <class Fmt, int M, int Q>
MG_TARGET_AVX512 void quads_avx512(const QuantizedRows& x, const int32_t* corr, int64_t m0, const void* w, float* y,
                                   int64_t ldy, int64_t n) {
  const int64_t nb = x.k / kQuantBlock;
  constexpr int kLinesPerBlock = int((4 * Q * Fmt::kBlockBytes + 63) / 64);
  const char* next = reinterpret_cast<const char*>(block_at(w, n + 4 * Q, nb, 0, Fmt::kBlockBytes));
  const size_t row_bytes = size_t(nb) * Fmt::kBlockBytes;
  const uint8_t* w0 = block_at(w, n, nb, 0, Fmt::kBlockBytes);
  const __m512i low4 = _mm512_set1_epi8(15);
  const __m512i seg_index = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  __m512 lo[M][Q], hi[M][Q];
  for (int m = 0; m < M; ++m)
    for (int q = 0; q < Q; ++q) lo[m][q] = hi[m][q] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    for (int l = 0; l < kLinesPerBlock; ++l) _mm_prefetch(next + (b * kLinesPerBlock + l) * 64, _MM_HINT_T1);
    __m512i wl[Q], wh[Q];
    __m512 wd[Q];
    for (int q = 0; q < Q; ++q) {
      const uint8_t* r0 = w0 + size_t(4 * q) * row_bytes + size_t(b) * Fmt::kBlockBytes;
      __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + 2)));
      v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + row_bytes + 2)), 1);
      v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + 2 * row_bytes + 2)), 2);
      v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + 3 * row_bytes + 2)), 3);
      wl[q] = _mm512_and_si512(v, low4);
      wh[q] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      uint16_t h[4];
      for (int r = 0; r < 4; ++r) std::memcpy(&h[r], r0 + size_t(r) * row_bytes, 2);
      uint64_t packed = uint64_t(h[0]) | uint64_t(h[1]) << 16 | uint64_t(h[2]) << 32 | uint64_t(h[3]) << 48;
      const __m128 d4 = _mm_cvtph_ps(_mm_cvtsi64_si128(int64_t(packed)));
      wd[q] = _mm512_permutexvar_ps(seg_index, _mm512_castps128_ps512(d4));
    }
    for (int m = 0; m < M; ++m) {
      const int8_t* xq = x.q + (m0 + m) * x.k + b * kQuantBlock;
      const int32_t* cq = corr + ((m0 + m) * nb + b) * 8;
      const __m512i xl = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xq)));
      const __m512i xh = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xq + 16)));
      const __m512i cl = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cq)));
      const __m512i ch = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cq + 4)));
      const __m512 xd = _mm512_set1_ps(x.d[(m0 + m) * nb + b]);
      for (int q = 0; q < Q; ++q) {
        const __m512 d = _mm512_mul_ps(wd[q], xd);
        lo[m][q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(cl, wl[q], xl)), d, lo[m][q]);
        hi[m][q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(ch, wh[q], xh)), d, hi[m][q]);
      }
    }
  }
  // reduce8's tree: (a0 + a4) etc. first (lo + hi), then ((s0 + s2) + (s1 + s3)) per row.
  for (int m = 0; m < M; ++m)
    for (int q = 0; q < Q; ++q) {
      alignas(64) float s[16];
      _mm512_store_ps(s, _mm512_add_ps(lo[m][q], hi[m][q]));
      for (int r = 0; r < 4; ++r)
        y[(m0 + m) * ldy + n + 4 * q + r] = (s[4 * r] + s[4 * r + 2]) + (s[4 * r + 1] + s[4 * r + 3]);
    }
}

// The activation lane sums times -Fmt::kOffset: [m, k / 32, 8] int32 (see pairs_avx512).
template <class Fmt>
std::vector<int32_t> offset_corrections(const QuantizedRows& x) {
  std::vector<int32_t> corr(size_t(x.m * (x.k / 4)));
  for (int64_t i = 0; i < x.m * (x.k / 4); ++i)
    corr[size_t(i)] = -Fmt::kOffset * (int32_t(x.q[4 * i]) + x.q[4 * i + 1] + x.q[4 * i + 2] + x.q[4 * i + 3]);
  return corr;
}

// Weight rows per pass for M activation rows (accumulators M * R, within the 16 ymm of AVX2).
template <int M>
constexpr int rows_per_pass() {
  return M <= 2 ? 4 : 2;
}

template <class Fmt, bool Vnni, int M>
void run_m(const QuantizedRows& x, const int32_t* corr, int64_t m0, const void* w, float* y, int64_t ldy, int64_t n0,
           int64_t n1) {
  int64_t n = n0;
  if constexpr (Fmt::kQuads) {
    constexpr int Q = M <= 2 ? 3 : 2;  // 2 * M * Q zmm accumulators
    if (Vnni)
      for (; n + 4 * Q <= n1; n += 4 * Q) quads_avx512<Fmt, M, Q>(x, corr, m0, w, y, ldy, n);
  }
  if (Vnni) {
    constexpr int P = M <= 2 ? 4 : 2;  // M * P zmm accumulators
    for (; n + 2 * P <= n1; n += 2 * P) pairs_avx512<Fmt, M, P>(x, corr, m0, w, y, ldy, n);
    for (; n + 2 <= n1; n += 2) pairs_avx512<Fmt, M, 1>(x, corr, m0, w, y, ldy, n);
  }
  constexpr int R = rows_per_pass<M>();
  for (; n + R <= n1; n += R)
    Vnni ? rows_avx512<Fmt, M, R>(x, m0, w, y, ldy, n) : rows_avx2<Fmt, M, R>(x, m0, w, y, ldy, n);
  for (; n < n1; ++n)
    Vnni ? rows_avx512<Fmt, M, 1>(x, m0, w, y, ldy, n) : rows_avx2<Fmt, M, 1>(x, m0, w, y, ldy, n);
}

// Weight rows in tiles that stay in cache while every group of (at most 4) activation rows passes.
template <class Fmt, bool Vnni>
void rows_simd(const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  const std::vector<int32_t> corr = Vnni ? offset_corrections<Fmt>(x) : std::vector<int32_t>();
  const int32_t* c = corr.data();
  constexpr int64_t kTile = 24;  // whole passes of 8 (pairs), 12 and 8 (quads) rows
  for (int64_t t0 = n0; t0 < n1; t0 += kTile) {
    const int64_t t1 = std::min(n1, t0 + kTile);
    int64_t m0 = 0;
    for (; m0 + 4 <= x.m; m0 += 4) run_m<Fmt, Vnni, 4>(x, c, m0, w, y, ldy, t0, t1);
    switch (x.m - m0) {
      case 3: run_m<Fmt, Vnni, 3>(x, c, m0, w, y, ldy, t0, t1); break;
      case 2: run_m<Fmt, Vnni, 2>(x, c, m0, w, y, ldy, t0, t1); break;
      case 1: run_m<Fmt, Vnni, 1>(x, c, m0, w, y, ldy, t0, t1); break;
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
