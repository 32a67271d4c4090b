#include "codec/normalize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ebur128.h>

namespace mg {

NormalizeStrategy parse_normalize_strategy(const std::string& s) {
  if (s == "peak") return NormalizeStrategy::Peak;
  if (s == "loudness") return NormalizeStrategy::Loudness;
  if (s == "clip") return NormalizeStrategy::Clip;
  if (s == "none") return NormalizeStrategy::None;
  throw Error(strcat("unknown normalisation '", s, "' (expected peak, loudness, clip or none)"));
}

namespace {

double integrated_loudness(const Tensor& audio, int sample_rate) {
  const int64_t C = audio.dim(0), T = audio.dim(1);
  ebur128_state* st = ebur128_init(unsigned(C), unsigned(sample_rate), EBUR128_MODE_I);
  MG_CHECK(st != nullptr, "libebur128 could not start (", C, " channels at ", sample_rate, " Hz)");
  std::vector<float> frames(size_t(C * T));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) frames[t * C + c] = audio.f32()[c * T + t];
  double lufs = -HUGE_VAL;
  const int rc = ebur128_add_frames_float(st, frames.data(), size_t(T));
  if (rc == EBUR128_SUCCESS) ebur128_loudness_global(st, &lufs);
  ebur128_destroy(&st);
  MG_CHECK(rc == EBUR128_SUCCESS, "libebur128 failed to measure loudness (error ", rc, ")");
  return lufs;
}

}  // namespace

void normalize_audio(Tensor& audio, int sample_rate, const NormalizeParams& p) {
  MG_CHECK(audio.ndim() == 2 && audio.dtype == DType::F32 && audio.device == Device::CPU,
           "normalize_audio: expected host f32 [channels, samples], got ", shape_str(audio.shape));
  float* x = audio.f32();
  const int64_t n = audio.numel();
  const float limit = float(std::pow(10.0, -p.peak_headroom_db / 20.0));
  switch (p.strategy) {
    case NormalizeStrategy::None:
      return;
    case NormalizeStrategy::Clip:
      for (int64_t i = 0; i < n; ++i) x[i] = std::clamp(x[i], -limit, limit);
      return;
    case NormalizeStrategy::Peak: {
      float mx = 0;
      for (int64_t i = 0; i < n; ++i) mx = std::max(mx, std::fabs(x[i]));
      if (mx == 0) return;  // silence stays silence
      const float g = limit / mx;
      for (int64_t i = 0; i < n; ++i) x[i] *= g;
      return;
    }
    case NormalizeStrategy::Loudness: {
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
      if (n == 0 || std::sqrt(ss / double(n)) < 2e-3) return;  // too quiet to measure, as audiocraft
      const double lufs = integrated_loudness(audio, sample_rate);
      if (!std::isfinite(lufs)) return;
      const float g = float(std::pow(10.0, (-p.loudness_headroom_db - lufs) / 20.0));
      for (int64_t i = 0; i < n; ++i) {
        float y = x[i] * g;
        if (p.loudness_compressor) y = std::tanh(y);
        x[i] = std::clamp(y, -1.0f, 1.0f);
      }
      return;
    }
  }
}

}  // namespace mg
