// q4_0 weight rows . int8 activation blocks (linear_quant.h has the arithmetic every path shares).
// Per block: 16 bytes of nibbles unpacked to 32 int8 (low nibbles are values 0-15, high nibbles
// 16-31, so one AND and one shift give them in order), minus 8, then the q8_0 product; AVX-512
// VNNI feeds the nibbles (w + 8, unsigned) to vpdpbusd as they are, two rows per zmm, its
// accumulator starting at -8 x the activation lane sums.
#include <cstring>

#include "kernels/cpu/linear_quant_body.h"

namespace mg::cpu::detail {

namespace {

struct Q4 {
  static constexpr size_t kBlockBytes = kQ4BlockBytes;
  static float scale(const uint8_t* blk) {
    uint16_t d;
    std::memcpy(&d, blk, 2);
    return f16_to_f32(d);
  }
  static void values(const uint8_t* blk, int8_t out[32]) {
    for (int j = 0; j < 16; ++j) {
      out[j] = int8_t((blk[2 + j] & 15) - 8);
      out[j + 16] = int8_t((blk[2 + j] >> 4) - 8);
    }
  }
  MG_TARGET_AVX2 static float scale_f16c(const uint8_t* blk) {
    uint16_t d;
    std::memcpy(&d, blk, 2);
    return _cvtsh_ss(d);
  }
  MG_TARGET_AVX2 static __m256i values_avx2(const uint8_t* blk) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m128i lo = _mm_and_si128(b, _mm_set1_epi8(15));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(15));
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
  }
  static constexpr bool kQuads = true;  // quads_avx512 (linear_quant_body.h)
  static constexpr int32_t kOffset = 8;
  // [nibbles of b0 | the same | nibbles of b1 | the same], the odd 128-bit lanes shifted by 4:
  // low nibbles (values 0-15) then high ones (16-31) per row, as 0-15 = w + 8.
  MG_TARGET_AVX512 static __m512i pair_unsigned_avx512(const uint8_t* b0, const uint8_t* b1) {
    const __m256i n0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + 2)));
    const __m256i n1 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + 2)));
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(n0), n1, 1);
    const __m512i shifted = _mm512_srlv_epi64(v, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
    return _mm512_and_si512(shifted, _mm512_set1_epi8(15));
  }
};

}  // namespace

void gemv_q4_0(KernelPath p, const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  quant_body::gemv<Q4>(p, x, w, y, ldy, n0, n1);
}

}  // namespace mg::cpu::detail
