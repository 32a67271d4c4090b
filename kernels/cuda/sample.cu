// Token sampling on the device (Backend::sample_tokens): one block per (sequence, codebook)
// guides the logits, then mirrors kernels/cpu/sample.cpp operation for operation - softmax in
// double, top-p / top-k through a bitonic sort in shared memory (descending, ties by index: the
// CPU's stable sort), and the inverse-CDF walk with the same counter-based uniform. The order-
// dependent sums (softmax denominator, top-p mass, total) run on one thread in index / sorted
// order so that the CPU and the GPU add the same numbers in the same order.
// Correctness first: those serial walks cost ~V dependent adds per block (tens of microseconds
// for V = 2048); a fixed-order tree reduction shared with the CPU would remove them.
#include <climits>

#include "kernels/cpu/sample.h"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

constexpr int kSampleThreads = 256;

struct SampleArgs {
  uint64_t seeds[kMaxSampleSequences];
  int B, K, V, Vpad;
  bool cfg, greedy;
  float guidance, temperature, top_p;
  int top_k;
  int64_t step;
  const uint64_t* seeds_dev;  // non-null: the seeds and the step come from the device (a recorded step)
  const int32_t* step_dev;
};

// a before b in a descending sort whose ties go by index (a stable sort of an iota).
__device__ __forceinline__ bool before(double ka, int ia, double kb, int ib) {
  return ka > kb || (ka == kb && ia < ib);
}

__global__ void sample_kernel(const float* __restrict__ logits, float* __restrict__ guided, int32_t* __restrict__ ids,
                              SampleArgs a) {
  extern __shared__ double smem[];
  double* probs = smem;              // [Vpad]: guided logits, then probabilities
  double* keys = smem + a.Vpad;      // [Vpad]: sorted copy
  int* idx = reinterpret_cast<int*>(keys + a.Vpad);  // [Vpad]
  __shared__ double red_v[kSampleThreads];
  __shared__ int red_i[kSampleThreads];
  __shared__ double shared_sum;
  const int s = blockIdx.x / a.K, k = blockIdx.x % a.K, tid = threadIdx.x, nt = blockDim.x;
  const int V = a.V;
  const float* cond = logits + (int64_t(s) * a.K + k) * V;
  const float* unc = a.cfg ? logits + (int64_t(a.B + s) * a.K + k) * V : nullptr;
  for (int i = tid; i < V; i += nt) {
    const float x = a.cfg ? cfg_value(cond[i], unc[i], a.guidance) : cond[i];
    probs[i] = x;
    if (guided) guided[(int64_t(s) * a.K + k) * V + i] = x;
  }
  __syncthreads();

  // Maximum with the first index on ties (std::max_element): over the raw guided logits for
  // greedy, over logits / temperature otherwise (same order either way, temperature > 0).
  {
    double best = -INFINITY;
    int arg = -1;
    for (int i = tid; i < V; i += nt)
      if (arg < 0 || probs[i] > best) { best = probs[i]; arg = i; }
    red_v[tid] = best;
    red_i[tid] = arg;
    __syncthreads();
    for (int w = nt / 2; w > 0; w >>= 1) {
      if (tid < w) {
        const double bv = red_v[tid + w];
        const int bi = red_i[tid + w];
        if (bi >= 0 && (red_i[tid] < 0 || bv > red_v[tid] || (bv == red_v[tid] && bi < red_i[tid]))) {
          red_v[tid] = bv;
          red_i[tid] = bi;
        }
      }
      __syncthreads();
    }
  }
  if (a.greedy || a.temperature <= 0.0f) {
    if (tid == 0) ids[s * a.K + k] = red_i[0];
    return;
  }
  // The CPU computes max(l / T) then exp(l / T - max); l / T is monotone in l, so the maximum of
  // the logits divided by T is the same number.
  const double T = a.temperature;
  const double mx = red_v[0] / T;
  for (int i = tid; i < V; i += nt) probs[i] = exp(probs[i] / T - mx);
  __syncthreads();
  if (tid == 0) {
    double sum = 0;
    for (int i = 0; i < V; ++i) sum += probs[i];
    shared_sum = sum;
  }
  __syncthreads();
  for (int i = tid; i < V; i += nt) probs[i] /= shared_sum;
  __syncthreads();

  const bool top_p = a.top_p > 0.0f, top_k = !top_p && a.top_k > 0 && a.top_k < V;
  if (top_p || top_k) {
    for (int i = tid; i < a.Vpad; i += nt) {
      keys[i] = i < V ? probs[i] : -1.0;
      idx[i] = i < V ? i : INT_MAX;
    }
    __syncthreads();
    for (int size = 2; size <= a.Vpad; size <<= 1)
      for (int stride = size / 2; stride > 0; stride >>= 1) {
        for (int i = tid; i < a.Vpad; i += nt) {
          const int j = i ^ stride;
          if (j > i) {
            const bool descending = (i & size) == 0;
            const bool ordered = before(keys[i], idx[i], keys[j], idx[j]);
            if (descending != ordered) {
              const double kv = keys[i];
              keys[i] = keys[j];
              keys[j] = kv;
              const int iv = idx[i];
              idx[i] = idx[j];
              idx[j] = iv;
            }
          }
        }
        __syncthreads();
      }
    if (top_p) {
      if (tid == 0) {
        double cum = 0;
        for (int j = 0; j < V; ++j) {
          const int i = idx[j];
          const double q = probs[i];
          if (cum > double(a.top_p)) probs[i] = 0;
          cum += q;
        }
      }
    } else {
      const double kth = keys[a.top_k - 1];
      for (int i = tid; i < V; i += nt)
        if (probs[i] < kth) probs[i] = 0;
    }
    __syncthreads();
  }
  if (tid == 0) {
    double total = 0;
    for (int i = 0; i < V; ++i) total += probs[i];
    const uint64_t seed = a.seeds_dev ? a.seeds_dev[s] : a.seeds[s];
    const int64_t step = a.step_dev ? int64_t(*a.step_dev) : a.step;
    const double r = sample_uniform(seed, step, k) * total;
    double acc = 0;
    int last = 0, pick = -1;
    for (int i = 0; i < V && pick < 0; ++i) {
      if (probs[i] <= 0) continue;
      last = i;
      acc += probs[i];
      if (r < acc) pick = i;
    }
    ids[s * a.K + k] = pick >= 0 ? pick : last;
  }
}

}  // namespace

