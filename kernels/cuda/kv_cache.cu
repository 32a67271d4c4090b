// Backend::write_kv on the device: the fused q|k|v GEMM output goes straight into the KV cache.
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

// One block row per (row, position) pair; threads over D. pos_dev (a recorded step): the position
// is read from the device; one outside the cache writes nothing (the host checked it before upload).
__global__ void write_kv_kernel(float* __restrict__ cache, const float* __restrict__ src, int64_t R, int64_t S,
                                int64_t cap, int64_t D, int64_t W, int64_t pos, const int32_t* __restrict__ pos_dev,
                                int64_t col0) {
  const int64_t rs = blockIdx.x, r = rs / S, s = rs % S;
  if (pos_dev) pos = *pos_dev;
  if (pos < 0 || pos + S > cap) return;
  float* dst = cache + (r * cap + pos + s) * D;
  const float* from = src + rs * W + col0;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) dst[d] = from[d];
}

}  // namespace

void write_kv(cudaStream_t s, float* cache, const float* src, int64_t R, int64_t S, int64_t cap, int64_t D, int64_t W,
              int64_t pos, int64_t col0, const int32_t* pos_dev) {
  if (R * S == 0 || D == 0) return;
  write_kv_kernel<<<unsigned(R * S), 256, 0, s>>>(cache, src, R, S, cap, D, W, pos, pos_dev, col0);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
