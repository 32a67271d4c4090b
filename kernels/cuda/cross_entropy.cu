// audiocraft's masked per-codebook cross-entropy and its gradient on the GPU, one block per
// (position, codebook) row (CPU reference: kernels/cpu/cross_entropy.cpp). The per-codebook counts
// of unmasked targets are taken on the host (the targets are small); the row losses come back to
// the host and are summed in double there, as the CPU does.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/train_ops_cuda.h"

namespace mg::cuda::train {

namespace {

constexpr int kThreads = 256;

// weight[k] = grad_scale / (K * count_k). row_loss[r] = lse - logit[target] (0 when masked).
__global__ void ce_kernel(const float* logits, const int32_t* targets, int K, int64_t V, const float* weight,
                          float* dlogits, float* row_loss) {
  __shared__ float sh[kThreads];
  const int64_t r = blockIdx.x;
  const int32_t t = targets[r];
  const float* l = logits + r * V;
  float* d = dlogits ? dlogits + r * V : nullptr;
  if (t < 0) {
    if (d)
      for (int64_t j = threadIdx.x; j < V; j += blockDim.x) d[j] = 0.0f;
    if (threadIdx.x == 0) row_loss[r] = 0.0f;
    return;
  }
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, l[j]);
  mx = block_reduce(mx, sh, true);
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) s += expf(l[j] - mx);
  const float lse = mx + logf(block_reduce(s, sh, false));
  if (threadIdx.x == 0) row_loss[r] = lse - l[t];
  if (!d) return;
  const float w = weight[r % K];
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) d[j] = expf(l[j] - lse) * w - (j == t ? w : 0.0f);
}

}  // namespace

double cross_entropy_forward_backward(const float* logits, const int32_t* targets, int64_t N, int K, int64_t V,
                                      float grad_scale, float* dlogits) {
  std::vector<int32_t> t(size_t(N * K));
  CUDA_CHECK(cudaMemcpy(t.data(), targets, t.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
  std::vector<int64_t> count(K, 0);
  for (size_t i = 0; i < t.size(); ++i) count[i % K] += t[i] >= 0;
  std::vector<float> w(K);
  for (int k = 0; k < K; ++k) w[k] = count[k] ? float(double(grad_scale) / (double(K) * double(count[k]))) : 0.0f;
  float *dw = nullptr, *dloss = nullptr;
  CUDA_CHECK(cudaMalloc(&dw, K * sizeof(float)));
  std::vector<float> loss(size_t(N * K));
  try {
    CUDA_CHECK(cudaMalloc(&dloss, loss.size() * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(dw, w.data(), K * sizeof(float), cudaMemcpyHostToDevice));
    ce_kernel<<<unsigned(N * K), kThreads>>>(logits, targets, K, V, dw, dlogits, dloss);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cudaMemcpy(loss.data(), dloss, loss.size() * sizeof(float), cudaMemcpyDeviceToHost));
  } catch (...) {
    cudaFree(dw);
    cudaFree(dloss);
    throw;
  }
  cudaFree(dw);
  cudaFree(dloss);
  double total = 0.0;
  for (int k = 0; k < K; ++k) {
    double s = 0.0;
    for (int64_t n = 0; n < N; ++n) s += loss[n * K + k];
    total += count[k] ? s / double(count[k]) : std::numeric_limits<double>::quiet_NaN();
  }
  return total / K;
}

}  // namespace mg::cuda::train
