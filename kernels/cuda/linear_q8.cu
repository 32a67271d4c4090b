// q8_0 weights on the GPU: value i of a block is the int8 at byte 2 + i (kernels/quant.h).
#include "kernels/cuda/linear_quant_kernel.cuh"

namespace mg::cuda {

namespace {
struct Q8 {
  static constexpr int64_t kBlockBytes = 34;
  __device__ __forceinline__ static int value(const uint8_t* blk, int i) { return int(int8_t(blk[2 + i])); }
};
}  // namespace

void linear_q8_0(cudaStream_t s, const float* x, const void* w, const void* b, DType bdt, float* y, int64_t M,
                 int64_t N, int64_t K, bool gelu, const float* residual) {
  quant::launch<Q8>(s, x, w, b, bdt, y, M, N, K, gelu, residual);
}

}  // namespace mg::cuda
