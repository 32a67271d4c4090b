// Tempo and beats for the music analyser (conditioning/analysis.h): an onset-strength envelope
// (spectral flux of a log-magnitude spectrogram), its autocorrelation weighted by a log-Gaussian
// tempo prior around 120 bpm, a comb refinement of the period, and a beat grid at the best phase.
// Constant tempo only: music that speeds up gets its average tempo and a drifting grid.
#pragma once

#include <vector>

namespace mg {

struct TempoParams {
  int sample_rate = 22050;  // of the mono input
  int n_fft = 2048;         // onset spectrogram window
  int hop = 256;            // onset frames: 86 per second at 22.05 kHz
  double min_bpm = 40, max_bpm = 240;
  double prior_bpm = 120;       // centre of the log-Gaussian prior
  double prior_octaves = 1.0;   // its standard deviation, in octaves
  double ambiguity_ratio = 0.8; // half/double within this fraction of the best (prior included)
};

struct TempoEstimate {
  double bpm = 0;               // 0 when the signal has no onsets (silence, a steady tone)
  double strength = 0;          // normalised autocorrelation at the beat period, 0..1
  bool octave_ambiguous = false;
  double alternative_bpm = 0;   // the half or double that came close (0 when none)
  std::vector<double> beats;    // beat times in seconds (empty when bpm is 0)
};

// Onset strength per frame (frame i at i * hop / sample_rate seconds): half-wave rectified
// spectral flux of log(1 + 1000 |X|), minus its local mean.
std::vector<float> onset_strength(const std::vector<float>& mono, const TempoParams& p = {});

// Tempo and beats of `mono` (at p.sample_rate). Deterministic.
TempoEstimate estimate_tempo(const std::vector<float>& mono, const TempoParams& p = {});

// The tempo prior: exp(-0.5 (log2(bpm / prior_bpm) / prior_octaves)^2).
double tempo_prior(double bpm, const TempoParams& p = {});

}  // namespace mg
