// The music analyser: what key, chords and tempo a recording has, to measure what a generation
// produced (musicgen-cli analyze / --report, musicgen_analyze_* in the C API). docs/analysis.md
// describes each part and how well it does.
//
//  * Audio of any rate and channel count -> 22.05 kHz mono (convert_audio, as the codec does).
//  * Chroma: the melody extractor's STFT + chroma filter bank (Backend::chroma) with analysis
//    parameters (n_fft 8192, hop 1024: 21.5 frames per second), each frame max-normalised.
//  * Key: Krumhansl-Schmuckler on the chroma averaged over time, frames weighted by their level
//    (key_profiles.h).
//  * Tempo and beats: onset-strength autocorrelation with a 120 bpm prior (tempo.h).
//  * Chords: the chroma averaged between beats (half-second slots when there is no beat),
//    correlated with major and minor triad templates; "N" where the slot is silent or has no
//    pitch content (noise, drums); repeated labels merged.
#pragma once

#include <string>
#include <vector>

#include "conditioning/key_profiles.h"
#include "conditioning/tempo.h"
#include "kernels/tensor.h"

namespace mg {

struct AudioBuffer;

constexpr int kAnalysisRate = 22050;

struct ChordSpan {
  std::string label;  // "C", "F#m", "N"
  double start = 0, end = 0;  // seconds
  double score = 0;   // the template correlation (0 for "N")
};

struct Analysis {
  double duration = 0;        // seconds
  KeyEstimate key;
  bool has_key = false;       // false for silence / unpitched audio (key fields then mean nothing)
  TempoEstimate tempo;
  std::vector<ChordSpan> chords;
  Tensor chroma;              // f32 [frames, 12], the analysis chroma
  double chroma_frame_rate = 0;
};

// A 22.05 kHz mono signal. Throws mg::Error for non-finite samples.
Analysis analyze_mono(const std::vector<float>& mono);
// Any audio (any rate, channels): converted, then analyze_mono.
Analysis analyze_audio(const AudioBuffer& audio);
Analysis analyze_file(const std::string& path);

// The beat-synchronous chord labels before merging, one per slot [bounds[i], bounds[i+1]).
std::vector<ChordSpan> label_chord_slots(const Tensor& chroma, double frame_rate, const std::vector<float>& frame_level,
                                         const std::vector<double>& bounds);
// Adjacent equal labels joined.
std::vector<ChordSpan> merge_chords(const std::vector<ChordSpan>& slots);

// {"duration", "key", "mode", "key_name", "confidence", "key_correlation", "key_margin", "bpm",
//  "tempo_strength", "octave_ambiguous", "alternative_bpm", "beats", "chords": [{label,start,end}]}
std::string analysis_to_json(const Analysis& a, int indent = 2);

// The confidence reported for the key: the best correlation scaled by how far it leads the runner-up
// (margin / 0.1, capped at 1), in 0..1.
double key_confidence(const KeyEstimate& k);

}  // namespace mg
