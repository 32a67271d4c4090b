// Key finding for the music analyser: Krumhansl-Schmuckler, i.e. the Pearson correlation of a
// 12-bin pitch-class distribution with the Krumhansl-Kessler major and minor probe-tone profiles
// rotated to each of the 12 tonics (24 candidates). One key for the whole piece: a modulation
// gives the key that covers most of the time, or a neighbour of both.
#pragma once

#include <array>
#include <string>

namespace mg {

struct KeyEstimate {
  int tonic = 0;               // pitch class 0 = C .. 11 = B
  bool minor = false;
  double correlation = 0;      // of the best candidate, -1..1
  double margin = 0;           // best minus second-best correlation
  int second_tonic = 0;        // the runner-up (often the relative or parallel key)
  bool second_minor = false;
  std::string name() const;    // "A minor", "F# major"
};

// Krumhansl-Kessler profiles (1982), index 0 = the tonic.
const std::array<double, 12>& key_profile(bool minor);

// The key of a pitch-class distribution (e.g. time-averaged chroma, C first). A flat or all-zero
// distribution gives correlation 0 and margin 0 (no key).
KeyEstimate estimate_key(const std::array<double, 12>& chroma);

// "C major" -> tonic 0, major; "A minor", "Am", "F#m", "Bb minor", "Eb" also parse. False when the
// text is no key.
bool parse_key_name(const std::string& text, int* tonic, bool* minor);

}  // namespace mg
