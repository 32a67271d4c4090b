// q8_0 weight rows . int8 activation blocks (linear_quant.h has the arithmetic every path shares).
// Per block: 32 int8 weights loaded as they are; AVX-512 VNNI: two rows' blocks per zmm as w + 128
// (w ^ 0x80) through vpdpbusd, its accumulator starting at -128 x the activation lane sums; AVX2:
// |w| x sign-moved x through vpmaddubsw + vpmaddwd; the portable path does the same sums in C++.
#include <cstring>

#include "kernels/cpu/linear_quant_body.h"

namespace mg::cpu::detail {

namespace {

struct Q8 {
  static constexpr size_t kBlockBytes = kQ8BlockBytes;
  static float scale(const uint8_t* blk) {
    uint16_t d;
    std::memcpy(&d, blk, 2);
    return f16_to_f32(d);
  }
  static void values(const uint8_t* blk, int8_t out[32]) { std::memcpy(out, blk + 2, 32); }
  MG_TARGET_AVX2 static float scale_f16c(const uint8_t* blk) {
    uint16_t d;
    std::memcpy(&d, blk, 2);
    return _cvtsh_ss(d);
  }
  MG_TARGET_AVX2 static __m256i values_avx2(const uint8_t* blk) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  }
  static constexpr bool kQuads = false;  // quads_avx512 (linear_quant_body.h)
  static constexpr int32_t kOffset = 128;
  MG_TARGET_AVX512 static __m512i pair_unsigned_avx512(const uint8_t* b0, const uint8_t* b1) {
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(values_avx2(b0)), values_avx2(b1), 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8(char(0x80)));  // w + 128 as unsigned
  }
};

}  // namespace

void gemv_q8_0(KernelPath p, const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  quant_body::gemv<Q8>(p, x, w, y, ldy, n0, n1);
}

}  // namespace mg::cpu::detail
