// Layer norm forward (mean, 1/std kept) and backward for training on the GPU, one block per row
// (CPU reference: kernels/cpu/layer_norm_backward.cpp).
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/train_ops_cuda.h"

namespace mg::cuda::train {

namespace {

constexpr int kThreads = 256;

// Sum of v over the block (every thread gets it).
__device__ float block_sum(float v, float* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  const float r = shared[0];
  __syncthreads();
  return r;
}

__global__ void ln_forward_kernel(const float* x, const float* w, const float* b, int64_t D, float eps, float* y,
                                  float* mean, float* rstd) {
  __shared__ float sh[kThreads];
  const float* xr = x + int64_t(blockIdx.x) * D;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += xr[i];
  const float m = block_sum(s, sh) / float(D);
  float v = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) v += (xr[i] - m) * (xr[i] - m);
  const float rs = rsqrtf(block_sum(v, sh) / float(D) + eps);
  if (threadIdx.x == 0) {
    mean[blockIdx.x] = m;
    rstd[blockIdx.x] = rs;
  }
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) y[int64_t(blockIdx.x) * D + i] = (xr[i] - m) * rs * w[i] + b[i];
}

__global__ void ln_backward_kernel(const float* dy, const float* x, const float* w, const float* mean,
                                   const float* rstd, int64_t D, float* dx) {
  __shared__ float sh[kThreads];
  const int64_t r = blockIdx.x;
  const float m = mean[r], rs = rstd[r];
  float sg = 0.0f, sgx = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const float g = dy[r * D + i] * w[i];
    sg += g;
    sgx += g * (x[r * D + i] - m) * rs;
  }
  const float mg = block_sum(sg, sh) / float(D);
  const float mgx = block_sum(sgx, sh) / float(D);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const float xhat = (x[r * D + i] - m) * rs;
    dx[r * D + i] += rs * (dy[r * D + i] * w[i] - mg - xhat * mgx);
  }
}

}  // namespace

void layer_norm_forward(const float* x, const float* w, const float* b, int64_t N, int64_t D, float eps, float* y,
                        float* mean, float* rstd) {
  if (N == 0) return;
  ln_forward_kernel<<<unsigned(N), kThreads>>>(x, w, b, D, eps, y, mean, rstd);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaDeviceSynchronize());
}

void layer_norm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                         int64_t N, int64_t D, float* dx) {
  if (N == 0) return;
  ln_backward_kernel<<<unsigned(N), kThreads>>>(dy, x, w, mean, rstd, D, dx);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace mg::cuda::train
