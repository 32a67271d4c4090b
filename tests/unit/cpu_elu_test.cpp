// Trap: ELU's expm1. The CPU backend computes expm1 with its own vectorised polynomial (elu.cpp),
// while PyTorch uses Sleef and our old scalar path used glibc. All are within about 1 ulp of the
// exact value, so codes stay exact; what must never happen is an error of many ulps (a bad range
// reduction near n ln2 boundaries, the clamp at -20, tiny |x| where expm1 differs most from
// exp - 1) or the SIMD and portable paths disagreeing (a result that depends on the CPU).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace {

using mg::DType;
using mg::Tensor;
namespace cpu = mg::cpu;

// Distance in ulps between two finite floats of the same sign.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::llabs(int64_t(ia) - int64_t(ib));
}

Tensor sweep() {
  // Every 61st float bit pattern from -30 to -1e-30, plus the special points.
  std::vector<float> v;
  for (float x = -30.0f; x < -1e-30f;) {
    v.push_back(x);
    int32_t i;
    std::memcpy(&i, &x, 4);
    i -= 61;
    std::memcpy(&x, &i, 4);
  }
  for (float x : {-0.0f, 0.0f, 1e-30f, 0.5f, 3.0f, -20.0f, -19.999998f, -0.34657359f, -0.34657362f,
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min()})
    v.push_back(x);
  while (v.size() % 16 != 5) v.push_back(-1.5f);  // a tail that the vector loops leave to scalar code
  return Tensor::from_vector(v, {int64_t(v.size())});
}

TEST(CpuElu, WithinOneUlpOfExactExpm1) {
  Tensor x = sweep();
  cpu::Exec simd{nullptr, true};
  Tensor y = cpu::elu(x, 1.0f, simd);
  int64_t worst = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x.f32()[i];
    const float want = v > 0.0f ? v : float(std::expm1(double(v)));
    const int64_t u = ulps(y.f32()[i], want);
    EXPECT_LE(u, 1) << "x = " << v << ": got " << y.f32()[i] << ", want " << want;
    worst = std::max(worst, u);
  }
  std::printf("ELU: %lld values, worst error %lld ulp\n", (long long)x.numel(), (long long)worst);
}

TEST(CpuElu, SimdAndPortablePathsAreBitIdentical) {
  Tensor x = sweep();
  cpu::Exec simd{nullptr, true}, plain{nullptr, false};
  Tensor a = cpu::elu(x, 0.7f, simd), b = cpu::elu(x, 0.7f, plain);
  EXPECT_EQ(std::memcmp(a.f32(), b.f32(), size_t(x.numel()) * 4), 0);
  if (!cpu::cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU: the AVX2 path was not checked";
  cpu::Exec avx2{nullptr, true, /*allow_avx512=*/false};
  Tensor c = cpu::elu(x, 0.7f, avx2);
  EXPECT_EQ(std::memcmp(c.f32(), b.f32(), size_t(x.numel()) * 4), 0);
}

TEST(CpuElu, SignedZeroNanAndAlpha) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector({-0.0f, nan, -1.0f, 2.0f}, {4});
  for (bool s : {true, false}) {
    cpu::Exec ex{nullptr, s};
    Tensor y = cpu::elu(x, 2.0f, ex);
    EXPECT_TRUE(std::signbit(y.f32()[0]) && y.f32()[0] == 0.0f);  // torch: expm1(-0) * alpha = -0
    EXPECT_TRUE(std::isnan(y.f32()[1]));
    EXPECT_NEAR(y.f32()[2], 2.0 * std::expm1(-1.0), 1e-6);
    EXPECT_EQ(y.f32()[3], 2.0f);
  }
}

}  // namespace
