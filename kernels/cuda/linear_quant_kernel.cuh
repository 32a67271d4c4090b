// The warp-per-column quantized GEMV shared by linear_q8.cu and linear_q4.cu, instantiated per
// weight format (Fmt: kBlockBytes and value(block, i) -> the i-th value's integer level).
#pragma once

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/linear_quant.h"

namespace mg::cuda::quant {

constexpr int kRowsPerPass = 8;
constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ float bias_at(const void* b, DType dt, int64_t i) {
  if (dt == DType::F16) return __half2float(static_cast<const __half*>(b)[i]);
  if (dt == DType::BF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(b)[i]);
  return static_cast<const float*>(b)[i];
}

__device__ __forceinline__ float block_scale(const uint8_t* blk) {
  return __half2float(__ushort_as_half(uint16_t(blk[0] | (uint16_t(blk[1]) << 8))));
}

// Each warp iteration covers 4 consecutive blocks: lane l reads values 4 * (l % 8) .. + 3 of block
// l / 8, so the warp's byte reads are contiguous. x rows are read through the cache.
template <class Fmt>
__global__ void linear_quant_kernel(const float* __restrict__ x, const uint8_t* __restrict__ w, const void* b,
                                    DType bdt, float* __restrict__ y, int M, int64_t N, int64_t K, bool gelu,
                                    const float* __restrict__ residual) {
  const int lane = threadIdx.x % kWarp;
  const int64_t n = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (n >= N) return;  // the whole warp leaves together
  const int64_t nb = K / 32;
  const uint8_t* row = w + n * nb * Fmt::kBlockBytes;
  for (int m0 = 0; m0 < M; m0 += kRowsPerPass) {
    const int rows = min(kRowsPerPass, M - m0);
    float acc[kRowsPerPass];
#pragma unroll
    for (int r = 0; r < kRowsPerPass; ++r) acc[r] = 0.0f;
    for (int64_t blk0 = 0; blk0 < nb; blk0 += 4) {
      const int64_t blk = blk0 + lane / 8;
      if (blk >= nb) continue;
      const uint8_t* p = row + blk * Fmt::kBlockBytes;
      const float d = block_scale(p);
      const int i0 = 4 * (lane % 8);
      float wv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) wv[i] = d * float(Fmt::value(p, i0 + i));
      const int64_t k0 = blk * 32 + i0;
#pragma unroll
      for (int r = 0; r < kRowsPerPass; ++r) {
        if (r >= rows) break;
        const float* xr = x + (m0 + r) * K + k0;
        acc[r] += xr[0] * wv[0] + xr[1] * wv[1] + xr[2] * wv[2] + xr[3] * wv[3];
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerPass; ++r) {
      if (r >= rows) break;
      float v = warp_sum(acc[r]);
      if (lane == 0) {
        const int64_t m = m0 + r;
        if (b) v += bias_at(b, bdt, n);
        if (gelu) v = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        if (residual) v = residual[m * N + n] + v;
        y[m * N + n] = v;
      }
    }
  }
}

template <class Fmt>
void launch(cudaStream_t s, const float* x, const void* w, const void* b, DType bdt, float* y, int64_t M, int64_t N,
            int64_t K, bool gelu, const float* residual) {
  if (M == 0 || N == 0) return;
  MG_CHECK(K % 32 == 0 && K > 0, "cuda quantized linear: K = ", K, " is not a positive multiple of 32");
  const unsigned blocks = static_cast<unsigned>(ceil_div(N, kWarpsPerBlock));
  linear_quant_kernel<Fmt><<<blocks, kWarpsPerBlock * kWarp, 0, s>>>(
      x, static_cast<const uint8_t*>(w), b, bdt, y, int(M), N, K, gelu, residual);
  CUDA_CHECK_LAUNCH();
}

}  // namespace mg::cuda::quant
