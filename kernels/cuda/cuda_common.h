// Shared pieces of the CUDA kernels: error checks that throw mg::Error (the library never exits),
// launch-size helpers, f16/bf16 -> f32 loads and warp/block reductions in f32.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common.h"

// CUDA_CHECK(call): throw mg::Error naming the call, the file:line and CUDA's error string. The
// runtime's last error is cleared first: the error is reported once, here, and not again by the
// next kernel's launch check (an out-of-memory would otherwise surface at an unrelated kernel).
// Sticky errors (a kernel that faulted) are not cleared by this and keep failing every call.
#define CUDA_CHECK(call)                                                                     \
  do {                                                                                       \
    cudaError_t mg_err_ = (call);                                                            \
    if (mg_err_ != cudaSuccess) {                                                            \
      cudaGetLastError();                                                                    \
      throw ::mg::Error(::mg::strcat("CUDA error at ", __FILE__, ":", __LINE__, " in ",      \
                                     #call, ": ", cudaGetErrorName(mg_err_), " (",           \
                                     cudaGetErrorString(mg_err_), ")"));                     \
    }                                                                                        \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#define CUBLAS_CHECK(call)                                                                   \
  do {                                                                                       \
    cublasStatus_t mg_st_ = (call);                                                          \
    if (mg_st_ != CUBLAS_STATUS_SUCCESS)                                                     \
      throw ::mg::Error(::mg::strcat("cuBLAS error at ", __FILE__, ":", __LINE__, " in ",    \
                                     #call, ": ", cublasGetStatusName(mg_st_), " (",         \
                                     cublasGetStatusString(mg_st_), ")"));                   \
  } while (0)

namespace mg {
namespace cuda {

constexpr int kWarp = 32;

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grid size for a grid-stride loop over n elements: enough blocks to fill the device, never 0
// (callers skip empty launches themselves) and never above the 1-D grid limit.
inline unsigned grid_for(int64_t n, int block) {
  int64_t g = ceil_div(n, block);
  if (g > 65535LL * 32) g = 65535LL * 32;
  return static_cast<unsigned>(g < 1 ? 1 : g);
}

// Weight element -> f32 (f32 / f16 / bf16 all read through the same template).
__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = kWarp / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int off = kWarp / 2; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Sum over the whole block; every thread gets the result. blockDim.x must be a multiple of 32
// (<= 1024). `scratch` holds 32 floats of shared memory; the call may be repeated with the same
// scratch (the leading __syncthreads protects the previous use).
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int nwarps = blockDim.x / kWarp;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int nwarps = blockDim.x / kWarp;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

}  // namespace cuda
}  // namespace mg