void sample_tokens(cudaStream_t s, const float* logits, float* guided, int32_t* ids, const uint64_t* seeds, int B,
                   int K, int V, bool cfg, float guidance_scale, const SamplerParams& p, int64_t step,
                   const uint64_t* seeds_dev, const int32_t* step_dev) {
  MG_CHECK(B >= 1 && B <= kMaxSampleSequences, "cuda sample_tokens: ", B, " sequences (at most ",
           kMaxSampleSequences, ")");
  MG_CHECK(V >= 1 && V <= kMaxSampleVocab, "cuda sample_tokens: vocabulary of ", V, " (at most ", kMaxSampleVocab,
           " for the shared-memory sort)");
  SampleArgs a{};
  for (int i = 0; i < B && seeds; ++i) a.seeds[i] = seeds[i];
  MG_CHECK(seeds || (seeds_dev && step_dev), "cuda sample_tokens: no seeds");
  a.B = B;
  a.K = K;
  a.V = V;
  a.Vpad = 1;
  while (a.Vpad < V) a.Vpad <<= 1;
  a.cfg = cfg;
  a.greedy = p.greedy;
  a.guidance = guidance_scale;
  a.temperature = p.temperature;
  a.top_p = p.top_p;
  a.top_k = p.top_k;
  a.step = step;
  a.seeds_dev = seeds_dev;
  a.step_dev = step_dev;
  const size_t shared = size_t(a.Vpad) * (2 * sizeof(double) + sizeof(int));
  sample_kernel<<<unsigned(B * K), kSampleThreads, shared, s>>>(logits, guided, ids, a);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
