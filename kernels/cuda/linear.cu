// linear: y[M, N] = x[M, K] . w[N, K]^T (+ b[N]), PyTorch nn.Linear layout, f32 accumulation,
// optionally followed by an exact GELU and a residual add (LinearFusion, kernels/ops.h).
// f32 weights with many rows go to cuBLAS; everything else uses our own kernels, which convert each
// half weight to f32 as it is read (so no f32 copy of the weights ever exists):
//  - a GEMV-like kernel for few rows (the decode step: M <= kGemvMaxRows; any weight dtype), one
//    warp per output column, lanes striding over K so that the weight row is read coalesced exactly once; when K is
//    a multiple of 8 and the rows are 16-byte aligned each lane loads 8 weights (16 bytes) at a
//    time, which is what lets a decode step approach the card's memory bandwidth. The bias, GELU
//    and residual are applied in its epilogue (no extra launches);
//  - a 64x64 tiled kernel for many rows, weight tiles converted to f32 in shared memory.
// The cuBLAS and tiled paths apply a fusion with one in-place epilogue kernel.
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/linear_quant.h"

namespace mg {
namespace cuda {
namespace {

constexpr int kGemvMaxRows = 8;
constexpr int kGemvWarps = 8;  // warps (output columns) per block

// Reads element i of a bias vector of any float dtype.
__device__ __forceinline__ float load_bias(const void* b, DType dt, int64_t i) {
  switch (dt) {
    case DType::F16: return __half2float(static_cast<const __half*>(b)[i]);
    case DType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(b)[i]);
    default: return static_cast<const float*>(b)[i];
  }
}

__device__ __forceinline__ float gelu_erf(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

// What follows the product: y = gelu?(acc + b) + residual (the order of the composed ops).
struct Epilogue {
  const void* b;
  DType bdt;
  bool gelu;
  const float* residual;  // [M, N] or null
};

__device__ __forceinline__ float finish(const Epilogue& e, float v, int64_t m, int64_t n, int64_t N) {
  if (e.b) v += load_bias(e.b, e.bdt, n);
  if (e.gelu) v = gelu_erf(v);
  if (e.residual) v = e.residual[m * N + n] + v;
  return v;
}

template <typename W>
__global__ void linear_gemv_kernel(const float* __restrict__ x, const W* __restrict__ w, Epilogue e,
                                   float* __restrict__ y, int M, int64_t N, int64_t K) {
  const int lane = threadIdx.x % kWarp;
  const int64_t n = int64_t(blockIdx.x) * kGemvWarps + threadIdx.x / kWarp;
  if (n >= N) return;  // whole warp leaves together: the shuffles below stay full-warp
  const W* wrow = w + n * K;
  float acc[kGemvMaxRows];
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) acc[m] = 0.0f;
  for (int64_t k = lane; k < K; k += kWarp) {
    const float wv = to_f32(wrow[k]);
#pragma unroll
    for (int m = 0; m < kGemvMaxRows; ++m)
      if (m < M) acc[m] = fmaf(x[m * K + k], wv, acc[m]);
  }
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) {
    if (m < M) {
      const float v = warp_sum(acc[m]);
      if (lane == 0) y[m * N + n] = finish(e, v, m, n, N);
    }
  }
}

// 8 packed half weights (one 16-byte load) -> f32.
__device__ __forceinline__ void unpack8(const uint4& raw, const __half*, float (&f)[8]) {
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __half22float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}
__device__ __forceinline__ void unpack8(const uint4& raw, const __nv_bfloat16*, float (&f)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

// 8 consecutive weights of a row as f32: one 16-byte load of halves, two of floats.
template <typename W>
__device__ __forceinline__ void load8(const W* row, int64_t j, float (&f)[8]) {
  unpack8(reinterpret_cast<const uint4*>(row)[j], static_cast<const W*>(nullptr), f);
}
__device__ __forceinline__ void load8(const float* row, int64_t j, float (&f)[8]) {
  const float4* r = reinterpret_cast<const float4*>(row) + 2 * j;
  const float4 a = r[0], b = r[1];
  f[0] = a.x;
  f[1] = a.y;
  f[2] = a.z;
  f[3] = a.w;
  f[4] = b.x;
  f[5] = b.y;
  f[6] = b.z;
  f[7] = b.w;
}

// The GEMV with 16-byte loads: K % 8 == 0, w and x 16-byte aligned (checked by the launcher).
template <typename W>
__global__ void linear_gemv8_kernel(const float* __restrict__ x, const W* __restrict__ w, Epilogue e,
                                    float* __restrict__ y, int M, int64_t N, int64_t K) {
  const int lane = threadIdx.x % kWarp;
  const int64_t n = int64_t(blockIdx.x) * kGemvWarps + threadIdx.x / kWarp;
  if (n >= N) return;
  const W* wrow = w + n * K;
  const int64_t K8 = K / 8;
  float acc[kGemvMaxRows];
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) acc[m] = 0.0f;
#pragma unroll 4
  for (int64_t j = lane; j < K8; j += kWarp) {
    float wv[8];
    load8(wrow, j, wv);
#pragma unroll
    for (int m = 0; m < kGemvMaxRows; ++m) {
      if (m < M) {
        const float4* xr = reinterpret_cast<const float4*>(x + m * K) + 2 * j;
        const float4 a = xr[0], c = xr[1];
        float t = acc[m];
        t = fmaf(a.x, wv[0], t);
        t = fmaf(a.y, wv[1], t);
        t = fmaf(a.z, wv[2], t);
        t = fmaf(a.w, wv[3], t);
        t = fmaf(c.x, wv[4], t);
        t = fmaf(c.y, wv[5], t);
        t = fmaf(c.z, wv[6], t);
        t = fmaf(c.w, wv[7], t);
        acc[m] = t;
      }
    }
  }
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) {
    if (m < M) {
      const float v = warp_sum(acc[m]);
      if (lane == 0) y[m * N + n] = finish(e, v, m, n, N);
    }
  }
}

