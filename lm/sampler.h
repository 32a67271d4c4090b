// Turning logits into tokens: classifier-free guidance, then greedy or temperature / top-k /
// top-p sampling, in audiocraft's order (CFG on raw logits -> softmax(logits / temperature) ->
// top-p if > 0, else top-k if > 0, else the full distribution).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace mg {

struct SamplerParams {
  bool greedy = false;        // argmax (first index on ties); also when temperature <= 0
  int top_k = 250;            // audiocraft's default
  float top_p = 0.0f;         // 0: off
  float temperature = 1.0f;
};

// uncond + scale * (cond - uncond), elementwise (the references' formula and order).
void apply_cfg(const float* cond, const float* uncond, float scale, float* out, int64_t n);

class Sampler {
 public:
  Sampler(const SamplerParams& p, uint64_t seed) : p_(p), rng_(seed) {}
  // One token from logits[n]. Deterministic for a seed: the same calls give the same tokens.
  int sample(const float* logits, int64_t n);

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
};

}  // namespace mg
