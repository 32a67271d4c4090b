// linear with q8_0 / q4_0 weights on the GPU (linear_q8.cu, linear_q4.cu; kernels/quant.h has the
// block layouts): y[M, N] = x[M, K] . w[N, K]^T (+ b) with the same fusion as cuda::linear (GELU,
// then residual). Activations stay f32 (the GPU is not short of multiply throughput); each weight
// block is dequantized in registers as it is read, so a decode step reads 8.5 or 4.5 bits a weight.
// One warp per output column, all M rows of x at once (in passes of 8): an output never depends
// on the batch size. cuda::linear dispatches here for Q8_0 / Q4_0 weights (and so does a recorded
// decode step, which replays the same launches).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/tensor.h"

namespace mg::cuda {

void linear_q8_0(cudaStream_t s, const float* x, const void* w, const void* b, DType bdt, float* y, int64_t M,
                 int64_t N, int64_t K, bool gelu, const float* residual);
void linear_q4_0(cudaStream_t s, const float* x, const void* w, const void* b, DType bdt, float* y, int64_t M,
                 int64_t N, int64_t K, bool gelu, const float* residual);

}  // namespace mg::cuda
