// The composer's three scales (composer.h): skeleton and interval filling in one left-to-right
// search (each gap between strong beats chooses its next skeleton note together with the notes
// that lead to it, so the interval rules can see every interval), then the ornaments.
#include "conditioning/composer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mg {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// splitmix64: tiny, fast and the same on every platform and standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  size_t below(size_t n) { return size_t(next() % n); }

 private:
  uint64_t s_;
};

int pc_of(int pitch) { return ((pitch % 12) + 12) % 12; }
bool has_pc(const std::vector<int>& pcs, int pitch) { return std::find(pcs.begin(), pcs.end(), pc_of(pitch)) != pcs.end(); }
int sign(int v) { return (v > 0) - (v < 0); }
bool is_step(int iv) { return std::abs(iv) >= 1 && std::abs(iv) <= 2; }
bool is_leap(int iv) { return std::abs(iv) > 5; }  // larger than a fourth

// What an interval costs the line: steps are free, thirds cheap, a tritone or a seventh dear, and
// nothing beyond an octave.
double interval_cost(int iv) {
  static const double kCost[13] = {1.2, 0, 0, 0.5, 0.6, 0.9, 3, 1.0, 1.6, 1.6, 3.5, 3.5, 2.2};
  return std::abs(iv) > 12 ? kInf : kCost[std::abs(iv)];
}

// The rhythms a gap between strong beats may take (durations in beats; the first note is the
// skeleton note itself).
std::vector<std::vector<double>> rhythms(double gap) {
  if (std::fabs(gap - 1.5) < 1e-9) return {{1.5}, {1, 0.5}, {0.5, 0.5, 0.5}, {0.5, 1}};
  if (std::fabs(gap - 2) < 1e-9)
    return {{2}, {1, 1}, {1, 0.5, 0.5}, {0.5, 0.5, 1}, {1.5, 0.5}, {0.5, 0.5, 0.5, 0.5}};
  if (std::fabs(gap - 3) < 1e-9) return {{2, 1}, {1, 1, 1}, {1, 0.5, 0.5, 1}, {1, 1, 0.5, 0.5}, {1.5, 0.5, 1}};
  return {{gap}, {gap / 2, gap / 2}};
}

class Composer {
 public:
  Composer(const CompositionSpec& spec, uint64_t seed) : spec_(spec), rng_(seed) {
    for (int b = 0; b < spec.bars; ++b) {
      chords_.push_back(spec.chord_at_bar(b));
      scales_.push_back(chord_scale(spec.key, chords_.back()));
    }
    // The tonic between F#3 and F4, the melody from a fourth below it to a ninth above.
    tonic_midi_ = 60 + spec.key.tonic - (spec.key.tonic > 5 ? 12 : 0);
    low_ = tonic_midi_ - 5;
    high_ = tonic_midi_ + 14;
  }

  Composition run() {
    Composition out;
    out.spec = spec_;
    out.notes = line();
    ornament(out.notes);
    for (ComposedNote& n : out.notes)
      if (!spec_.key.in_scale(pc_of(n.pitch))) n.flags |= kNoteChromatic;
    return out;
  }

 private:
  int bar_of(double beat) const { return std::min(spec_.bars - 1, int(std::floor(beat / spec_.bar_beats() + 1e-9))); }
  const Chord& chord_at(double beat) const { return chords_[size_t(bar_of(beat))]; }
  const std::vector<int>& scale_at(double beat) const { return scales_[size_t(bar_of(beat))]; }
  bool chord_tone(double beat, int pitch) const { return has_pc(chord_at(beat).tones, pitch); }

  // The arch the skeleton leans towards: up to a fifth above the tonic two thirds of the way in.
  double target(double beat) const {
    const double x = beat / std::max(1.0, spec_.bars * spec_.bar_beats());
    const double arch = x < 0.66 ? std::sin(x / 0.66 * M_PI / 2) : std::cos((x - 0.66) / 0.34 * M_PI / 2);
    return tonic_midi_ + 1 + 6 * arch;
  }

  std::vector<int> chord_pitches(double beat) const {
    std::vector<int> out;
    for (int p = low_; p <= high_; ++p)
      if (chord_tone(beat, p)) out.push_back(p);
    return out;
  }

  // The pitch of class `pc` nearest to `near`, inside the range.
  int nearest(int pc, double near) const {
    int best = low_;
    for (int p = low_; p <= high_; ++p)
      if (pc_of(p) == pc && std::fabs(p - near) < std::fabs(best - near)) best = p;
    return best;
  }

