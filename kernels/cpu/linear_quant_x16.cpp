// q8_0/q4_0 GEMV over weights interleaved by 16 rows (QuantLayout::Interleaved16, kernels/quant.h).
// The row-order kernels (linear_q8.cpp, linear_q4.cpp) gather each row's blocks, unpack nibbles
// per row and broadcast every block's scale; on 2 cores that, not memory, bounds q4_0. Here one
// 64-byte chunk holds 4 consecutive values of 16 rows (one row per 32-bit lane), so one vpdpbusd
// makes lane l's 4-value partial sum for 16 rows at once: a block is 8 vpdpbusd per activation
// row, the 16 rows' scales are one f16 load + convert, q4_0's nibbles are unpacked once for 16
// rows, and the outputs come out as a vector (no horizontal sums).
// Arithmetic: per output exactly linear_quant.h's (lane l's int32 sum, converted, fused-multiply-
// added with (weight scale * activation scale) into lane l's own f32 accumulator, blocks in order,
// then ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))): the same bits as every row-order path.
#include "kernels/cpu/linear_quant_body.h"

namespace mg::cpu::detail {

namespace {

constexpr int64_t kGroup = 16;
constexpr size_t kScaleBytes = 32;  // 16 f16 scales per block

size_t group_block_bytes(DType t) { return kGroup * (t == DType::Q8_0 ? kQ8BlockBytes : kQ4BlockBytes); }

// Lane l (values 4l..4l+3) of row r of an interleaved block, as signed int8 (the portable path).
void lane_values(DType t, const uint8_t* blk, int r, int l, int8_t out[4]) {
  if (t == DType::Q8_0) {
    for (int i = 0; i < 4; ++i) out[i] = int8_t(blk[kScaleBytes + 64 * l + 4 * r + i] ^ 0x80);
    return;
  }
  for (int i = 0; i < 4; ++i) {
    const uint8_t v = blk[kScaleBytes + 64 * (l & 3) + 4 * r + i];
    out[i] = int8_t((l < 4 ? v & 15 : v >> 4) - 8);
  }
}

// The documented arithmetic in plain C++ (rows_portable of linear_quant_body.h, read interleaved).
void groups_portable(DType t, const QuantizedRows& x, const uint8_t* w, float* y, int64_t ldy, int64_t g0,
                     int64_t g1) {
  const int64_t nb = x.k / kQuantBlock;
  const size_t gbb = group_block_bytes(t);
  for (int64_t g = g0; g < g1; ++g)
    for (int r = 0; r < kGroup; ++r)
      for (int64_t m = 0; m < x.m; ++m) {
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* blk = w + size_t(g * nb + b) * gbb;
          uint16_t h;
          std::memcpy(&h, blk + 2 * r, 2);
          const float d = f16_to_f32(h) * x.d[m * nb + b];
          const int8_t* xq = x.q + m * x.k + b * kQuantBlock;
          for (int l = 0; l < 8; ++l) {
            int8_t wv[4];
            lane_values(t, blk, r, l, wv);
            int32_t s = 0;
            for (int i = 0; i < 4; ++i) s += int32_t(xq[4 * l + i]) * int32_t(wv[i]);
            acc[l] = std::fma(float(s), d, acc[l]);
          }
        }
        y[m * ldy + g * kGroup + r] = quant_body::reduce8(acc);
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
// (w + kOffset) by signed activations; its accumulator starts at -kOffset x the lane's activation
// sum (corr), so each lane's int32 sum is the signed one, exactly (as pairs_avx512).
template <bool Q8, int M>
MG_TARGET_AVX512 void group_avx512(const QuantizedRows& x, const int32_t* corr, int64_t m0, const uint8_t* g,
                                   float* y, int64_t ldy) {
  const int64_t nb = x.k / kQuantBlock;
  constexpr size_t kBlock = kGroup * (Q8 ? kQ8BlockBytes : kQ4BlockBytes);
  __m512 acc[M][8];
  for (int m = 0; m < M; ++m)
    for (int l = 0; l < 8; ++l) acc[m][l] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = g + size_t(b) * kBlock;
    const __m512 wd = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    __m512i wu[8];
    lanes_x16<Q8>(blk + kScaleBytes, wu);
    for (int m = 0; m < M; ++m) {
      const int64_t row = (m0 + m) * nb + b;
      const __m512 d = _mm512_mul_ps(wd, _mm512_set1_ps(x.d[row]));
      int32_t xq[8];
      std::memcpy(xq, x.q + (m0 + m) * x.k + b * kQuantBlock, sizeof(xq));
      const int32_t* cq = corr + row * 8;
      for (int l = 0; l < 8; ++l) {
        const __m512i s = _mm512_dpbusd_epi32(_mm512_set1_epi32(cq[l]), wu[l], _mm512_set1_epi32(xq[l]));
        acc[m][l] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc[m][l]);
      }
    }
  }
  for (int m = 0; m < M; ++m) {
    const __m512* a = acc[m];
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[4]), _mm512_add_ps(a[2], a[6])),
                                     _mm512_add_ps(_mm512_add_ps(a[1], a[5]), _mm512_add_ps(a[3], a[7])));
    _mm512_storeu_ps(y + (m0 + m) * ldy, sum);
  }
}

template <bool Q8>
void groups_avx512(const QuantizedRows& x, const uint8_t* w, float* y, int64_t ldy, int64_t g0, int64_t g1) {
  constexpr int32_t kOffset = Q8 ? 128 : 8;
  const int64_t nb = x.k / kQuantBlock;
  std::vector<int32_t> corr(size_t(x.m * (x.k / 4)));
  for (int64_t i = 0; i < x.m * (x.k / 4); ++i)
    corr[size_t(i)] = -kOffset * (int32_t(x.q[4 * i]) + x.q[4 * i + 1] + x.q[4 * i + 2] + x.q[4 * i + 3]);
  const size_t gbytes = size_t(nb) * kGroup * (Q8 ? kQ8BlockBytes : kQ4BlockBytes);
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* gw = w + size_t(g) * gbytes;
    float* gy = y + g * kGroup;
    int64_t m0 = 0;
    for (; m0 + 2 <= x.m; m0 += 2) group_avx512<Q8, 2>(x, corr.data(), m0, gw, gy, ldy);
    if (m0 < x.m) group_avx512<Q8, 1>(x, corr.data(), m0, gw, gy, ldy);
  }
}

}  // namespace

void gemv_x16(KernelPath p, DType t, const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t g0,
              int64_t g1) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  if (p == KernelPath::Avx512) {
    if (t == DType::Q8_0) return groups_avx512<true>(x, wb, y, ldy, g0, g1);
    return groups_avx512<false>(x, wb, y, ldy, g0, g1);
  }
  groups_portable(t, x, wb, y, ldy, g0, g1);
}

}  // namespace mg::cpu::detail
