// kernels/cpu/hsum_avx512.h: the horizontal sums the AVX-512 GEMVs take side by side must have
// exactly the bits of _mm512_reduce_add_ps on each accumulator (what a row computed alone gets),
// or a row's outputs would depend on the group of rows it is computed in.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/hsum_avx512.h"

namespace {

namespace cpu = mg::cpu;

bool has_avx512() { return cpu::kernel_path_supported(cpu::KernelPath::Avx512); }

// Values whose sums round in every way: mixed signs and magnitudes (cancellation, absorption),
// signed zeros, infinities and subnormals.
float awkward_value(std::mt19937& rng) {
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  switch (std::uniform_int_distribution<int>(0, 19)(rng)) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return std::numeric_limits<float>::denorm_min() * float(1 + rng() % 100);
    case 3: return rng() % 50 == 0 ? std::numeric_limits<float>::infinity() : 1.0f;
    case 4: return std::ldexp(unit(rng), 100);
    default: return std::ldexp(unit(rng), int(rng() % 41) - 20);
  }
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

template <int R>
__attribute__((target("avx512f"))) void check_block(std::mt19937& rng, int trial) {
  alignas(64) float v[4][R][16];
  for (auto& row : v)
    for (auto& acc : row)
      for (float& f : acc) f = awkward_value(rng);
  __m512 acc[4][R];
  for (int m = 0; m < 4; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_load_ps(v[m][r]);
  float out[4][R];
  cpu::hsum::reduce_add<4, R>(acc, out);
  for (int m = 0; m < 4; ++m)
    for (int r = 0; r < R; ++r) {
      const float alone = _mm512_reduce_add_ps(acc[m][r]);
      ASSERT_TRUE(same_bits(out[m][r], alone))
          << "R " << R << " trial " << trial << " [" << m << "][" << r << "]: " << out[m][r] << " vs " << alone;
    }
}

TEST(CpuHsum, SideBySideSumsHaveTheBitsOfOneAtATime) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(20261206);
  for (int trial = 0; trial < 20000; ++trial) {
    check_block<4>(rng, trial);
    check_block<5>(rng, trial);
    check_block<3>(rng, trial);  // the one-at-a-time fallback
  }
}

}  // namespace