  // The line's cost (interval sizes, the leap rule) and whether every inner note is a chord tone,
  // a passing tone or a neighbour tone. seq = A, inner notes, B; prev_iv: the interval into A.
  double line_cost(const std::vector<int>& seq, int prev_iv, double inner_beat) const {
    double cost = 0;
    int piv = prev_iv;
    for (size_t j = 1; j < seq.size(); ++j) {
      const int iv = seq[j] - seq[j - 1];
      cost += interval_cost(iv);
      if (is_leap(piv) && !(is_step(iv) && sign(iv) == -sign(piv))) cost += 12;  // a leap wants a step back
      piv = iv;
    }
    for (size_t j = 1; j + 1 < seq.size(); ++j) {
      const int p = seq[j - 1], x = seq[j], n = seq[j + 1];
      if (chord_tone(inner_beat, x)) continue;
      const bool passing = is_step(x - p) && is_step(n - x) && sign(x - p) == sign(n - x);
      const bool neighbour = p == n && is_step(x - p);
      if (!passing && !neighbour) return kInf;
    }
    return cost;
  }

  // Every inner-note sequence of length k after A: each note a chord tone of the bar or a step
  // from the note before (passing and neighbour tones must be approached by step).
  void enumerate(std::vector<int>& seq, size_t k, double beat, const std::vector<int>& scale,
                 std::vector<std::vector<int>>& out) const {
    if (k == 0) {
      out.push_back(seq);
      return;
    }
    const int prev = seq.back();
    for (int x = std::max(low_ - 2, prev - 12); x <= std::min(high_ + 2, prev + 12); ++x) {
      if (!has_pc(scale, x) || x == prev) continue;
      if (!chord_tone(beat, x) && !is_step(x - prev)) continue;
      seq.push_back(x);
      enumerate(seq, k - 1, beat, scale, out);
      seq.pop_back();
    }
  }

  struct Choice {
    double cost = kInf;
    std::vector<double> rhythm;
    std::vector<int> seq;  // A, inner, B
  };

  // One gap: from skeleton note A at `beat` to the next strong beat, `gap` beats later.
  Choice fill_gap(int a, int prev_iv, double beat, double gap, bool final) {
    const double next = beat + gap;
    std::vector<int> bs = final ? std::vector<int>{nearest(spec_.key.tonic, target(next))} : chord_pitches(next);
    Choice best;
    for (const std::vector<double>& rhythm : rhythms(gap)) {
      const double rhythm_cost = (rhythm.size() == 1 ? 0.6 : rhythm.size() == 4 ? 0.3 : 0.0) + rng_.uniform();
      std::vector<std::vector<int>> inner;
      std::vector<int> seq = {a};
      enumerate(seq, rhythm.size() - 1, beat, scale_at(beat), inner);
      for (int b : bs) {
        const double contour = 0.25 * std::fabs(b - target(next));
        for (std::vector<int>& s : inner) {
          s.push_back(b);
          double cost = line_cost(s, prev_iv, beat);
          if (final && !is_step(b - s[s.size() - 2])) cost += 3;  // the cadence: onto the tonic by step
          cost += rhythm_cost + contour + 1.5 * rng_.uniform();
          if (cost < best.cost) best = {cost, rhythm, s};
          s.pop_back();
        }
      }
    }
    return best;
  }

  uint32_t inner_flags(int p, int x, int n, double beat) const {
    if (chord_tone(beat, x)) return kNoteChordTone;
    return p == n ? kNoteNeighbour : kNotePassing;
  }

  // Scales 1 and 2: the skeleton notes on the strong beats and the notes between them.
  std::vector<ComposedNote> line() {
    std::vector<double> strong;
    const double bb = spec_.bar_beats(), step = spec_.strong_spacing();
    for (int b = 0; b < spec_.bars; ++b)
      for (double s = 0; s < bb - 1e-9; s += step) strong.push_back(b * bb + s);
    std::vector<ComposedNote> notes;
    int a;
    if (strong.size() == 1) {
      a = nearest(spec_.key.tonic, tonic_midi_);
    } else {  // open on one of the chord tones nearest the start of the arch
      std::vector<int> first = chord_pitches(0);
      std::sort(first.begin(), first.end(), [&](int x, int y) { return std::fabs(x - target(0)) < std::fabs(y - target(0)); });
      a = first[rng_.below(std::min<size_t>(3, first.size()))];
    }
    int prev_iv = 0;
    for (size_t i = 0; i + 1 < strong.size(); ++i) {
      const Choice c = fill_gap(a, prev_iv, strong[i], strong[i + 1] - strong[i], i + 2 == strong.size());
      double t = strong[i];
      for (size_t j = 0; j < c.rhythm.size(); ++j) {
        const uint32_t flags = j == 0 ? kNoteChordTone : inner_flags(c.seq[j - 1], c.seq[j], c.seq[j + 1], strong[i]);
        notes.push_back({c.seq[j], t, c.rhythm[j], flags});
        t += c.rhythm[j];
      }
      prev_iv = c.seq.back() - c.seq[c.seq.size() - 2];
      a = c.seq.back();
    }
    notes.push_back({a, strong.back(), spec_.bars * bb - strong.back(), kNoteChordTone});
    return notes;
  }

