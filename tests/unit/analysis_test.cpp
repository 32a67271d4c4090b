// The music analyser on signals with known answers (tests/unit/analysis_synth.h): keys, chords and
// tempi. The accuracies printed here are the ones docs/analysis.md quotes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "codec/audio_file.h"
#include "conditioning/analysis.h"
#include "conditioning/chords.h"
#include "test_util.h"
#include "unit/analysis_synth.h"

namespace {

using mgtest::SynthChord;

// The label sounding at time t.
std::string label_at(const std::vector<mg::ChordSpan>& chords, double t) {
  for (const mg::ChordSpan& c : chords)
    if (t >= c.start && t < c.end) return c.label;
  return "(none)";
}

bool tempo_ok(const mg::TempoEstimate& e, double truth) {
  auto near = [&](double bpm) { return std::fabs(bpm / truth - 1.0) <= 0.02; };
  if (near(e.bpm)) return true;
  // An octave error counts only when it is reported as such.
  return e.octave_ambiguous && near(e.alternative_bpm);
}

TEST(KeyProfiles, ProfilesThemselvesGiveTheirKeys) {
  for (int minor = 0; minor < 2; ++minor)
    for (int tonic = 0; tonic < 12; ++tonic) {
      std::array<double, 12> c{};
      for (int i = 0; i < 12; ++i) c[size_t((i + tonic) % 12)] = mg::key_profile(minor)[size_t(i)];
      const mg::KeyEstimate k = mg::estimate_key(c);
      EXPECT_EQ(k.tonic, tonic);
      EXPECT_EQ(k.minor, bool(minor));
      EXPECT_NEAR(k.correlation, 1.0, 1e-9);
      EXPECT_GT(k.margin, 0.0);
    }
}

TEST(KeyProfiles, FlatChromaHasNoKey) {
  std::array<double, 12> c{};
  EXPECT_EQ(mg::estimate_key(c).correlation, 0.0);
  c.fill(1.0);
  EXPECT_EQ(mg::estimate_key(c).correlation, 0.0);
}

TEST(KeyProfiles, ParsesKeyNames) {
  int t = -1;
  bool m = false;
  ASSERT_TRUE(mg::parse_key_name("A minor", &t, &m));
  EXPECT_EQ(t, 9);
  EXPECT_TRUE(m);
  ASSERT_TRUE(mg::parse_key_name("Bb", &t, &m));
  EXPECT_EQ(t, 10);
  EXPECT_FALSE(m);
  ASSERT_TRUE(mg::parse_key_name("F#m", &t, &m));
  EXPECT_EQ(t, 6);
  EXPECT_TRUE(m);
  EXPECT_FALSE(mg::parse_key_name("H major", &t, &m));
  EXPECT_FALSE(mg::parse_key_name("C dorian", &t, &m));
}

TEST(Analysis, KeysOfSyntheticCadences) {
  int right = 0, total = 0;
  for (int minor = 0; minor < 2; ++minor)
    for (int tonic = 0; tonic < 12; ++tonic) {
      const double bpm = 70 + 7.5 * tonic;
      const mg::Analysis a = mg::analyze_mono(mgtest::render_key(tonic, minor, bpm));
      const bool ok = a.has_key && a.key.tonic == tonic && a.key.minor == bool(minor);
      right += ok;
      ++total;
      if (!ok) std::printf("key miss: %s %s -> %s\n", mg::pitch_class_name(tonic), minor ? "minor" : "major",
                           a.key.name().c_str());
    }
  std::printf("key accuracy: %d / %d\n", right, total);
  EXPECT_GE(right, int(std::ceil(0.9 * total)));
}

TEST(Analysis, ChordsOnSyntheticBeats) {
  const std::vector<std::vector<SynthChord>> progs = {
      {{0, false}, {9, true}, {5, false}, {7, false}},
      {{2, true}, {7, false}, {0, false}, {4, true}},
      {{10, false}, {3, false}, {8, false}, {1, false}},
      {{6, true}, {11, true}, {4, false}, {9, false}},
  };
  int right = 0, total = 0;
  const double tempi[4] = {72, 100, 126, 150};
  for (size_t i = 0; i < progs.size(); ++i) {
    const double bpm = tempi[i], beat = 60.0 / bpm;
    const mg::Analysis a = mg::analyze_mono(mgtest::render_chords(progs[i], bpm, 4));
    for (size_t c = 0; c < progs[i].size(); ++c)
      for (int b = 0; b < 4; ++b) {
        const std::string got = label_at(a.chords, (double(c * 4 + b) + 0.5) * beat);
        right += got == progs[i][c].label();
        ++total;
        if (got != progs[i][c].label())
          std::printf("chord miss at %.0f bpm, chord %zu beat %d: %s -> %s\n", bpm, c, b, progs[i][c].label().c_str(),
                      got.c_str());
      }
  }
  std::printf("chord accuracy: %d / %d beats\n", right, total);
  EXPECT_GE(right, int(std::ceil(0.85 * total)));
}

TEST(Analysis, TempoOfKickTracks) {
  int right = 0, total = 0;
  for (double bpm = 70; bpm <= 160; bpm += 10) {
    std::vector<float> x(size_t(12.0 * mgtest::kSynthRate), 0.0f);
    uint32_t rng = 7;
    for (double t = 0.1; t < 11.5; t += 60.0 / bpm) mgtest::add_kick(x, t, 0.8, rng);
    const mg::TempoEstimate e = mg::estimate_tempo(x);
    const bool ok = tempo_ok(e, bpm);
    right += ok;
    ++total;
    std::printf("tempo %.0f -> %.2f%s\n", bpm, e.bpm, e.octave_ambiguous ? " (octave ambiguous)" : "");
    EXPECT_TRUE(ok) << bpm << " bpm read as " << e.bpm;
    if (!ok) continue;
    // The beat grid lands on the kicks (within a hop or two).
    ASSERT_FALSE(e.beats.empty());
    const double period = 60.0 / bpm;
    const double phase = std::fmod(e.beats[0] - 0.1 + 10 * period, period);
    EXPECT_LT(std::min(phase, period - phase), 0.03) << bpm;
  }
  std::printf("tempo accuracy: %d / %d\n", right, total);
}

TEST(Analysis, TempoOfChordTracks) {
  for (double bpm : {75.0, 96.0, 118.0, 144.0}) {
    const mg::Analysis a = mg::analyze_mono(mgtest::render_key(4, false, bpm));
    EXPECT_TRUE(tempo_ok(a.tempo, bpm)) << bpm << " bpm read as " << a.tempo.bpm;
  }
}

TEST(Analysis, SilenceHasNoChordsNoTempoNoKey) {
  const mg::Analysis a = mg::analyze_mono(std::vector<float>(size_t(3 * mgtest::kSynthRate), 0.0f));
  EXPECT_FALSE(a.has_key);
  EXPECT_EQ(a.tempo.bpm, 0.0);
  ASSERT_EQ(a.chords.size(), 1u);
  EXPECT_EQ(a.chords[0].label, "N");
}

TEST(Analysis, NoiseHasNoChords) {
  std::vector<float> x(size_t(6 * mgtest::kSynthRate));
  uint32_t rng = 99;
  for (float& v : x) {
    rng = rng * 1664525u + 1013904223u;
    v = float((double(rng >> 8) / double(1u << 24)) * 2 - 1) * 0.3f;
  }
  const mg::Analysis a = mg::analyze_mono(x);
  double chord_time = 0;
  for (const mg::ChordSpan& c : a.chords)
    if (c.label != "N") chord_time += c.end - c.start;
  EXPECT_LT(chord_time, 0.2 * a.duration);
}

TEST(Analysis, AnyRateAndChannels) {
  std::vector<float> x = mgtest::render_chords({{7, false}, {2, false}}, 110, 4);
  mg::AudioBuffer b;
  b.sample_rate = mgtest::kSynthRate;
  b.channels = {x, x};
  const mg::Analysis a = mg::analyze_audio(b);
  EXPECT_NEAR(a.duration, double(x.size()) / mgtest::kSynthRate, 1e-3);
  EXPECT_EQ(label_at(a.chords, 0.5), "G");
  EXPECT_EQ(label_at(a.chords, 4 * 60.0 / 110 + 0.5), "D");
}

TEST(Analysis, RejectsNonFiniteSamples) {
  std::vector<float> x(1000, 0.0f);
  x[10] = std::nanf("");
  EXPECT_NE(mgtest::error_of([&] { mg::analyze_mono(x); }).find("analysis: sample 10"), std::string::npos);
}

TEST(Analysis, MergesRepeatedLabels) {
  std::vector<mg::ChordSpan> s = {{"C", 0, 1, 1}, {"C", 1, 2, 0.5}, {"N", 2, 3, 0}, {"G", 3, 4, 1}};
  const std::vector<mg::ChordSpan> m = mg::merge_chords(s);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].end, 2);
  EXPECT_DOUBLE_EQ(m[0].score, 0.75);
}

TEST(Analysis, JsonHoldsTheFields) {
  const mg::Analysis a = mg::analyze_mono(mgtest::render_key(9, true, 100));
  const nlohmann::json j = nlohmann::json::parse(mg::analysis_to_json(a));
  for (const char* f : {"key", "mode", "confidence", "bpm", "octave_ambiguous", "chords", "beats", "duration"})
    EXPECT_TRUE(j.contains(f)) << f;
  EXPECT_EQ(j["key"], "A");
  EXPECT_EQ(j["mode"], "minor");
  ASSERT_FALSE(j["chords"].empty());
  EXPECT_TRUE(j["chords"][0].contains("label"));
}

}  // namespace
