#include "train/adamw.h"

#include <algorithm>
#include <cmath>

#include "kernels/common.h"

namespace mg::train {

double lr_factor(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return double(step) / double(std::max<int64_t>(1, warmup));
  const double progress = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
  return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

namespace {

// Every tensor of an adapter, A then B per entry: the order of the optimiser state.
std::vector<Tensor*> tensors_of(LoraAdapter& a) {
  std::vector<Tensor*> t;
  for (LoraWeights& w : a.weights) {
    t.push_back(&w.A);
    t.push_back(&w.B);
  }
  return t;
}

}  // namespace

double clip_grad_norm(LoraAdapter& grads, double max_norm) {
  // As torch: the norm of each tensor (f32), then the norm of those norms.
  double total = 0.0;
  for (Tensor* t : tensors_of(grads)) {
    double s = 0.0;
    const float* g = t->f32();
    for (int64_t i = 0; i < t->numel(); ++i) s += double(g[i]) * double(g[i]);
    const float n = float(std::sqrt(s));
    total += double(n) * double(n);
  }
  const double norm = std::sqrt(total);
  if (max_norm > 0.0) {
    const float coef = float(max_norm / (norm + 1e-6));
    if (coef < 1.0f)
      for (Tensor* t : tensors_of(grads)) {
        float* g = t->f32();
        for (int64_t i = 0; i < t->numel(); ++i) g[i] *= coef;
      }
  }
  return norm;
}

void adamw_step(LoraAdapter& params, const LoraAdapter& grads, AdamWState& state, const AdamWConfig& cfg, double lr) {
  std::vector<Tensor*> ps = tensors_of(params);
  std::vector<Tensor*> gs = tensors_of(const_cast<LoraAdapter&>(grads));
  MG_CHECK(ps.size() == gs.size(), "AdamW: ", ps.size(), " parameters but ", gs.size(), " gradients");
  if (state.m.empty()) {
    for (Tensor* p : ps) {
      state.m.emplace_back(size_t(p->numel()), 0.0f);
      state.v.emplace_back(size_t(p->numel()), 0.0f);
    }
  }
  MG_CHECK(state.m.size() == ps.size(), "AdamW: the optimiser state holds ", state.m.size(), " tensors, the adapter ",
           ps.size(), " (a checkpoint of another adapter?)");
  state.step += 1;
  const double bc1 = 1.0 - std::pow(double(cfg.beta1), double(state.step));
  const double bc2 = 1.0 - std::pow(double(cfg.beta2), double(state.step));
  const float decay = float(1.0 - lr * double(cfg.weight_decay));
  const float step_size = float(lr / bc1);
  const float bc2_sqrt = float(std::sqrt(bc2));
  const float w1 = 1.0f - cfg.beta1, w2 = 1.0f - cfg.beta2;
  for (size_t t = 0; t < ps.size(); ++t) {
    float* p = ps[t]->f32();
    const float* g = gs[t]->f32();
    float* m = state.m[t].data();
    float* v = state.v[t].data();
    MG_CHECK(int64_t(state.m[t].size()) == ps[t]->numel(), "AdamW: state tensor ", t, " has the wrong size");
    for (int64_t i = 0; i < ps[t]->numel(); ++i) {
      p[i] *= decay;
      m[i] += w1 * (g[i] - m[i]);  // torch's lerp
      v[i] = v[i] * cfg.beta2 + w2 * g[i] * g[i];
      const float denom = std::sqrt(v[i]) / bc2_sqrt + cfg.eps;
      p[i] += -step_size * (m[i] / denom);
    }
  }
}

}  // namespace mg::train
