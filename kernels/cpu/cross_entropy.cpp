// audiocraft's training loss (MusicGenSolver._compute_cross_entropy) and its gradient: one mean
// cross-entropy per codebook over the unmasked positions, then the mean over codebooks
// (train_ops.h). Log-sum-exp per row in double.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/train_ops.h"

namespace mg::cpu::train {

double cross_entropy_forward_backward(const Exec& ex, const float* logits, const int32_t* targets, int64_t N, int K,
                                      int64_t V, float grad_scale, float* dlogits, std::vector<double>* per_codebook) {
  std::vector<int64_t> count(K, 0);
  for (int64_t n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) count[k] += targets[n * K + k] >= 0;
  std::vector<double> row_loss(size_t(N * K), 0.0);
  detail::parallel_for(ex, N * K, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int k = int(r % K);
      const float* l = logits + r * V;
      float* d = dlogits ? dlogits + r * V : nullptr;
      const int32_t t = targets[r];
      if (t < 0) {
        if (d) std::fill(d, d + V, 0.0f);
        continue;
      }
      float mx = l[0];
      for (int64_t j = 1; j < V; ++j) mx = std::max(mx, l[j]);
      double sum = 0.0;
      for (int64_t j = 0; j < V; ++j) sum += std::exp(double(l[j] - mx));
      const double lse = double(mx) + std::log(sum);
      row_loss[r] = lse - double(l[t]);
      if (!d) continue;
      // d/dl of loss_k / (K n_k): (softmax - onehot) / (K n_k).
      const double w = double(grad_scale) / (double(K) * double(count[k]));
      for (int64_t j = 0; j < V; ++j) d[j] = float(std::exp(double(l[j]) - lse) * w);
      d[t] -= float(w);
    }
  });
  double loss = 0.0;
  if (per_codebook) per_codebook->assign(K, 0.0);
  for (int k = 0; k < K; ++k) {
    double s = 0.0;
    for (int64_t n = 0; n < N; ++n) s += row_loss[n * K + k];
    const double m = count[k] ? s / double(count[k]) : std::numeric_limits<double>::quiet_NaN();
    if (per_codebook) (*per_codebook)[k] = m;
    loss += m;
  }
  return loss / K;
}

}  // namespace mg::cpu::train
