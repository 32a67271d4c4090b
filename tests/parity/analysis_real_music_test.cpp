// The music analyser on the real music of the test audio folder (tests/README.md): it runs on
// every file with finite, sane results, and where the truth is known it is compared.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "conditioning/analysis.h"
#include "test_util.h"

namespace {

bool tempo_ok(const mg::TempoEstimate& e, double truth) {
  auto near = [&](double bpm) { return std::fabs(bpm / truth - 1.0) <= 0.02; };
  return near(e.bpm) || (e.octave_ambiguous && near(e.alternative_bpm));
}

TEST(AnalysisRealMusic, EveryFileGivesSaneResults) {
  const std::string dir = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(dir);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".wav" && ext != ".mp3") continue;
    ++files;
    const mg::Analysis a = mg::analyze_file(entry.path().string());
    std::printf("%-60s key %-9s conf %.2f  bpm %6.1f%s  %zu chords\n", entry.path().filename().c_str(),
                a.has_key ? a.key.name().c_str() : "none", mg::key_confidence(a.key), a.tempo.bpm,
                a.tempo.octave_ambiguous ? " (octave?)" : "", a.chords.size());
    EXPECT_GT(a.duration, 0.5);
    EXPECT_TRUE(std::isfinite(a.key.correlation) && a.key.correlation >= -1 && a.key.correlation <= 1);
    EXPECT_TRUE(a.tempo.bpm == 0 || (a.tempo.bpm >= 40 && a.tempo.bpm <= 240)) << a.tempo.bpm;
    ASSERT_FALSE(a.chords.empty());
    EXPECT_DOUBLE_EQ(a.chords.front().start, 0.0);
    EXPECT_NEAR(a.chords.back().end, a.duration, 1e-9);
    for (size_t i = 1; i < a.chords.size(); ++i) {
      EXPECT_DOUBLE_EQ(a.chords[i].start, a.chords[i - 1].end);
      EXPECT_NE(a.chords[i].label, a.chords[i - 1].label);  // merged
    }
    // The sidecar (electro_*.json) holds "bpm" and "key" fields, empty in these files: compared
    // only when filled.
    std::filesystem::path sidecar = entry.path();
    sidecar.replace_extension(".json");
    if (std::filesystem::exists(sidecar)) {
      std::ifstream f(sidecar);
      const nlohmann::json j = nlohmann::json::parse(f);
      if (j.contains("bpm") && j["bpm"].is_number()) EXPECT_TRUE(tempo_ok(a.tempo, j["bpm"].get<double>()));
      if (j.contains("key") && j["key"].is_string() && !j["key"].get<std::string>().empty()) {
        int tonic = 0;
        bool minor = false;
        if (mg::parse_key_name(j["key"].get<std::string>(), &tonic, &minor)) EXPECT_EQ(a.key.tonic, tonic);
      }
    }
  }
  EXPECT_GE(files, 5);
}

// The file name says 90 bpm.
TEST(AnalysisRealMusic, BeatboxLoopIs90Bpm) {
  const std::string dir = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(dir);
  const mg::Analysis a = mg::analyze_file(dir + "/CJ_Beatbox_Loop_05_90.wav");
  EXPECT_TRUE(tempo_ok(a.tempo, 90.0)) << a.tempo.bpm << " (alternative " << a.tempo.alternative_bpm << ")";
}

}  // namespace
