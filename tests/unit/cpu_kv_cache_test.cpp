// The CPU write_kv (kernels/cpu/kv_cache.cpp) against f32_to_f16 / f32_to_bf16, the rounding of
// the host default: every value class (normals, subnormals, halfway cases, overflow, infinities,
// NaNs with payloads), through the F16C path and the portable one, into f16, bf16 and f32 caches.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace {

using mg::DType;
using mg::Tensor;
namespace cpu = mg::cpu;

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Values that exercise each branch of f32_to_f16, then random bit patterns (every class mixed).
std::vector<float> tricky_values(size_t n) {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e30f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          bits_float(0x7fc00000u), bits_float(0xffc00001u), bits_float(0x7f800001u),
                          bits_float(0x7fbfffffu), 6.1035156e-05f, 6.0e-05f, 5.96e-08f, 2.98e-08f, 2.99e-08f,
                          1e-10f, bits_float(0x33000000u), bits_float(0x33000001u), bits_float(0x38800000u),
                          bits_float(0x387fffffu), 1.0009765625f, 1.00048828125f, 1.00146484375f};
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any;
  std::normal_distribution<float> g(0.0f, 3.0f);
  while (v.size() < n) {
    v.push_back(bits_float(any(rng)));
    v.push_back(g(rng));
  }
  v.resize(n);
  return v;
}

// src [R * S, W], written from column col0 into a cache [R, cap, D] at pos, compared element by
// element with the scalar rounding; the positions around the write stay as they were.
void check_write(DType cache_dtype, bool simd) {
  const int64_t R = 2, S = 3, cap = 7, D = 37, W = 3 * D + 5, col0 = D + 2, pos = 2;
  const std::vector<float> vals = tricky_values(size_t(R * S * W));
  Tensor src = Tensor::from_vector(vals, {R * S, W});
  Tensor cache = Tensor::zeros(cache_dtype, {R, cap, D});
  cpu::Exec ex;
  ex.allow_simd = simd;
  cpu::write_kv(cache, pos, src, col0, ex);
  const size_t es = mg::dtype_size(cache_dtype);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t p = 0; p < cap; ++p)
      for (int64_t i = 0; i < D; ++i) {
        const char* at = static_cast<const char*>(cache.data) + ((r * cap + p) * D + i) * es;
        uint32_t want = 0, got = 0;
        if (p >= pos && p < pos + S) {
          const float f = vals[size_t((r * S + p - pos) * W + col0 + i)];
          if (cache_dtype == DType::F16) want = mg::f32_to_f16(f);
          else if (cache_dtype == DType::BF16) want = mg::f32_to_bf16(f);
          else std::memcpy(&want, &f, 4);
        }
        std::memcpy(&got, at, es);
        ASSERT_EQ(got, want) << "row " << r << " position " << p << " column " << i << " simd " << simd;
      }
}

TEST(CpuWriteKv, F16MatchesScalarRoundingSimd) { check_write(DType::F16, true); }
TEST(CpuWriteKv, F16MatchesScalarRoundingPortable) { check_write(DType::F16, false); }
TEST(CpuWriteKv, Bf16MatchesScalarRounding) { check_write(DType::BF16, true); }
TEST(CpuWriteKv, F32CopiesBits) { check_write(DType::F32, true); }

}  // namespace
