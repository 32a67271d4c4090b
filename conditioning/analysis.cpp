// The music analyser (see analysis.h): chroma, key, tempo and chords of one recording.
#include "conditioning/analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "conditioning/chords.h"
#include "conditioning/chroma.h"

namespace mg {
namespace {

// Analysis chroma: a shorter window than the melody extractor's (0.37 s, not 0.51 s) so chords
// a beat long stay apart, and a 46 ms hop for beat-level slots; no length cap.
ChromaParams analysis_chroma_params() {
  ChromaParams p;
  p.sample_rate = kAnalysisRate;
  p.n_fft = 8192;
  p.hop = 1024;
  p.max_samples = std::numeric_limits<int64_t>::max() / 2;
  return p;
}

constexpr double kSilenceDb = -40.0;     // a slot this far below the loudest is silence
constexpr double kMinLevel = 1e-4;       // absolute RMS below which a slot is silence
constexpr double kMinChordScore = 0.55;  // template correlation below this: no chord ("N")
constexpr double kSlotSeconds = 0.5;     // chord slots when no beat is found

// RMS of the samples within half a hop of each chroma frame's centre (the frame's loudness).
std::vector<float> frame_levels(const std::vector<float>& x, int64_t frames, int hop) {
  std::vector<float> level(size_t(frames), 0.0f);
  const int64_t n = int64_t(x.size());
  for (int64_t t = 0; t < frames; ++t) {
    const int64_t a = std::max<int64_t>(0, t * hop - hop), b = std::min<int64_t>(n, t * hop + hop);
    double s = 0.0;
    for (int64_t i = a; i < b; ++i) s += double(x[size_t(i)]) * x[size_t(i)];
    level[size_t(t)] = b > a ? float(std::sqrt(s / double(b - a))) : 0.0f;
  }
  return level;
}

// The chroma averaged over time, each frame weighted by its level: quiet frames (their
// max-normalised chroma is mostly noise) count little.
std::array<double, 12> mean_chroma(const Tensor& chroma, const std::vector<float>& level) {
  std::array<double, 12> m{};
  for (int64_t t = 0; t < chroma.dim(0); ++t)
    for (int c = 0; c < 12; ++c) m[size_t(c)] += double(level[size_t(t)]) * chroma.f32()[t * 12 + c];
  return m;
}

double pearson12(const std::array<double, 12>& x, const std::array<double, 12>& y) {
  double mx = 0, my = 0;
  for (int i = 0; i < 12; ++i) mx += x[size_t(i)], my += y[size_t(i)];
  mx /= 12, my /= 12;
  double sxy = 0, sxx = 0, syy = 0;
  for (int i = 0; i < 12; ++i) {
    const double a = x[size_t(i)] - mx, b = y[size_t(i)] - my;
    sxy += a * b, sxx += a * a, syy += b * b;
  }
  return sxx > 1e-12 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

// Best major/minor triad for one slot's chroma: label and correlation.
ChordSpan best_triad(const std::array<double, 12>& c) {
  ChordSpan best;
  best.label = "N";
  best.score = -2;
  for (int minor = 0; minor < 2; ++minor)
    for (int root = 0; root < 12; ++root) {
      std::array<double, 12> tpl{};
      tpl[size_t(root)] = tpl[size_t((root + (minor ? 3 : 4)) % 12)] = tpl[size_t((root + 7) % 12)] = 1.0;
      const double r = pearson12(c, tpl);
      if (r > best.score) {
        best.score = r;
        best.label = std::string(pitch_class_name(root)) + (minor ? "m" : "");
      }
    }
  return best;
}

// Slot boundaries: the beats, with 0 and the end added; half-second slots without beats.
std::vector<double> slot_bounds(const TempoEstimate& tempo, double duration) {
  std::vector<double> b{0.0};
  if (tempo.beats.size() >= 2) {
    for (double t : tempo.beats)
      if (t > b.back() + 0.05 && t < duration - 0.05) b.push_back(t);
  } else {
    for (double t = kSlotSeconds; t < duration - 0.05; t += kSlotSeconds) b.push_back(t);
  }
  b.push_back(duration);
  return b;
}

}  // namespace

double key_confidence(const KeyEstimate& k) {
  return std::clamp(k.correlation, 0.0, 1.0) * std::min(1.0, std::max(0.0, k.margin) / 0.1);
}

std::vector<ChordSpan> label_chord_slots(const Tensor& chroma, double frame_rate, const std::vector<float>& level,
                                         const std::vector<double>& bounds) {
  const int64_t frames = chroma.dim(0);
  const float loudest = level.empty() ? 0.0f : *std::max_element(level.begin(), level.end());
  const double floor = std::max(kMinLevel, double(loudest) * std::pow(10.0, kSilenceDb / 20.0));
  std::vector<ChordSpan> slots;
  for (size_t i = 0; i + 1 < bounds.size(); ++i) {
    // Frames whose centre lies in the slot; the nearest frame when the slot is shorter than a hop.
    int64_t a = int64_t(std::ceil(bounds[i] * frame_rate)), b = int64_t(std::ceil(bounds[i + 1] * frame_rate));
    a = std::clamp<int64_t>(a, 0, frames - 1);
    b = std::clamp<int64_t>(b, a + 1, frames);
    std::array<double, 12> c{};
    double lv = 0.0;
    for (int64_t t = a; t < b; ++t) {
      lv += level[size_t(t)];
      for (int k = 0; k < 12; ++k) c[size_t(k)] += double(level[size_t(t)]) * chroma.f32()[t * 12 + k];
    }
    lv /= double(b - a);
    ChordSpan s = lv >= floor ? best_triad(c) : ChordSpan{"N", 0, 0, 0};
    if (s.score < kMinChordScore) s = ChordSpan{"N", 0, 0, 0};
    s.start = bounds[i];
    s.end = bounds[i + 1];
    slots.push_back(s);
  }
  return slots;
}

std::vector<ChordSpan> merge_chords(const std::vector<ChordSpan>& slots) {
  std::vector<ChordSpan> out;
  for (const ChordSpan& s : slots) {
    if (!out.empty() && out.back().label == s.label) {
      // The merged score is the duration-weighted mean.
      const double d0 = out.back().end - out.back().start, d1 = s.end - s.start;
      out.back().score = d0 + d1 > 0 ? (out.back().score * d0 + s.score * d1) / (d0 + d1) : s.score;
      out.back().end = s.end;
    } else {
      out.push_back(s);
    }
  }
  return out;
}

Analysis analyze_mono(const std::vector<float>& mono) {
  for (size_t i = 0; i < mono.size(); ++i)
    MG_CHECK(std::isfinite(mono[i]), "analysis: sample ", i, " is not finite (", mono[i], ")");
  const ChromaParams cp = analysis_chroma_params();
  Analysis a;
  a.duration = double(mono.size()) / kAnalysisRate;
  a.chroma = chroma_features(mono, ChromaDevice::CPU, cp);
  a.chroma_frame_rate = chroma_frame_rate(cp);
  const std::vector<float> level = frame_levels(mono, a.chroma.dim(0), cp.hop);

  const std::array<double, 12> mean = mean_chroma(a.chroma, level);
  a.key = estimate_key(mean);
  a.has_key = a.key.correlation > 0;

  TempoParams tp;
  tp.sample_rate = kAnalysisRate;
  a.tempo = estimate_tempo(mono, tp);
  a.chords = merge_chords(label_chord_slots(a.chroma, a.chroma_frame_rate, level, slot_bounds(a.tempo, a.duration)));
  return a;
}

Analysis analyze_audio(const AudioBuffer& audio) {
  check_audio_buffer(audio, "analysis input");
  const AudioBuffer mono = convert_audio(audio, kAnalysisRate, 1);
  return analyze_mono(mono.channels[0]);
}

Analysis analyze_file(const std::string& path) { return analyze_audio(read_audio(path)); }

std::string analysis_to_json(const Analysis& a, int indent) {
  nlohmann::json j;
  j["duration"] = a.duration;
  j["key"] = a.has_key ? pitch_class_name(a.key.tonic) : "";
  j["mode"] = a.has_key ? (a.key.minor ? "minor" : "major") : "";
  j["key_name"] = a.has_key ? a.key.name() : "";
  j["confidence"] = a.has_key ? key_confidence(a.key) : 0.0;
  j["key_correlation"] = a.key.correlation;
  j["key_margin"] = a.key.margin;
  j["bpm"] = a.tempo.bpm;
  j["tempo_strength"] = a.tempo.strength;
  j["octave_ambiguous"] = a.tempo.octave_ambiguous;
  j["alternative_bpm"] = a.tempo.alternative_bpm;
  j["beats"] = a.tempo.beats;
  nlohmann::json chords = nlohmann::json::array();
  for (const ChordSpan& c : a.chords) chords.push_back({{"label", c.label}, {"start", c.start}, {"end", c.end}});
  j["chords"] = chords;
  return j.dump(indent);
}

}  // namespace mg