// In place: y = gelu?(y) + residual, after a path that wrote y = x . w^T + b.
__global__ void epilogue_kernel(float* __restrict__ y, bool gelu, const float* __restrict__ residual, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float v = y[i];
    if (gelu) v = gelu_erf(v);
    if (residual) v = residual[i] + v;
    y[i] = v;
  }
}

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kTileThreads = 256;  // 16 x 16 threads, each computes 4 x 4 outputs

template <typename W>
__global__ void __launch_bounds__(kTileThreads)
linear_tiled_kernel(const float* __restrict__ x, const W* __restrict__ w, const void* b, DType bdt,
                    float* __restrict__ y, int64_t M, int64_t N, int64_t K) {
  // Stored k-major so that the inner product loop reads rows of the tiles; +1 avoids bank
  // conflicts on the transposing stores.
  __shared__ float xs[kTileK][kTileM + 1];
  __shared__ float ws[kTileK][kTileN + 1];
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.y) * kTileM, n0 = int64_t(blockIdx.x) * kTileN;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
    // Each thread loads 4 elements of each tile; consecutive threads read consecutive k.
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int e = tid + i * kTileThreads;
      const int r = e / kTileK, c = e % kTileK;
      const int64_t k = k0 + c;
      const int64_t m = m0 + r, n = n0 + r;
      xs[c][r] = (m < M && k < K) ? x[m * K + k] : 0.0f;
      ws[c][r] = (n < N && k < K) ? to_f32(w[n * K + k]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float xv[4], wv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) xv[i] = xs[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) wv[j] = ws[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(xv[i], wv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx + 16 * j;
      if (n < N) y[m * N + n] = acc[i][j] + (b ? load_bias(b, bdt, n) : 0.0f);
    }
  }
}

