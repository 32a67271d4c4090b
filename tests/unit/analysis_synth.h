// Test signals with known answers for the music analyser: chords as sums of decaying harmonic
// partials, scale melodies, and kick/click tracks, all at 22.05 kHz mono. Deterministic.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace mgtest {

constexpr int kSynthRate = 22050;

inline double midi_hz(int midi) { return 440.0 * std::pow(2.0, (midi - 69) / 12.0); }

// A tone of 6 partials (amplitudes 1/k), 10 ms attack, exponential decay, 20 ms release at the end.
inline void add_tone(std::vector<float>& x, double hz, double start, double dur, double amp, double decay_s = 0.6) {
  const int64_t a = int64_t(start * kSynthRate), n = int64_t(dur * kSynthRate);
  for (int64_t i = 0; i < n && a + i < int64_t(x.size()); ++i) {
    const double t = double(i) / kSynthRate;
    double env = std::min(1.0, t / 0.01) * std::exp(-t / decay_s) * std::min(1.0, (dur - t) / 0.02);
    double s = 0.0;
    for (int k = 1; k <= 6; ++k)
      if (hz * k < kSynthRate / 2) s += std::sin(2 * M_PI * hz * k * t) / k;
    x[size_t(a + i)] += float(amp * env * s);
  }
}

// A kick (pitch sweep 150 -> 50 Hz, 120 ms decay) with a short noisy click on top.
inline void add_kick(std::vector<float>& x, double start, double amp, uint32_t& rng) {
  const int64_t a = int64_t(start * kSynthRate), n = int64_t(0.3 * kSynthRate);
  double phase = 0.0;
  for (int64_t i = 0; i < n && a + i < int64_t(x.size()); ++i) {
    const double t = double(i) / kSynthRate;
    phase += 2 * M_PI * (50.0 + 100.0 * std::exp(-t / 0.03)) / kSynthRate;
    rng = rng * 1664525u + 1013904223u;
    const double noise = (double(rng >> 8) / double(1u << 24)) * 2 - 1;
    x[size_t(a + i)] += float(amp * (std::sin(phase) * std::exp(-t / 0.12) + 0.5 * noise * std::exp(-t / 0.005)));
  }
}

struct SynthChord {
  int root;    // pitch class
  bool minor;
  std::string label() const {
    static const char* kNames[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};
    return std::string(kNames[root]) + (minor ? "m" : "");
  }
};

// Chords, `beats_per_chord` beats each, struck on every beat (a decaying triad in the octave
// above C3 plus the root in the bass on the chord's first beat), with a kick on every beat.
inline std::vector<float> render_chords(const std::vector<SynthChord>& chords, double bpm, int beats_per_chord,
                                        bool kick = true) {
  const double beat = 60.0 / bpm;
  const double total = beat * beats_per_chord * chords.size() + 0.5;
  std::vector<float> x(size_t(total * kSynthRate), 0.0f);
  uint32_t rng = 1234;
  for (size_t c = 0; c < chords.size(); ++c)
    for (int b = 0; b < beats_per_chord; ++b) {
      const double t = (c * beats_per_chord + b) * beat;
      const int root = 48 + chords[c].root;
      for (int iv : {0, chords[c].minor ? 3 : 4, 7}) add_tone(x, midi_hz(root + iv), t, beat, 0.15);
      if (b == 0) add_tone(x, midi_hz(36 + chords[c].root), t, beat * beats_per_chord, 0.2, 1.5);
      if (kick) add_kick(x, t, 0.4, rng);
    }
  return x;
}

// A cadence in a key (I IV V I or i iv V i, V major as in harmonic minor) under a scale melody,
// one note a beat: the kind of clear tonal music the key finder should get right.
inline std::vector<float> render_key(int tonic, bool minor, double bpm) {
  const std::vector<SynthChord> prog = {{tonic, minor}, {(tonic + 5) % 12, minor}, {(tonic + 7) % 12, false},
                                        {tonic, minor}};
  std::vector<float> x = render_chords(prog, bpm, 4);
  static const int kMajor[8] = {0, 2, 4, 5, 7, 9, 11, 12}, kMinor[8] = {0, 2, 3, 5, 7, 8, 11, 12};
  const double beat = 60.0 / bpm;
  for (int i = 0; i < 16; ++i) {
    const int step = i < 8 ? i : 15 - i;
    add_tone(x, midi_hz(60 + tonic + (minor ? kMinor : kMajor)[step]), i * beat, beat, 0.12, 0.4);
  }
  return x;
}

}  // namespace mgtest
