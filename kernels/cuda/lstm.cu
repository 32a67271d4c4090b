// One step of an LSTM layer (PyTorch gate order i, f, g, o). The input projection of all steps
// is one GEMM done beforehand by the backend; this kernel adds h_prev . W_hh^T and applies the
// gates. One warp per hidden unit computes its four gate dot products, so the launch boundary
// between steps is the only synchronisation the recurrence needs.
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

__global__ void lstm_step_kernel(const float* __restrict__ gates_x, const float* __restrict__ w_hh,
                                 const float* __restrict__ h_prev, float* __restrict__ c, float* __restrict__ h_out,
                                 int64_t H) {
  const int lane = threadIdx.x % kWarp;
  const int64_t j = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (j >= H) return;  // whole warp leaves together
  float dot[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (h_prev) {
    for (int64_t k = lane; k < H; k += kWarp) {
      const float hk = h_prev[k];
#pragma unroll
      for (int g = 0; g < 4; ++g) dot[g] = fmaf(w_hh[(g * H + j) * H + k], hk, dot[g]);
    }
#pragma unroll
    for (int g = 0; g < 4; ++g) dot[g] = warp_sum(dot[g]);
  }
  if (lane == 0) {
    const float i = sigmoid(gates_x[j] + dot[0]);
    const float f = sigmoid(gates_x[H + j] + dot[1]);
    const float g = tanhf(gates_x[2 * H + j] + dot[2]);
    const float o = sigmoid(gates_x[3 * H + j] + dot[3]);
    const float cn = f * c[j] + i * g;
    c[j] = cn;
    h_out[j] = o * tanhf(cn);
  }
}

}  // namespace

void lstm_step(cudaStream_t s, const float* gates_x, const float* w_hh, const float* h_prev, float* c,
               float* h_out, int64_t H) {
  if (H == 0) return;
  const unsigned blocks = static_cast<unsigned>(ceil_div(H, kWarpsPerBlock));
  lstm_step_kernel<<<blocks, kWarpsPerBlock * kWarp, 0, s>>>(gates_x, w_hh, h_prev, c, h_out, H);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
