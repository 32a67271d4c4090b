// The CPU reference of token sampling (Backend::sample_tokens); kernels/cuda/sample.cu mirrors
// it operation for operation so that both pick the same tokens for the same logits and seed.
#include "kernels/cpu/sample.h"

#include "kernels/cpu/cpu_common.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mg::cpu {

int sample_one(const float* logits, int64_t V, const SamplerParams& p, double u) {
  if (p.greedy || p.temperature <= 0.0f) {
    return int(std::max_element(logits, logits + V) - logits);  // first maximum
  }
  // probs = softmax(logits / temperature), in double for a stable, portable draw. The max is
  // taken before the division (a correctly rounded division by T > 0 keeps the order, so it is the
  // same value), and a temperature of 1 divides by nothing (x / 1 is x): 2 x V divisions fewer at
  // the default temperature, the same bits.
  std::vector<double> probs(static_cast<size_t>(V));
  float top = -INFINITY;
  for (int64_t i = 0; i < V; ++i) top = std::max(top, logits[i]);
  const double t = p.temperature;
  const double mx = double(top) / t;
  double sum = 0;
  if (t == 1.0) {
    for (int64_t i = 0; i < V; ++i) sum += probs[i] = std::exp(double(logits[i]) - mx);
  } else {
    for (int64_t i = 0; i < V; ++i) sum += probs[i] = std::exp(double(logits[i]) / t - mx);
  }
  for (double& q : probs) q /= sum;

  if (p.top_p > 0.0f) {
    // Sorted descending (ties by index, as a stable sort); a token goes when the mass of the
    // tokens before it already exceeds p (audiocraft: probs_sum - probs_sort > p).
    std::vector<int> idx(static_cast<size_t>(V));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return probs[a] > probs[b]; });
    double cum = 0;
    for (int i : idx) {
      const double q = probs[i];
      if (cum > double(p.top_p)) probs[i] = 0;
      cum += q;
    }
  } else if (p.top_k > 0 && p.top_k < V) {
    std::vector<double> sorted(probs);
    std::nth_element(sorted.begin(), sorted.begin() + (p.top_k - 1), sorted.end(), std::greater<double>());
    const double kth = sorted[size_t(p.top_k - 1)];
    for (double& q : probs)
      if (q < kth) q = 0;
  }
  double total = 0;
  for (double q : probs) total += q;
  const double r = u * total;
  double acc = 0;
  int last = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (probs[i] <= 0) continue;
    last = int(i);
    acc += probs[i];
    if (r < acc) return int(i);
  }
  return last;  // r rounded up to the total: the last kept token
}

Tensor sample_tokens(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                     const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided) {
  return sample_tokens(logits, cfg, guidance_scale, p, seeds, step, guided, Exec{});
}

// Each (sequence, codebook) draw depends on its own logits and (seed, step, codebook) alone, so
// the draws run side by side on the pool (a decode step's 4 codebooks: ~20 us each) with the bits
// of the serial loop.
Tensor sample_tokens(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                     const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided, const Exec& ex) {
  const int B = int(seeds.size());
  const int K = int(logits.dim(1));
  const int64_t V = logits.dim(2), n = int64_t(K) * V;
  Tensor ids = Tensor::empty(DType::I32, {B, K});
  Tensor g = cfg ? Tensor::empty(DType::F32, {B, K, V}) : Tensor();
  const float* rows = cfg ? g.f32() : logits.f32();
  // Each draw guides its own V values first (CFG per value: the same bits in any split).
  detail::parallel_for(ex, int64_t(B) * K, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int s = int(i / K), k = int(i % K);
      const int64_t at = int64_t(s) * n + int64_t(k) * V;
      if (cfg) {
        const float* row = logits.f32() + at;
        const float* null_row = logits.f32() + int64_t(B) * n + at;
        float* out = g.f32() + at;
        for (int64_t j = 0; j < V; ++j) out[j] = cfg_value(row[j], null_row[j], guidance_scale);
      }
      ids.ptr<int32_t>()[i] = sample_one(rows + at, V, p, sample_uniform(seeds[s], step, k));
    }
  });
  if (guided) *guided = cfg ? g : logits;
  return ids;
}

}  // namespace mg::cpu
