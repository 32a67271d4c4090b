// q8_0/q4_0 GEMV over weights interleaved by 16 rows (QuantLayout::Interleaved16, kernels/quant.h).
// The row-order kernels (linear_q8.cpp, linear_q4.cpp) gather each row's blocks, unpack nibbles
// per row and broadcast every block's scale; on 2 cores that, not memory, bounds q4_0. Here one
// 64-byte chunk holds 4 consecutive values of 16 rows (one row per 32-bit lane), so one vpdpbusd
// adds 4 values' products to 16 rows' block sums at once: a block is 8 vpdpbusd per activation
// row, then one convert, one scale multiply and one FMA for 16 outputs; the 16 rows' scales are
// one f16 load + convert, q4_0's nibbles are unpacked once for 16 rows, and the outputs come out
// as a vector (no horizontal sums).
// With several activation rows (the server's shared step: 2 per request), a group's blocks are
// read once per pass of up to 16 rows. The last pass (the only one, for a single request's 2 rows)
// requests the next group's blocks into L2. With 16 rows, without that the first pass waited for
// memory and the others computed, one after the other (time = read time + compute time); with it a
// 16-row q8_0 call from memory runs at about its in-cache time. With 2 rows, on a 2-core Xeon the
// hardware prefetcher alone kept too few reads in flight (q4_0 ~17 GB/s where the machine reads
// ~32): the requests lift a q4 decode step by ~33% and q8 by ~20% (docs/PERFORMANCE.md).
// Arithmetic: per output exactly linear_quant.h's (the block's int32 sum, converted, fused-
// multiply-added with (weight scale * activation scale), blocks in order): the same bits as every
// row-order path.
#include "kernels/cpu/linear_quant_body.h"

namespace mg::cpu::detail {

namespace {

constexpr int64_t kGroup = 16;
typedef int32_t Int32Alias __attribute__((may_alias));
constexpr size_t kScaleBytes = 32;  // 16 f16 scales per block

size_t group_block_bytes(DType t) { return kGroup * (t == DType::Q8_0 ? kQ8BlockBytes : kQ4BlockBytes); }

// Value j of row r of an interleaved block, as signed int8 (the portable path).
int8_t value_at(DType t, const uint8_t* blk, int r, int j) {
  const int lane = j / 4, i = j % 4;
  if (t == DType::Q8_0) return int8_t(blk[kScaleBytes + 64 * lane + 4 * r + i] ^ 0x80);
  const uint8_t v = blk[kScaleBytes + 64 * (lane & 3) + 4 * r + i];  // values j and j + 16 share a byte
  return int8_t((lane < 4 ? v & 15 : v >> 4) - 8);
}

// The documented arithmetic in plain C++ (rows_portable of linear_quant_body.h, read interleaved).
void groups_portable(DType t, const QuantizedRows& x, const uint8_t* w, float* y, int64_t ldy, int64_t g0,
                     int64_t g1) {
  const int64_t nb = x.k / kQuantBlock;
  const size_t gbb = group_block_bytes(t);
  for (int64_t g = g0; g < g1; ++g)
    for (int r = 0; r < kGroup; ++r)
      for (int64_t m = 0; m < x.m; ++m) {
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* blk = w + size_t(g * nb + b) * gbb;
          uint16_t h;
          std::memcpy(&h, blk + 2 * r, 2);
          const int8_t* xq = x.q + m * x.k + b * kQuantBlock;
          int32_t s = 0;
          for (int j = 0; j < kQuantBlock; ++j) s += int32_t(xq[j]) * int32_t(value_at(t, blk, r, j));
          acc = std::fma(float(s), f16_to_f32(h) * x.d[m * nb + b], acc);
        }
        y[m * ldy + g * kGroup + r] = acc;
      }
}

// A block's 8 lanes of 16 rows as unsigned bytes w + offset (q8_0: stored so; q4_0: the nibbles).
template <bool Q8>
MG_TARGET_AVX512 inline void lanes_x16(const uint8_t* v, __m512i out[8]) {
  if constexpr (Q8) {
    for (int l = 0; l < 8; ++l) out[l] = _mm512_loadu_si512(v + 64 * l);
  } else {
    const __m512i low4 = _mm512_set1_epi8(15);
    for (int c = 0; c < 4; ++c) {
      const __m512i n = _mm512_loadu_si512(v + 64 * c);
      out[c] = _mm512_and_si512(n, low4);
      out[c + 4] = _mm512_and_si512(_mm512_srli_epi16(n, 4), low4);
    }
  }
}

// M activation rows against one group of 16 weight rows. vpdpbusd multiplies unsigned weights
// (w + kOffset: q8_0 stored so, q4_0's nibbles as they are) by signed activations; the sum starts
// at -kOffset x the activation block's sum (corr), so each block sum is the signed one, exactly.
// Two chains of 4 vpdpbusd per block (their latency), added at the end.
// next: the following group, whose blocks are requested into L2 as this one's are read (or null).
template <bool Q8, int M>
MG_TARGET_AVX512 void group_avx512(const ActivationBlocks& a, int64_t m0, const uint8_t* g, float* y, int64_t ldy,
                                   const uint8_t* next) {
  const int64_t nb = a.blocks;
  constexpr size_t kBlock = kGroup * (Q8 ? kQ8BlockBytes : kQ4BlockBytes);
  __m512 acc[M];
  for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = g + size_t(b) * kBlock;
    if (next)
      for (size_t off = 0; off < kBlock; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(next + size_t(b) * kBlock + off), _MM_HINT_T1);
    const __m512 wd = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    __m512i wu[8];
    lanes_x16<Q8>(blk + kScaleBytes, wu);
    const ActivationBlocks::Record r = a.at(b);
    for (int m = 0; m < M; ++m) {
      const __m512 d = _mm512_mul_ps(wd, _mm512_set1_ps(r.d[m0 + m]));
      // 4 activations as one int32, broadcast from memory: not through a general register (GCC
      // does that for a copied array: twice the uops).
      const Int32Alias* xq = reinterpret_cast<const Int32Alias*>(r.q + (m0 + m) * kQuantBlock);
      __m512i s0 = _mm512_set1_epi32(r.corr[m0 + m]), s1 = _mm512_setzero_si512();
      for (int l = 0; l < 8; l += 2) {
        s0 = _mm512_dpbusd_epi32(s0, wu[l], _mm512_set1_epi32(xq[l]));
        s1 = _mm512_dpbusd_epi32(s1, wu[l + 1], _mm512_set1_epi32(xq[l + 1]));
      }
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), d, acc[m]);
    }
  }
  for (int m = 0; m < M; ++m) _mm512_storeu_ps(y + (m0 + m) * ldy, acc[m]);
}

