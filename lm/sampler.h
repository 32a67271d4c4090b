// Turning logits into tokens. The sampling itself is a backend op (Backend::sample_tokens in
// kernels/ops.h, reference in kernels/cpu/sample.cpp, counter-based random numbers); this header
// keeps the host-side pieces tests and tools use directly.
#pragma once

#include <cstdint>

#include "kernels/ops.h"  // SamplerParams

namespace mg {

// uncond + scale * (cond - uncond), elementwise (the references' formula and order; the same
// f32 rounding as sample_tokens' guidance).
void apply_cfg(const float* cond, const float* uncond, float scale, float* out, int64_t n);

// One token from logits[n] with the draw of (seed, step, codebook): exactly what
// Backend::sample_tokens picks for that sequence, step and codebook from these (guided) logits.
int sample_token(const float* logits, int64_t n, const SamplerParams& p, uint64_t seed, int64_t step, int codebook);

}  // namespace mg
