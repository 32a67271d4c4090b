// linear with bf16 weights for up to kBf16KernelMaxRows rows of x (kernels/cpu/linear_bf16.cpp):
// the AVX-512 kernels that linear() (linear.cpp) hands bf16 decode steps to.
#pragma once

#include "kernels/cpu/cpu_ops.h"

namespace mg::cpu {

// Rows of x up to which bf16 weights take these kernels: decode steps of a batch of up to 32
// prompts with CFG. Above it (prompts, long prefills) linear.cpp converts w and calls sgemm.
constexpr int64_t kBf16KernelMaxRows = 64;

enum class Bf16Kernel {
  None,   // no AVX-512 here, or MUSICGEN_CPU_PATH / ex keeps the ops below it: linear.cpp's paths
  Widen,  // f32 x, bf16 w widened by shift/mask, f32 FMAs (the default)
  Dot,    // x rounded to bf16, vdpbf16ps (MUSICGEN_BF16_KERNEL=dot on a CPU with AVX-512 BF16)
};

// Which kernel runs under ex (MUSICGEN_CPU_PATH and MUSICGEN_BF16_KERNEL are read once;
// MUSICGEN_BF16_KERNEL=off leaves bf16 to linear.cpp's converting GEMV, for comparisons).
Bf16Kernel bf16_kernel_for(const Exec& ex);

// y = x . w^T (+ b) for bf16 w with kernel (not None); any number of rows, each computed alone.
Tensor linear_bf16(const Tensor& x, const Tensor& w, const Tensor* b, const Exec& ex, Bf16Kernel kernel);

}  // namespace mg::cpu
