// A plain strided GEMM for the training kernels: C[m, n] = alpha * sum_k A(m, k) B(k, n) + beta C,
// where A(m, k) = a[m * a_rs + k * a_cs] and B(k, n) = b[k * b_rs + n * b_cs] (any transpose is a
// choice of strides). One thread per output, f32 accumulation in k order: a correctness reference
// (what the CPU's OpenBLAS computes up to summation order), not a fast GEMM.
#pragma once

#include "kernels/cuda/cuda_common.h"

namespace mg::cuda::train {
namespace {  // each .cu gets its own copy (no relocatable device code)

__global__ void strided_gemm_kernel(int64_t M, int64_t N, int64_t K, float alpha, const float* a, int64_t a_rs,
                                           int64_t a_cs, const float* b, int64_t b_rs, int64_t b_cs, float beta,
                                           float* c, int64_t ldc) {
  const int64_t i = int64_t(blockIdx.y) * blockDim.y + threadIdx.y;
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= M || j >= N) return;
  float s = 0.0f;
  for (int64_t k = 0; k < K; ++k) s += a[i * a_rs + k * a_cs] * b[k * b_rs + j * b_cs];
  float* out = c + i * ldc + j;
  *out = alpha * s + (beta == 0.0f ? 0.0f : beta * *out);
}

// Row-major op(A)[M, K] op(B)[K, N] with BLAS-like transposes and leading dimensions.
void strided_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* a, int64_t lda,
                         const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const dim3 block(16, 16);
  const dim3 grid(unsigned((N + 15) / 16), unsigned((M + 15) / 16));
  strided_gemm_kernel<<<grid, block>>>(M, N, K, alpha, a, ta ? 1 : lda, ta ? lda : 1, b, tb ? 1 : ldb, tb ? ldb : 1,
                                       beta, c, ldc);
  CUDA_CHECK_LAUNCH();
}

}  // namespace
}  // namespace mg::cuda::train