// Per block and row: the 32 values copied, their sum (vpdpbusd with ones: exact) times -offset,
// the scale. Once per call: scalar in every thread, [2, 4096] was a few us of each thread's time.
MG_TARGET_AVX512 ActivationBlocks pack_avx512(const QuantizedRows& x, int32_t offset) {
  ActivationBlocks a;
  a.blocks = x.k / kQuantBlock;
  a.rows = x.m;
  a.stride = size_t(x.m) * (kQuantBlock + 8);
  a.bytes.reset(new uint8_t[size_t(a.blocks) * a.stride]);
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < a.blocks; ++b) {
    uint8_t* rec = a.bytes.get() + size_t(b) * a.stride;
    for (int64_t m = 0; m < x.m; ++m) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + m * x.k + b * kQuantBlock));
      const __m256i s8 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
      const int32_t c = -offset * _mm_cvtsi128_si32(s);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(rec + m * kQuantBlock), q);
      std::memcpy(rec + x.m * kQuantBlock + 4 * m, &c, 4);
      std::memcpy(rec + x.m * (kQuantBlock + 4) + 4 * m, &x.d[m * a.blocks + b], 4);
    }
  }
  return a;
}

template <bool Q8>
void groups_avx512(const ActivationBlocks& a, const uint8_t* w, float* y, int64_t ldy, int64_t g0, int64_t g1) {
  const int64_t nb = a.blocks;
  const int64_t rows = a.rows;
  const size_t gbytes = size_t(nb) * kGroup * (Q8 ? kQ8BlockBytes : kQ4BlockBytes);
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* gw = w + size_t(g) * gbytes;
    float* gy = y + g * kGroup;
    const uint8_t* next = g + 1 < g1 ? gw + gbytes : nullptr;
    for (int64_t m0 = 0; m0 < rows;) {
      const int64_t left = rows - m0;
      const int m = left >= 16 ? 16 : left >= 8 ? 8 : left >= 4 ? 4 : int(left);
      const uint8_t* pf = m0 + m == rows ? next : nullptr;  // the group's last pass
      switch (m) {
        case 16: group_avx512<Q8, 16>(a, m0, gw, gy, ldy, pf); break;
        case 8: group_avx512<Q8, 8>(a, m0, gw, gy, ldy, pf); break;
        case 4: group_avx512<Q8, 4>(a, m0, gw, gy, ldy, pf); break;
        case 3: group_avx512<Q8, 3>(a, m0, gw, gy, ldy, pf); break;
        case 2: group_avx512<Q8, 2>(a, m0, gw, gy, ldy, pf); break;
        default: group_avx512<Q8, 1>(a, m0, gw, gy, ldy, pf); break;
      }
      m0 += m;
    }
  }
}

}  // namespace

ActivationBlocks pack_x16(KernelPath p, DType t, const QuantizedRows& x) {
  if (p != KernelPath::Avx512) return {};
  return pack_avx512(x, t == DType::Q8_0 ? 128 : 8);
}

void gemv_x16(KernelPath p, DType t, const QuantizedRows& x, const ActivationBlocks& a, const void* w, float* y,
              int64_t ldy, int64_t g0, int64_t g1) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  if (p == KernelPath::Avx512) {
    if (t == DType::Q8_0) return groups_avx512<true>(a, wb, y, ldy, g0, g1);
    return groups_avx512<false>(a, wb, y, ldy, g0, g1);
  }
  groups_portable(t, x, wb, y, ldy, g0, g1);
}

}  // namespace mg::cpu::detail