  // The diatonic neighbours of `pitch` in the scale sounding at `beat`.
  int upper(int pitch, double beat) const {
    int p = pitch + 1;
    while (!has_pc(scale_at(beat), p)) ++p;
    return p;
  }
  int lower(int pitch, double beat) const {
    int p = pitch - 1;
    while (!has_pc(scale_at(beat), p)) --p;
    return p;
  }
  // The lower neighbour of a turn or a grace note: half the time a semitone (the chromatic lower
  // neighbour of classical practice) where the diatonic one is a whole step away.
  int lower_ornament(int pitch, double beat) {
    const int d = lower(pitch, beat);
    return d == pitch - 2 && rng_.uniform() < 0.5 ? pitch - 1 : d;
  }

  enum Kind { kGrace, kTrill, kTurn, kSuspension };

  // Scale 3: each note that can carry an ornament gets one with probability spec.ornaments. Notes
  // reached by a leap are left plain (their step back must stay the next interval).
  void ornament(std::vector<ComposedNote>& notes) {
    if (spec_.ornaments <= 0) return;
    const std::vector<ComposedNote> in = notes;
    std::vector<ComposedNote> out;
    const double bb = spec_.bar_beats();
    for (size_t i = 0; i < in.size(); ++i) {
      ComposedNote n = in[i];
      const bool last = i + 1 == in.size();
      const bool leapt = i > 0 && is_leap(n.pitch - in[i - 1].pitch);
      std::vector<Kind> kinds;
      ComposedNote* prev = out.empty() ? nullptr : &out.back();
      const bool plain_prev = prev && !(prev->flags & kNoteOrnament) && prev->pitch == in[i - 1].pitch;
      if (plain_prev && spec_.is_strong_beat(n.start) && prev->duration >= 0.5) kinds.push_back(kGrace);
      if (!last && !leapt && n.duration >= 1) {
        kinds.push_back(kTrill);
        kinds.push_back(kTurn);
      }
      if (plain_prev && i >= 2 && n.start > 0 && std::fabs(std::fmod(n.start, bb)) < 1e-9 && n.duration >= 1 &&
          is_step(prev->pitch - n.pitch) && prev->pitch > n.pitch && !is_leap(in[i - 1].pitch - in[i - 2].pitch) &&
          has_pc(scale_at(n.start), prev->pitch))
        kinds.push_back(kSuspension);
      if (kinds.empty() || !(rng_.uniform() < spec_.ornaments)) {
        out.push_back(n);
        continue;
      }
      switch (kinds[rng_.below(kinds.size())]) {
        case kGrace: {  // from the side the line comes from, so it still turns back by step
          const int approach = n.pitch - prev->pitch;
          const int g = approach < 0 ? lower_ornament(n.pitch, n.start) : upper(n.pitch, n.start);
          if (std::abs(g - prev->pitch) > 12) break;
          prev->duration -= 0.125;
          out.push_back({g, n.start - 0.125, 0.125, kNoteOrnament});
          break;
        }
        case kTrill: {  // the main note, then main-upper alternation in sixteenths, ending on the main note
          const int up = upper(n.pitch, n.start);
          const int pieces = 2 * int(std::floor(n.duration / 2 / 0.5 + 1e-9));
          if (pieces == 0) break;
          const double main = n.duration - pieces * 0.25;
          out.push_back({n.pitch, n.start, main, n.flags});
          for (int k = 0; k < pieces; ++k)
            out.push_back({k % 2 == 0 ? up : n.pitch, n.start + main + k * 0.25, 0.25,
                           kNoteOrnament | (k % 2 == 0 ? kNoteNeighbour : 0u)});
          continue;
        }
        case kTurn: {  // main, upper, main, lower, main (thirty-seconds)
          const int up = upper(n.pitch, n.start), down = lower_ornament(n.pitch, n.start);
          const double main = n.duration - 0.5;
          out.push_back({n.pitch, n.start, main, n.flags});
          const int turn[4] = {up, n.pitch, down, n.pitch};
          for (int k = 0; k < 4; ++k)
            out.push_back({turn[k], n.start + main + k * 0.125, 0.125,
                           kNoteOrnament | (turn[k] != n.pitch ? kNoteNeighbour : 0u)});
          continue;
        }
        case kSuspension: {  // the previous note held over the bar line, resolving down by step
          const double half = n.duration / 2;
          prev->duration += half;
          prev->flags |= kNoteOrnament | kNoteSuspension;
          n.start += half;
          n.duration -= half;
          break;
        }
      }
      out.push_back(n);
    }
    notes = out;
  }

  const CompositionSpec& spec_;
  Rng rng_;
  std::vector<Chord> chords_;
  std::vector<std::vector<int>> scales_;
  int tonic_midi_ = 60, low_ = 55, high_ = 74;
};

}  // namespace

Composition compose(const CompositionSpec& spec, uint64_t seed) {
  MG_CHECK(!spec.progression.empty() && spec.bars >= 1, "compose: no progression or no bars");
  return Composer(spec, seed).run();
}

Composition compose(const std::string& description, uint64_t seed) { return compose(parse_composition(description), seed); }

}  // namespace mg
