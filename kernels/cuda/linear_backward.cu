// Linear and LoRA forward/backward for training on the GPU (train_ops_cuda.h; CPU reference:
// kernels/cpu/linear_backward.cpp).
#include "kernels/cuda/train_gemm.cuh"
#include "kernels/cuda/train_ops_cuda.h"

namespace mg::cuda::train {

void linear_forward(const float* x, int64_t ldx, const float* W, int64_t N, int64_t I, int64_t O, float* y,
                    int64_t ldy, float beta) {
  strided_gemm(false, true, N, O, I, 1.0f, x, ldx, W, I, beta, y, ldy);
  CUDA_CHECK(cudaDeviceSynchronize());
}

void linear_backward_input(const float* dy, int64_t lddy, const float* W, int64_t N, int64_t I, int64_t O, float* dx,
                           int64_t lddx) {
  strided_gemm(false, false, N, I, O, 1.0f, dy, lddy, W, I, 1.0f, dx, lddx);
  CUDA_CHECK(cudaDeviceSynchronize());
}

void lora_forward(const float* x, int64_t ldx, const float* A, const float* B, int64_t N, int64_t I, int64_t O,
                  int64_t R, float scale, float* y, int64_t ldy, float* xa) {
  strided_gemm(false, true, N, R, I, 1.0f, x, ldx, A, I, 0.0f, xa, R);
  strided_gemm(false, true, N, O, R, scale, xa, R, B, R, 1.0f, y, ldy);
  CUDA_CHECK(cudaDeviceSynchronize());
}

void lora_backward(const float* dy, int64_t lddy, const float* x, int64_t ldx, const float* A, const float* B,
                   const float* xa, int64_t N, int64_t I, int64_t O, int64_t R, float scale, float* dA, float* dB,
                   float* dx, int64_t lddx) {
  float* g = nullptr;  // dy B [N, R]
  CUDA_CHECK(cudaMalloc(&g, size_t(N * R) * sizeof(float)));
  try {
    strided_gemm(false, false, N, R, O, 1.0f, dy, lddy, B, R, 0.0f, g, R);
    strided_gemm(true, false, O, R, N, scale, dy, lddy, xa, R, 1.0f, dB, R);
    strided_gemm(true, false, R, I, N, scale, g, R, x, ldx, 1.0f, dA, I);
    if (dx) strided_gemm(false, false, N, I, R, scale, g, R, A, I, 1.0f, dx, lddx);
    CUDA_CHECK(cudaDeviceSynchronize());
  } catch (...) {
    cudaFree(g);
    throw;
  }
  CUDA_CHECK(cudaFree(g));
}

}  // namespace mg::cuda::train