__global__ void add_row_bias_kernel(float* __restrict__ y, const void* b, DType bdt, int64_t M, int64_t N) {
  const int64_t total = M * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] += load_bias(b, bdt, i % N);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Our kernels: the GEMV for few rows (any weight dtype), the tiled kernel for many (half weights;
// f32 weights with many rows go to cuBLAS instead).
template <typename W>
void linear_own(cudaStream_t s, const float* x, const W* w, const Epilogue& e, float* y, int64_t M, int64_t N,
                int64_t K) {
  if (M <= kGemvMaxRows) {
    const unsigned blocks = static_cast<unsigned>(ceil_div(N, kGemvWarps));
    if (K % 8 == 0 && aligned16(w) && aligned16(x))
      linear_gemv8_kernel<W><<<blocks, kGemvWarps * kWarp, 0, s>>>(x, w, e, y, int(M), N, K);
    else
      linear_gemv_kernel<W><<<blocks, kGemvWarps * kWarp, 0, s>>>(x, w, e, y, int(M), N, K);
  } else {
    MG_CHECK(ceil_div(M, kTileM) <= 65535, "cuda linear: ", M, " rows exceed the tiled kernel's grid");
    dim3 grid(static_cast<unsigned>(ceil_div(N, kTileN)), static_cast<unsigned>(ceil_div(M, kTileM)));
    linear_tiled_kernel<W><<<grid, kTileThreads, 0, s>>>(x, w, e.b, e.bdt, y, M, N, K);
    CUDA_CHECK_LAUNCH();
    if (e.gelu || e.residual)
      epilogue_kernel<<<grid_for(M * N, 256), 256, 0, s>>>(y, e.gelu, e.residual, M * N);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void add_row_bias(cudaStream_t s, float* y, const void* b, DType bdt, int64_t M, int64_t N) {
  if (M * N == 0) return;
  add_row_bias_kernel<<<grid_for(M * N, 256), 256, 0, s>>>(y, b, bdt, M, N);
  CUDA_CHECK_LAUNCH();
}

void linear(cublasHandle_t h, cudaStream_t s, const float* x, const void* w, DType wdt, const void* b,
            DType bdt, float* y, int64_t M, int64_t N, int64_t K, bool gelu, const float* residual) {
  if (M == 0 || N == 0) return;
  const Epilogue e{b, bdt, gelu, residual};
  auto epilogue = [&] {
    if (!gelu && !residual) return;
    epilogue_kernel<<<grid_for(M * N, 256), 256, 0, s>>>(y, gelu, residual, M * N);
    CUDA_CHECK_LAUNCH();
  };
  if (K == 0) {  // empty sum: y = bias (or 0)
    CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(M * N) * sizeof(float), s));
    if (b) add_row_bias(s, y, b, bdt, M, N);
    epilogue();
    return;
  }
  switch (wdt) {
    case DType::F32:
      // A few rows (the decode step): our GEMV, with the bias, GELU and residual in its epilogue.
      if (M <= kGemvMaxRows) {
        linear_own(s, x, static_cast<const float*>(w), e, y, M, N, K);
        return;
      }
      // Row-major y[M, N] is column-major y^T[N, M] = w . x^T, where the column-major view of
      // row-major w[N, K] is w^T (so op = T) and that of x[M, K] is x^T (op = N).
      matmul(h, x, 0, static_cast<const float*>(w), 0, y, 1, M, N, K, /*trans_b=*/true, 1.0f);
      if (b) add_row_bias(s, y, b, bdt, M, N);
      epilogue();
      return;
    case DType::F16:
      linear_own(s, x, static_cast<const __half*>(w), e, y, M, N, K);
      return;
    case DType::BF16:
      linear_own(s, x, static_cast<const __nv_bfloat16*>(w), e, y, M, N, K);
      return;
    case DType::Q8_0:  // linear_q8.cu / linear_q4.cu: blocks dequantized in registers
      linear_q8_0(s, x, w, b, bdt, y, M, N, K, gelu, residual);
      return;
    case DType::Q4_0:
      linear_q4_0(s, x, w, b, bdt, y, M, N, K, gelu, residual);
      return;
    default:
      throw Error(strcat("cuda linear: weight dtype ", dtype_name(wdt), " is not a float type"));
  }
}

}  // namespace cuda
}  // namespace mg
