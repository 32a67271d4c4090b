// The CPU layer_norm's AVX-512 path (kernels/cpu/norm.cpp) against its portable loop: the two sum
// the same doubles in a different order, which must not show in the float results of rows like a
// decoder's hidden states (widths 1024 and 1536, scales from 1e-3 to 1e3, an outlier or an offset
// mean, with a tail that is not a whole vector); and a row gives the same bits alone or among others.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace {

using mg::DType;
using mg::Tensor;
namespace cpu = mg::cpu;

Tensor gaussian(int64_t rows, int64_t d, float scale, float offset, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(size_t(rows * d));
  for (float& x : v) x = offset + scale * g(rng);
  for (int64_t r = 0; r < rows; ++r) v[size_t(r * d + (r * 37) % d)] *= 40.0f;  // one outlier per row
  return Tensor::from_vector(v, {rows, d});
}

int64_t differing(const Tensor& a, const Tensor& b) {
  int64_t n = 0;
  for (int64_t i = 0; i < a.numel(); ++i) n += std::memcmp(a.f32() + i, b.f32() + i, 4) != 0;
  return n;
}

TEST(CpuLayerNorm, Avx512MatchesPortableBits) {
  if (!cpu::cpu_has_avx512()) GTEST_SKIP() << "no AVX-512 on this processor";
  cpu::Exec portable;
  portable.allow_simd = false;
  const cpu::Exec simd;
  int seed = 1;
  for (int64_t d : {1024, 1536, 1000, 7})
    for (float scale : {1e-3f, 1.0f, 30.0f, 1e3f})
      for (float offset : {0.0f, 5.0f}) {
        const Tensor x = gaussian(64, d, scale, offset * scale, uint32_t(seed++));
        const Tensor g = gaussian(1, d, 0.2f, 1.0f, uint32_t(seed++)).reshape({d});
        const Tensor b = gaussian(1, d, 0.1f, 0.0f, uint32_t(seed++)).reshape({d});
        EXPECT_EQ(differing(cpu::layer_norm(x, g, &b, 1e-5f, simd), cpu::layer_norm(x, g, &b, 1e-5f, portable)), 0)
            << "d " << d << " scale " << scale << " offset " << offset;
        EXPECT_EQ(differing(cpu::layer_norm(x, g, nullptr, 1e-5f, simd), cpu::layer_norm(x, g, nullptr, 1e-5f, portable)),
                  0)
            << "no bias, d " << d << " scale " << scale;
      }
}

TEST(CpuLayerNorm, RowAloneKeepsItsBits) {
  const int64_t d = 1024;
  const Tensor x = gaussian(16, d, 2.0f, 0.5f, 99);
  const Tensor g = gaussian(1, d, 0.2f, 1.0f, 100).reshape({d});
  const Tensor b = gaussian(1, d, 0.1f, 0.0f, 101).reshape({d});
  cpu::ThreadPool pool(2);
  cpu::Exec ex;
  ex.pool = &pool;
  const Tensor all = cpu::layer_norm(x, g, &b, 1e-5f, ex);
  for (int64_t r = 0; r < 16; ++r) {
    const Tensor alone = cpu::layer_norm(x.slice0(r, 1), g, &b, 1e-5f, ex);
    EXPECT_EQ(std::memcmp(alone.data, all.f32() + r * d, size_t(d) * 4), 0) << "row " << r;
  }
}

}  // namespace
