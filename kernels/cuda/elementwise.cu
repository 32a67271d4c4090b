// Elementwise ops: add / mul with suffix broadcast, scale, elu, gelu (erf), relu, and casts.
// Grid-stride loops over the flat tensor: every access is coalesced, and one launch covers any size.
#include <cstdint>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

constexpr int kBlock = 256;

#define MG_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <BinaryOp OP>
__global__ void binary_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                              int64_t n, int64_t nb) {
  MG_GRID_STRIDE(i, n) {
    const float bv = b[nb == n ? i : i % nb];
    out[i] = OP == BinaryOp::Add ? a[i] + bv : a[i] * bv;
  }
}

template <UnaryOp OP>
__global__ void unary_kernel(const float* __restrict__ x, float* __restrict__ out, int64_t n, float p) {
  MG_GRID_STRIDE(i, n) {
    const float v = x[i];
    float r;
    if (OP == UnaryOp::Scale) r = v * p;
    else if (OP == UnaryOp::Elu) r = v > 0.0f ? v : p * expm1f(v);  // as torch: alpha * expm1(x)
    else if (OP == UnaryOp::Gelu) r = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    else r = v > 0.0f ? v : 0.0f;
    out[i] = r;
  }
}

// Float casts go through f32; __float2half_rn / __float2bfloat16_rn round to nearest even, as
// PyTorch (and kernels/tensor.cpp) do.
template <typename From> __device__ __forceinline__ float load_f(const From* p, int64_t i) { return to_f32(p[i]); }
__device__ __forceinline__ void store_f(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void store_f(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

template <typename From, typename To>
__global__ void cast_float_kernel(const From* __restrict__ x, To* __restrict__ out, int64_t n) {
  MG_GRID_STRIDE(i, n) store_f(out, i, load_f(x, i));
}

__global__ void widen_kernel(const int32_t* __restrict__ x, int64_t* __restrict__ out, int64_t n) {
  MG_GRID_STRIDE(i, n) out[i] = x[i];
}

// An overflow writes `tag` into *overflow unless an earlier checked launch already wrote its own.
__global__ void narrow_kernel(const int64_t* __restrict__ x, int32_t* __restrict__ out, int64_t n, int* overflow,
                              int tag) {
  MG_GRID_STRIDE(i, n) {
    const int64_t v = x[i];
    if ((v < INT32_MIN || v > INT32_MAX) && overflow) atomicCAS(overflow, 0, tag);
    out[i] = static_cast<int32_t>(v);
  }
}

template <typename From>
void cast_from(cudaStream_t s, const From* x, void* out, DType to, int64_t n) {
  const unsigned g = grid_for(n, kBlock);
  switch (to) {
    case DType::F32: cast_float_kernel<<<g, kBlock, 0, s>>>(x, static_cast<float*>(out), n); break;
    case DType::F16: cast_float_kernel<<<g, kBlock, 0, s>>>(x, static_cast<__half*>(out), n); break;
    case DType::BF16: cast_float_kernel<<<g, kBlock, 0, s>>>(x, static_cast<__nv_bfloat16*>(out), n); break;
    default: throw Error(strcat("cuda cast: cannot cast a float tensor to ", dtype_name(to)));
  }
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

}  // namespace

void binary(cudaStream_t s, BinaryOp op, const float* a, const float* b, float* out, int64_t n, int64_t nb) {
  if (n == 0) return;
  const unsigned g = grid_for(n, kBlock);
  if (op == BinaryOp::Add) binary_kernel<BinaryOp::Add><<<g, kBlock, 0, s>>>(a, b, out, n, nb);
  else binary_kernel<BinaryOp::Mul><<<g, kBlock, 0, s>>>(a, b, out, n, nb);
  CUDA_CHECK_LAUNCH();
}

void unary(cudaStream_t s, UnaryOp op, const float* x, float* out, int64_t n, float p) {
  if (n == 0) return;
  const unsigned g = grid_for(n, kBlock);
  switch (op) {
    case UnaryOp::Scale: unary_kernel<UnaryOp::Scale><<<g, kBlock, 0, s>>>(x, out, n, p); break;
    case UnaryOp::Elu: unary_kernel<UnaryOp::Elu><<<g, kBlock, 0, s>>>(x, out, n, p); break;
    case UnaryOp::Gelu: unary_kernel<UnaryOp::Gelu><<<g, kBlock, 0, s>>>(x, out, n, p); break;
    case UnaryOp::Relu: unary_kernel<UnaryOp::Relu><<<g, kBlock, 0, s>>>(x, out, n, p); break;
  }
  CUDA_CHECK_LAUNCH();
}

void cast(cudaStream_t s, const void* x, DType from, void* out, DType to, int64_t n, int* overflow_flag, int tag) {
  if (n == 0) return;
  if (from == to) {
    CUDA_CHECK(cudaMemcpyAsync(out, x, size_t(n) * dtype_size(from), cudaMemcpyDeviceToDevice, s));
    return;
  }
  if (is_float(from)) {
    switch (from) {
      case DType::F32: cast_from(s, static_cast<const float*>(x), out, to, n); break;
      case DType::F16: cast_from(s, static_cast<const __half*>(x), out, to, n); break;
      default: cast_from(s, static_cast<const __nv_bfloat16*>(x), out, to, n); break;
    }
  } else if (from == DType::I32 && to == DType::I64) {
    widen_kernel<<<grid_for(n, kBlock), kBlock, 0, s>>>(static_cast<const int32_t*>(x), static_cast<int64_t*>(out), n);
  } else if (from == DType::I64 && to == DType::I32) {
    narrow_kernel<<<grid_for(n, kBlock), kBlock, 0, s>>>(static_cast<const int64_t*>(x), static_cast<int32_t*>(out),
                                                         n, overflow_flag, tag);
  } else {
    throw Error(strcat("cuda cast: unsupported cast ", dtype_name(from), " -> ", dtype_name(to)));
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
