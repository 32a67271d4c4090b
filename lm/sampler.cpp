#include "lm/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mg {

void apply_cfg(const float* cond, const float* uncond, float scale, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = uncond[i] + (cond[i] - uncond[i]) * scale;
}

int Sampler::sample(const float* logits, int64_t n) {
  if (p_.greedy || p_.temperature <= 0.0f) {
    return int(std::max_element(logits, logits + n) - logits);  // first maximum
  }
  // probs = softmax(logits / temperature), in double for a stable, portable draw.
  std::vector<double> probs(n);
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(logits[i]) / p_.temperature);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += probs[i] = std::exp(double(logits[i]) / p_.temperature - mx);
  for (double& p : probs) p /= sum;

  if (p_.top_p > 0.0f) {
    // audiocraft sample_top_p: sort descending, drop tokens whose preceding mass already exceeds p.
    std::vector<int> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return probs[a] > probs[b]; });
    double cum = 0;
    for (int i : idx) {
      if (cum > p_.top_p) probs[i] = 0;  // cum - p_i > p with cum including p_i
      cum += probs[i] == 0 ? 0 : probs[i];
    }
  } else if (p_.top_k > 0 && p_.top_k < n) {
    // audiocraft sample_top_k: keep probs >= the k-th largest (ties kept).
    std::vector<double> sorted(probs);
    std::nth_element(sorted.begin(), sorted.begin() + (p_.top_k - 1), sorted.end(), std::greater<double>());
    const double kth = sorted[p_.top_k - 1];
    for (double& p : probs)
      if (p < kth) p = 0;
  }
  double total = 0;
  for (double p : probs) total += p;
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng_), acc = 0;
  int last = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (probs[i] <= 0) continue;
    last = int(i);
    acc += probs[i];
    if (r < acc) return int(i);
  }
  return last;
}

}  // namespace mg
