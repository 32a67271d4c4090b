// vq_nearest (EnCodec's RVQ encode): for each row x_n the codeword j maximising
// -((|x_n|^2 - 2 x_n.e_j) + |e_j|^2), first index on ties, exactly the host formula of
// kernels/backend_fallbacks.cpp. x.e^T is one cuBLAS GEMM (the reference uses a GEMM too); the
// squared norms are summed sequentially per row with explicit round-to-nearest adds and
// multiplies (no FMA contraction), as the host loop does, so that near-ties break the same way.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

constexpr int kBlock = 256;
constexpr int64_t kRowsPerGemm = 4096;  // bounds the [rows, V] score buffer on long inputs

__global__ void row_sq_norm_kernel(const float* __restrict__ x, float* __restrict__ out, int64_t rows, int64_t D) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    const float* xr = x + r * D;
    float s = 0.0f;
    for (int64_t d = 0; d < D; ++d) s = __fadd_rn(s, __fmul_rn(xr[d], xr[d]));
    out[r] = s;
  }
}

// (best, arg) pairs: a larger distance wins, equal distances go to the smaller index.
__device__ __forceinline__ void take_better(float& best, int64_t& arg, float b2, int64_t a2) {
  if (b2 > best || (b2 == best && a2 < arg)) {
    best = b2;
    arg = a2;
  }
}

// One block per row n of this GEMM slice: xe[n, V] holds x_n . e_j.
__global__ void vq_argmax_kernel(const float* __restrict__ xe, const float* __restrict__ x2,
                                 const float* __restrict__ e2, int64_t* __restrict__ ids, int64_t V) {
  __shared__ float sbest[kBlock / kWarp];
  __shared__ int64_t sarg[kBlock / kWarp];
  const int64_t n = blockIdx.x;
  const float* row = xe + n * V;
  const float xn = x2[n];
  float best = -INFINITY;
  int64_t arg = V;  // "none yet": any real index beats it on a tie
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    const float dist = -__fadd_rn(__fsub_rn(xn, __fmul_rn(2.0f, row[j])), e2[j]);
    if (dist > best || (dist == best && arg == V)) {  // NaN never wins, as on the host
      best = dist;
      arg = j;
    }
  }
  for (int off = kWarp / 2; off > 0; off >>= 1)
    take_better(best, arg, __shfl_xor_sync(0xffffffffu, best, off), __shfl_xor_sync(0xffffffffu, arg, off));
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) {
    sbest[warp] = best;
    sarg[warp] = arg;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / kWarp); ++w) take_better(best, arg, sbest[w], sarg[w]);
    ids[n] = arg == V ? 0 : arg;  // every distance NaN: index 0, like the host loop
  }
}

}  // namespace

int64_t vq_nearest_scratch_floats(int64_t N, int64_t V) {
  return std::min(N, kRowsPerGemm) * V + std::min(N, kRowsPerGemm) + V;
}

void vq_nearest(cublasHandle_t h, cudaStream_t s, const float* x, const float* embed, int64_t* ids, float* scratch,
                int64_t N, int64_t V, int64_t D) {
  if (N == 0) return;
  MG_CHECK(V >= 1, "cuda vq_nearest: empty codebook");
  const int64_t chunk = std::min(N, kRowsPerGemm);
  float* xe = scratch;
  float* x2 = scratch + chunk * V;
  float* e2 = x2 + chunk;
  row_sq_norm_kernel<<<grid_for(V, kBlock), kBlock, 0, s>>>(embed, e2, V, D);
  CUDA_CHECK_LAUNCH();
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t rows = std::min(chunk, N - n0);
    matmul(h, x + n0 * D, 0, embed, 0, xe, 1, rows, V, D, /*trans_b=*/true, 1.0f);
    row_sq_norm_kernel<<<grid_for(rows, kBlock), kBlock, 0, s>>>(x + n0 * D, x2, rows, D);
    CUDA_CHECK_LAUNCH();
    vq_argmax_kernel<<<unsigned(rows), kBlock, 0, s>>>(xe, x2, e2, ids + n0, V);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace cuda
}  // namespace mg
