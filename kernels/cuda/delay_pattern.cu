// Backend::delay_pattern_step_at on the device: the delay pattern's bookkeeping between two
// recorded decode steps (fill the sampled column, gather the next step's codes, advance the
// counters), so that the steps of a generation window follow each other inside the GPU with no
// upload or download in between. Reference: kernels/backend_recording.cpp (the host version).
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

// One block: every thread reads the column first, the fill and the gather are separated by a
// barrier (a row's code is read after its sequence's token was written), and the counters (which
// may hold the column) are advanced last.
__global__ void delay_pattern_step_kernel(int32_t* __restrict__ pattern, const int32_t* __restrict__ tokens,
                                          const int32_t* column, int32_t* __restrict__ ids, int32_t* counters, int B,
                                          int K, int64_t C, int R, int n_counters) {
  const int64_t c = *column;
  __syncthreads();
  const bool inside = c >= 0 && c < C;  // the host checked it; out of range touches nothing
  for (int i = threadIdx.x; i < B * K && inside; i += blockDim.x) {
    int32_t& v = pattern[int64_t(i) * C + c];
    if (v == -1) v = tokens[i];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < K * R && inside; i += blockDim.x) {
    const int k = i / R, r = i % R;
    ids[i] = pattern[(int64_t(r % B) * K + k) * C + c];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n_counters; i += blockDim.x) counters[i] += 1;
}

}  // namespace

void delay_pattern_step(cudaStream_t s, int32_t* pattern, const int32_t* tokens, const int32_t* column, int32_t* ids,
                        int32_t* counters, int B, int K, int64_t C, int R, int n_counters) {
  delay_pattern_step_kernel<<<1, 256, 0, s>>>(pattern, tokens, column, ids, counters, B, K, C, R, n_counters);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
