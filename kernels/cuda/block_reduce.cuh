// A block-wide max or sum through shared memory, for the training kernels' row reductions
// (softmax, log-sum-exp). sh holds blockDim.x floats; blockDim.x is a power of two; every thread
// of the block calls it and gets the result.
#pragma once

namespace mg::cuda::train {

__device__ inline float block_reduce(float v, float* sh, bool is_max) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = is_max ? fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]) : sh[threadIdx.x] + sh[threadIdx.x + s];
    __syncthreads();
  }
  const float r = sh[0];
  __syncthreads();
  return r;
}

}  // namespace mg::cuda::train
