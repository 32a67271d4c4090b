// softmax over the last dim, one block per row: max, sum of exp(x - max), then the quotient, all
// in f32. A row whose max is -inf (every entry masked) gives zeros instead of NaN: attention
// with an all-masked row must contribute nothing, and the CPU reference does the same.
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

__global__ void softmax_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t D) {
  __shared__ float scratch[kWarp];
  const float* xr = x + blockIdx.x * D;
  float* yr = y + blockIdx.x * D;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) m = fmaxf(m, xr[i]);
  m = block_max(m, scratch);
  if (m == -INFINITY) {
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = 0.0f;
    return;
  }
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += expf(xr[i] - m);
  const float inv = 1.0f / block_sum(s, scratch);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = expf(xr[i] - m) * inv;
}

}  // namespace

void softmax(cudaStream_t s, const float* x, float* y, int64_t rows, int64_t D) {
  if (rows == 0 || D == 0) return;
  MG_CHECK(rows <= 0x7fffffffLL, "cuda softmax: ", rows, " rows exceed the grid limit");
  const int block = D <= 32 ? 32 : D <= 64 ? 64 : D <= 128 ? 128 : 256;
  softmax_kernel<<<unsigned(rows), block, 0, s>>>(x, y, D);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
