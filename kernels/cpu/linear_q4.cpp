// q4_0 weight rows . int8 activation blocks (linear_quant.h has the arithmetic every path shares).
// Per block: 16 bytes of nibbles unpacked to 32 int8 (low nibbles are values 0-15, high nibbles
// 16-31, so one AND and one shift give them in order), minus 8, then the q8_0 product. Weights
// loaded by the CPU backend on the AVX-512 path are interleaved instead (linear_quant_x16.cpp).
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
};

}  // namespace

void gemv_q4_0(KernelPath p, const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  quant_body::gemv<Q4>(p, x, w, y, ldy, n0, n1);
}

}  // namespace mg::cpu::detail
