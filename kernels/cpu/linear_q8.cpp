// q8_0 weight rows . int8 activation blocks (linear_quant.h has the arithmetic every path shares).
// Per block: 32 int8 weights loaded as they are; |w| x sign-moved x through vpmaddubsw + vpmaddwd
// (AVX2) or vpdpbusd (AVX-512 VNNI, 256-bit); the portable path does the same sums in C++. Weights
// loaded by the CPU backend on the AVX-512 path are interleaved instead (linear_quant_x16.cpp).
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
};

}  // namespace

void gemv_q8_0(KernelPath p, const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  quant_body::gemv<Q8>(p, x, w, y, ldy, n0, n1);
}

}  // namespace mg::cpu::detail
