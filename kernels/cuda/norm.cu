// layer_norm, rms_norm (T5: no mean, no bias) and group_norm. One block per normalised row (or
// per (batch, group) for group_norm); statistics are computed in two passes in f32 (mean, then
// the mean of squared deviations), as the CPU reference does, rather than E[x^2] - E[x]^2, which
// loses digits when the mean is large.
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

// Threads for one block per row of D values: a warp multiple, no more than the row needs.
int row_block(int64_t D) {
  if (D <= 32) return 32;
  if (D <= 64) return 64;
  if (D <= 128) return 128;
  return 256;
}

__global__ void layer_norm_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                  const float* __restrict__ beta, float* __restrict__ y, int64_t D, float eps) {
  __shared__ float scratch[kWarp];
  const float* xr = x + blockIdx.x * D;
  float* yr = y + blockIdx.x * D;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += xr[i];
  const float mean = block_sum(s, scratch) / float(D);
  float v = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const float d = xr[i] - mean;
    v = fmaf(d, d, v);
  }
  const float inv = 1.0f / sqrtf(block_sum(v, scratch) / float(D) + eps);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    yr[i] = (xr[i] - mean) * inv * gamma[i] + (beta ? beta[i] : 0.0f);
}

__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                float* __restrict__ y, int64_t D, float eps) {
  __shared__ float scratch[kWarp];
  const float* xr = x + blockIdx.x * D;
  float* yr = y + blockIdx.x * D;
  float v = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) v = fmaf(xr[i], xr[i], v);
  const float inv = 1.0f / sqrtf(block_sum(v, scratch) / float(D) + eps);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = xr[i] * inv * gamma[i];
}

// Block (b, g) normalises the Cg * T contiguous values of channels [g*Cg, (g+1)*Cg) of batch b.
__global__ void group_norm_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                  const float* __restrict__ beta, float* __restrict__ y, int64_t C, int64_t T,
                                  int64_t groups, float eps) {
  __shared__ float scratch[kWarp];
  const int64_t b = blockIdx.x / groups, g = blockIdx.x % groups;
  const int64_t Cg = C / groups, n = Cg * T;
  const int64_t base = (b * C + g * Cg) * T;
  const float* xr = x + base;
  float* yr = y + base;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xr[i];
  const float mean = block_sum(s, scratch) / float(n);
  float v = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float d = xr[i] - mean;
    v = fmaf(d, d, v);
  }
  const float inv = 1.0f / sqrtf(block_sum(v, scratch) / float(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t c = g * Cg + i / T;
    yr[i] = (xr[i] - mean) * inv * gamma[c] + beta[c];
  }
}

void check_grid(int64_t blocks, const char* op) {
  MG_CHECK(blocks <= 0x7fffffffLL, "cuda ", op, ": ", blocks, " rows exceed the grid limit");
}

}  // namespace

void layer_norm(cudaStream_t s, const float* x, const float* gamma, const float* beta, float* y, int64_t rows,
                int64_t D, float eps) {
  if (rows == 0 || D == 0) return;
  check_grid(rows, "layer_norm");
  layer_norm_kernel<<<unsigned(rows), row_block(D), 0, s>>>(x, gamma, beta, y, D, eps);
  CUDA_CHECK_LAUNCH();
}

void rms_norm(cudaStream_t s, const float* x, const float* gamma, float* y, int64_t rows, int64_t D, float eps) {
  if (rows == 0 || D == 0) return;
  check_grid(rows, "rms_norm");
  rms_norm_kernel<<<unsigned(rows), row_block(D), 0, s>>>(x, gamma, y, D, eps);
  CUDA_CHECK_LAUNCH();
}

void group_norm(cudaStream_t s, const float* x, const float* gamma, const float* beta, float* y, int64_t B,
                int64_t C, int64_t T, int64_t groups, float eps) {
  if (B == 0 || C == 0 || T == 0) return;
  check_grid(B * groups, "group_norm");
  // Groups are long (channels x time): use a full 512-thread block for them.
  group_norm_kernel<<<unsigned(B * groups), 512, 0, s>>>(x, gamma, beta, y, C, T, groups, eps);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
