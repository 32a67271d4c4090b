#include "lm/sampler.h"

#include "kernels/cpu/sample.h"

namespace mg {

void apply_cfg(const float* cond, const float* uncond, float scale, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = cfg_value(cond[i], uncond[i], scale);
}

int sample_token(const float* logits, int64_t n, const SamplerParams& p, uint64_t seed, int64_t step, int codebook) {
  return cpu::sample_one(logits, n, p, sample_uniform(seed, step, codebook));
}

}  // namespace mg
