// Which hand-written CPU kernel family runs: chosen once from CPUID, or forced with the
// environment variable MUSICGEN_CPU_PATH=portable|avx2|avx512 (tests and benchmarks run every path
// on one machine with it). The quantized linear (linear_quant.cpp) uses it; Exec can only lower it
// (allow_simd = false: portable, allow_avx512 = false: at most avx2).
#pragma once

#include "kernels/cpu/cpu_ops.h"

namespace mg::cpu {

enum class KernelPath { Portable, Avx2, Avx512 };

const char* kernel_path_name(KernelPath p);  // "portable", "avx2", "avx512-vnni"
// Whether this processor can run path p (avx512: AVX-512 F, BW, VL and VNNI; avx2: AVX2, FMA, F16C).
bool kernel_path_supported(KernelPath p);
// The best supported path, or MUSICGEN_CPU_PATH's; throws mg::Error for an unknown value or a path
// this processor cannot run (read once per process).
KernelPath selected_kernel_path();
// selected_kernel_path() as lowered by ex.
KernelPath kernel_path_for(const Exec& ex);

}  // namespace mg::cpu
