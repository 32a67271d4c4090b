// Classifier-free guidance on host arrays. Generation guides and samples on the device
// (Backend::sample_tokens; CPU reference in kernels/cpu/sample.cpp), so nothing in the library
// calls this: the teacher-forcing parity tests use it to guide decoder logits exactly as
// sample_tokens does before comparing them with the references' guided logits.
#pragma once

#include <cstdint>

#include "kernels/cpu/sample.h"  // cfg_value

namespace mg {

// out = uncond + (cond - uncond) * scale, elementwise, each operation rounded to f32 (cfg_value).
inline void apply_cfg(const float* cond, const float* uncond, float scale, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = cfg_value(cond[i], uncond[i], scale);
}

}  // namespace mg
