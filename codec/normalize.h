// Output normalisation as audiocraft's audio_write/normalize_audio, so that decoder peaks above
// 1.0 never clip silently. Strategies: peak (default, to -1 dBFS), loudness (to -14 LUFS, BS.1770-4
// through libebur128), clip (hard clamp at -1 dBFS), none (values left as they are; the writer
// clips integer formats).
#pragma once

#include <string>

#include "kernels/tensor.h"

namespace mg {

enum class NormalizeStrategy { Peak, Loudness, Clip, None };

// "peak" | "loudness" | "clip" | "none"; anything else is an error listing these.
NormalizeStrategy parse_normalize_strategy(const std::string& s);

struct NormalizeParams {
  NormalizeStrategy strategy = NormalizeStrategy::Peak;
  double peak_headroom_db = 1.0;      // peak and clip: target max |x| = 10^(-headroom/20)
  double loudness_headroom_db = 14.0; // loudness: target -headroom LUFS
  bool loudness_compressor = false;   // loudness: tanh after the gain
};

// audio[C, T] (host f32) normalised in place; sample_rate is needed for loudness.
// Differences from audiocraft (documented): silence is left untouched under peak (audiocraft
// divides by zero), and loudness is measured by libebur128, not torchaudio.
void normalize_audio(Tensor& audio, int sample_rate, const NormalizeParams& p);

}  // namespace mg
