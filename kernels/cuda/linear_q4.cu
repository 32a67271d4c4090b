// q4_0 weights on the GPU: value i < 16 is the low nibble of byte 2 + i, value i >= 16 the high
// nibble of byte 2 + i - 16, minus 8 (kernels/quant.h).
#include "kernels/cuda/linear_quant_kernel.cuh"

namespace mg::cuda {

namespace {
struct Q4 {
  static constexpr int64_t kBlockBytes = 18;
  __device__ __forceinline__ static int value(const uint8_t* blk, int i) {
    const uint8_t byte = blk[2 + (i & 15)];
    return int(i < 16 ? (byte & 15) : (byte >> 4)) - 8;
  }
};
}  // namespace

void linear_q4_0(cudaStream_t s, const float* x, const void* w, const void* b, DType bdt, float* y, int64_t M,
                 int64_t N, int64_t K, bool gelu, const float* residual) {
  quant::launch<Q4>(s, x, w, b, bdt, y, M, N, K, gelu, residual);
}

}  // namespace mg::cuda
