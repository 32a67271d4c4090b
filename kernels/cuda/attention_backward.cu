// Multi-head attention forward (probs kept) and backward for training on the GPU, one sequence
// (CPU reference: kernels/cpu/attention_backward.cpp). The products are strided GEMMs per head;
// the softmax and its backward are one block per (head, query row).
#include <cmath>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/train_gemm.cuh"
#include "kernels/cuda/train_ops_cuda.h"

namespace mg::cuda::train {

namespace {

constexpr int kThreads = 128;

// probs rows (already scale * q k^T) -> masked softmax, in place. Block: one (head, row).
__global__ void softmax_rows_kernel(float* P, int64_t Tq, int64_t Tk, bool causal) {
  __shared__ float sh[kThreads];
  const int64_t row = blockIdx.x;  // h * Tq + i
  const int64_t i = row % Tq;
  float* p = P + row * Tk;
  const int64_t n = causal ? (i + 1 < Tk ? i + 1 : Tk) : Tk;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, p[j]);
  mx = block_reduce(mx, sh, true);
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    p[j] = expf(p[j] - mx);
    s += p[j];
  }
  const float inv = 1.0f / block_reduce(s, sh, false);
  for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) p[j] = j < n ? p[j] * inv : 0.0f;
}

// dS = P * (dP - rowsum(dP * P)), in place over dP.
__global__ void softmax_backward_rows_kernel(const float* P, float* dP, int64_t Tk) {
  __shared__ float sh[kThreads];
  const float* p = P + int64_t(blockIdx.x) * Tk;
  float* d = dP + int64_t(blockIdx.x) * Tk;
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) s += d[j] * p[j];
  const float dot = block_reduce(s, sh, false);
  for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) d[j] = p[j] * (d[j] - dot);
}

}  // namespace

void attention_forward(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
                       int64_t Tq, int64_t Tk, int H, int64_t hd, float scale, bool causal, float* out, int64_t ldo,
                       float* probs) {
  for (int h = 0; h < H; ++h)
    strided_gemm(false, true, Tq, Tk, hd, scale, q + h * hd, ldq, k + h * hd, ldk, 0.0f, probs + h * Tq * Tk, Tk);
  softmax_rows_kernel<<<unsigned(H * Tq), kThreads>>>(probs, Tq, Tk, causal);
  CUDA_CHECK_LAUNCH();
  for (int h = 0; h < H; ++h)
    strided_gemm(false, false, Tq, hd, Tk, 1.0f, probs + h * Tq * Tk, Tk, v + h * hd, ldv, 0.0f, out + h * hd, ldo);
  CUDA_CHECK(cudaDeviceSynchronize());
}

void attention_backward(const float* dout, int64_t lddo, const float* q, int64_t ldq, const float* k, int64_t ldk,
                        const float* v, int64_t ldv, const float* probs, int64_t Tq, int64_t Tk, int H, int64_t hd,
                        float scale, float* dq, int64_t lddq, float* dk, int64_t lddk, float* dv, int64_t lddv) {
  float* dS = nullptr;
  CUDA_CHECK(cudaMalloc(&dS, size_t(H * Tq * Tk) * sizeof(float)));
  try {
    for (int h = 0; h < H; ++h) {
      const float* P = probs + h * Tq * Tk;
      if (dv) strided_gemm(true, false, Tk, hd, Tq, 1.0f, P, Tk, dout + h * hd, lddo, 1.0f, dv + h * hd, lddv);
      strided_gemm(false, true, Tq, Tk, hd, 1.0f, dout + h * hd, lddo, v + h * hd, ldv, 0.0f, dS + h * Tq * Tk, Tk);
    }
    softmax_backward_rows_kernel<<<unsigned(H * Tq), kThreads>>>(probs, dS, Tk);
    CUDA_CHECK_LAUNCH();
    for (int h = 0; h < H; ++h) {
      const float* d = dS + h * Tq * Tk;
      if (dq) strided_gemm(false, false, Tq, hd, Tk, scale, d, Tk, k + h * hd, ldk, 1.0f, dq + h * hd, lddq);
      if (dk) strided_gemm(true, false, Tk, hd, Tq, scale, d, Tk, q + h * hd, ldq, 1.0f, dk + h * hd, lddk);
    }
    CUDA_CHECK(cudaDeviceSynchronize());
  } catch (...) {
    cudaFree(dS);
    throw;
  }
  CUDA_CHECK(cudaFree(dS));
}

}  // namespace mg::cuda::train
