// The bf16 decode-step kernels (kernels/cpu/linear_bf16.cpp) against the portable loop, and the
// property batched decoding relies on: a row of x gives the same bits whatever else is in the batch
// and whatever the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/linear_bf16.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::Tensor;
using mgtest::random_tensor;
namespace cpu = mg::cpu;

bool has_avx512() { return cpu::bf16_kernel_for(cpu::Exec{}) != cpu::Bf16Kernel::None; }

std::vector<cpu::Bf16Kernel> kernels_here() {
  std::vector<cpu::Bf16Kernel> v{cpu::Bf16Kernel::Widen};
  if (__builtin_cpu_supports("avx512bf16")) v.push_back(cpu::Bf16Kernel::Dot);
  return v;
}

const char* name(cpu::Bf16Kernel k) { return k == cpu::Bf16Kernel::Dot ? "dot" : "widen"; }

// Row r of a [m, n] f32 tensor.
std::vector<float> row(const Tensor& t, int64_t r) {
  const int64_t n = t.shape.back();
  return std::vector<float>(t.f32() + r * n, t.f32() + (r + 1) * n);
}

// Widen keeps x in f32: only the order of the sums differs from the portable loop. Dot rounds x to
// bf16 (relative error <= 2^-9 per product, round to nearest even), so each output is within
// 2^-8 * sum_j |x_j w_j| of the exact f32 sum (the 2^-9 of x plus the f32 sums, with room).
TEST(CpuLinearBf16, KernelsAgreeWithThePortableLoop) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 here (or MUSICGEN_CPU_PATH caps it): linear.cpp's paths run";
  const cpu::Exec plain{nullptr, false};
  for (int64_t k : {7, 32, 259, 1024}) {
    const Tensor w = cpu::cast(random_tensor({67, k}, 60, 0.1f), DType::BF16);
    const Tensor b = random_tensor({67}, 61);
    for (int64_t m : {1, 2, 4, 5, 9}) {
      const Tensor x = random_tensor({m, k}, 62);
      const Tensor want = cpu::linear(x, w, &b, plain);
      const Tensor wf = cpu::cast(w, DType::F32);
      for (cpu::Bf16Kernel kern : kernels_here()) {
        const Tensor got = cpu::linear_bf16(x, w, &b, cpu::Exec{}, kern);
        if (kern == cpu::Bf16Kernel::Widen) {
          EXPECT_LE(mgtest::rel_err(got, want), 1e-6) << name(kern) << " k=" << k << " m=" << m;
          continue;
        }
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = 0; j < 67; ++j) {
            double mag = 0;
            for (int64_t t = 0; t < k; ++t) mag += std::fabs(double(x.f32()[r * k + t]) * wf.f32()[j * k + t]);
            EXPECT_LE(std::fabs(double(got.f32()[r * 67 + j]) - want.f32()[r * 67 + j]), std::ldexp(mag, -8) + 1e-6)
                << name(kern) << " k=" << k << " m=" << m << " row " << r << " col " << j;
          }
      }
    }
  }
}

// Batched decoding: the same row alone, in a batch of up to 64 rows, on 1 or 2 threads, through
// linear() as the decoder calls it: the same bits.
TEST(CpuLinearBf16, RowsAreIndependentOfBatchAndThreads) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 here (or MUSICGEN_CPU_PATH caps it): linear.cpp's paths run";
  cpu::ThreadPool p1(1), p2(2);
  const cpu::Exec e1{&p1, true}, e2{&p2, true};
  const Tensor w = cpu::cast(random_tensor({300, 259}, 70, 0.1f), DType::BF16);
  const Tensor b = random_tensor({300}, 71);
  const Tensor x = random_tensor({cpu::kBf16KernelMaxRows, 259}, 72);
  for (cpu::Bf16Kernel kern : kernels_here()) {
    const Tensor alone = cpu::linear_bf16(x.slice0(0, 1), w, &b, e1, kern);
    for (int64_t m : {int64_t(1), int64_t(2), int64_t(3), int64_t(4), int64_t(5), int64_t(16), int64_t(33), cpu::kBf16KernelMaxRows}) {
      const Tensor batch1 = cpu::linear_bf16(x.slice0(0, m), w, &b, e1, kern);
      const Tensor batch2 = cpu::linear_bf16(x.slice0(0, m), w, &b, e2, kern);
      EXPECT_EQ(std::memcmp(batch1.data, batch2.data, batch1.nbytes()), 0) << name(kern) << " m=" << m;
      EXPECT_EQ(row(batch1, 0), row(alone, 0)) << name(kern) << " m=" << m;
      // The last row too, which sits in a partial group of 1..3 rows for some m.
      const Tensor last = cpu::linear_bf16(x.slice0(m - 1, 1), w, &b, e1, kern);
      EXPECT_EQ(row(batch1, m - 1), row(last, 0)) << name(kern) << " m=" << m;
    }
  }
  // linear() sends bf16 decode rows here: the same bits as the default kernel called directly.
  const cpu::Bf16Kernel def = cpu::bf16_kernel_for(e2);
  const Tensor x4 = x.slice0(0, 4);
  const Tensor via_linear = cpu::linear(x4, w, &b, e2), direct = cpu::linear_bf16(x4, w, &b, e2, def);
  EXPECT_EQ(std::memcmp(via_linear.data, direct.data, direct.nbytes()), 0);
}

// Exec lowers the path: without AVX-512 allowed (or without SIMD) the kernels are not used.
TEST(CpuLinearBf16, ExecCanKeepLinearOnItsOwnPaths) {
  EXPECT_EQ(cpu::bf16_kernel_for(cpu::Exec{nullptr, false}), cpu::Bf16Kernel::None);
  EXPECT_EQ(cpu::bf16_kernel_for(cpu::Exec{nullptr, true, /*allow_avx512=*/false}), cpu::Bf16Kernel::None);
}

}  // namespace
