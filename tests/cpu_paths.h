// The CPU kernel paths this processor has, as Exec values, for tests that check every path gives
// the bits it should (MUSICGEN_CPU_PATH's choices): portable, AVX2, and AVX-512 (where the
// attention runs its split-key path).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace mgtest {

inline std::vector<std::pair<std::string, mg::cpu::Exec>> cpu_kernel_paths() {
  std::vector<std::pair<std::string, mg::cpu::Exec>> out;
  mg::cpu::Exec portable;
  portable.allow_simd = false;
  out.push_back({"portable", portable});
  if (mg::cpu::cpu_has_avx2()) {
    mg::cpu::Exec avx2;
    avx2.allow_avx512 = false;
    out.push_back({"avx2", avx2});
  }
  if (mg::cpu::cpu_has_avx512()) out.push_back({"avx512", mg::cpu::Exec{}});
  return out;
}

}  // namespace mgtest
