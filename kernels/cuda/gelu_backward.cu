// Exact GELU forward/backward for training on the GPU (CPU reference: kernels/cpu/gelu_backward.cpp).
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/train_ops_cuda.h"

namespace mg::cuda::train {

namespace {

__global__ void gelu_forward_kernel(const float* x, float* y, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

__global__ void gelu_backward_kernel(const float* dy, const float* x, float* dx, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
  const float pdf = 0.3989422804014327f * expf(-0.5f * x[i] * x[i]);
  dx[i] += dy[i] * (cdf + x[i] * pdf);
}

}  // namespace

void gelu_forward(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  gelu_forward_kernel<<<unsigned((n + 255) / 256), 256>>>(x, y, n);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaDeviceSynchronize());
}

void gelu_backward(const float* dy, const float* x, float* dx, int64_t n) {
  if (n == 0) return;
  gelu_backward_kernel<<<unsigned((n + 255) / 256), 256>>>(dy, x, dx, n);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace mg::cuda::train
