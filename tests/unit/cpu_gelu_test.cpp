// Trap: GELU's erf. The decoder FFN's exact GELU needs erf, and the CPU backend computes it with its
// own rational approximation in vector lanes (kernels/cpu/gelu.cpp) while PyTorch uses Sleef/glibc.
// What must never happen: an error that reaches the logits (more than a few 1e-7 absolute in erf,
// e.g. a wrong coefficient or a bad clamp), a result that depends on the CPU's vector width or on the
// position of a value in the tail, or NaN/Inf/-0 handled differently from torch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace {

using mg::Tensor;
namespace cpu = mg::cpu;

Tensor sweep() {
  std::vector<float> v;
  for (double x = -12.0; x <= 12.0; x += 1.0 / 4096) v.push_back(float(x));
  for (float x : {-0.0f, 0.0f, 1e-30f, -1e-30f, 5.656854f, -5.656854f, 5.6568546f, -5.6568546f, 1e30f, -1e30f,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
    v.push_back(x);
  while (v.size() % 16 != 7) v.push_back(-0.75f);  // a tail that the vector loops leave to scalar code
  return Tensor::from_vector(v, {int64_t(v.size())});
}

double exact_gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

TEST(CpuGelu, CloseToExactErf) {
  Tensor x = sweep();
  Tensor y = cpu::gelu(x, cpu::Exec{nullptr, true});
  double worst = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = x.f32()[i];
    if (std::isinf(v)) continue;
    // erf's error (~2e-7) scaled by x/2, plus the float rounding of the result.
    const double want = exact_gelu(v), err = std::fabs(y.f32()[i] - want);
    const double bound = 4e-7 * std::max(1.0, std::fabs(v));
    EXPECT_LE(err, bound) << "x = " << v << ": got " << y.f32()[i] << ", want " << want;
    worst = std::max(worst, err / std::max(1.0, std::fabs(v)));
  }
  std::printf("GELU: %lld values, worst error %.3g (absolute, over max(1, |x|))\n", (long long)x.numel(), worst);
}

TEST(CpuGelu, SimdAndPortablePathsAreBitIdentical) {
  Tensor x = sweep();
  cpu::Exec simd{nullptr, true}, plain{nullptr, false};
  Tensor a = cpu::gelu(x, simd), b = cpu::gelu(x, plain);
  EXPECT_EQ(std::memcmp(a.f32(), b.f32(), size_t(x.numel()) * 4), 0);
  if (!cpu::cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU: the AVX2 path was not checked";
  cpu::Exec avx2{nullptr, true, /*allow_avx512=*/false};
  Tensor c = cpu::gelu(x, avx2);
  EXPECT_EQ(std::memcmp(c.f32(), b.f32(), size_t(x.numel()) * 4), 0);
}

TEST(CpuGelu, SignedZeroNanAndInfinity) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {-0.0f, nan, inf, -inf};
  v.resize(16 + 4, 1.0f);  // the same values through the lanes (first 16) and the scalar tail
  for (int i = 0; i < 4; ++i) v[16 + i] = v[i];
  Tensor x = Tensor::from_vector(v, {int64_t(v.size())});
  for (bool s : {true, false}) {
    Tensor y = cpu::gelu(x, cpu::Exec{nullptr, s});
    for (int off : {0, 16}) {
      const float* r = y.f32() + off;
      EXPECT_TRUE(r[0] == 0.0f && std::signbit(r[0]));  // torch: gelu(-0) = -0
      EXPECT_TRUE(std::isnan(r[1]));
      EXPECT_EQ(r[2], inf);
      EXPECT_TRUE(std::isnan(r[3]));  // -inf * (1 + erf(-inf)) = -inf * 0, as the formula gives
    }
  }
}

}  // namespace
