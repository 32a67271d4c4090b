// Backend::write_kv on the device: the fused q|k|v GEMM output goes straight into the KV cache.
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

// One block row per (row, position) pair; threads over D. pos_dev (a recorded step): the position
// is read from the device; one outside the cache writes nothing (the host checked it before upload).
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }

// blockIdx.y == 1 (a pair): the second cache, from the D columns after col0.
template <typename C>
__global__ void write_kv_kernel(C* __restrict__ cache, C* __restrict__ cache2, const float* __restrict__ src,
                                int64_t R, int64_t S, int64_t cap, int64_t D, int64_t W, int64_t pos,
                                const int32_t* __restrict__ pos_dev, int64_t col0) {
  const int64_t rs = blockIdx.x, r = rs / S, s = rs % S;
  if (blockIdx.y == 1) {
    cache = cache2;
    col0 += D;
  }
  if (pos_dev) pos = *pos_dev;
  if (pos < 0 || pos + S > cap) return;
  C* dst = cache + (r * cap + pos + s) * D;
  const float* from = src + rs * W + col0;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) store(dst + d, from[d]);
}

}  // namespace

void write_kv(cudaStream_t s, void* cache, const float* src, int64_t R, int64_t S, int64_t cap, int64_t D, int64_t W,
              int64_t pos, int64_t col0, const int32_t* pos_dev, DType cache_dtype, void* cache2) {
  if (R * S == 0 || D == 0) return;
  MG_CHECK(cache_dtype == DType::F32 || cache_dtype == DType::F16, "cuda write_kv: the cache must be f32 or f16, got ",
           dtype_name(cache_dtype));
  const dim3 grid(unsigned(R * S), cache2 ? 2u : 1u);
  if (cache_dtype == DType::F16)
    write_kv_kernel<__half><<<grid, 256, 0, s>>>(static_cast<__half*>(cache), static_cast<__half*>(cache2), src, R, S,
                                                 cap, D, W, pos, pos_dev, col0);
  else
    write_kv_kernel<float><<<grid, 256, 0, s>>>(static_cast<float*>(cache), static_cast<float*>(cache2), src, R, S,
                                                cap, D, W, pos, pos_dev, col0);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
