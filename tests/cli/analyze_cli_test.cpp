// musicgen-cli analyze and --report end to end, and the analyser's C API (include/musicgen.h).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "codec/audio_file.h"
#include "musicgen.h"
#include "test_util.h"
#include "unit/analysis_synth.h"

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kMelody = mgtest::data_dir() + "/models/musicgen_melody_tiny";

// A 4-chord progression at 100 bpm written as a 44.1 kHz stereo wav (the analyser converts it).
std::string write_progression(const std::string& dir) {
  const std::vector<float> x = mgtest::render_chords({{0, false}, {9, true}, {5, false}, {7, false}}, 100, 4);
  mg::AudioBuffer b;
  b.sample_rate = mgtest::kSynthRate;
  b.channels = {x, x};
  const std::string path = dir + "/progression.wav";
  mg::write_audio(path, b);
  return path;
}

TEST(AnalyzeCli, JsonParsesAndHoldsTheFields) {
  const std::string dir = mgtest::test_case_dir();
  const std::string wav = write_progression(dir), png = dir + "/chroma.png";
  mgtest::RunResult r = mgtest::run_command(kCli, "analyze " + wav + " --json --chroma-png " + png);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* f : {"key", "mode", "confidence", "bpm", "octave_ambiguous", "chords", "duration"})
    EXPECT_TRUE(j.contains(f)) << f;
  EXPECT_EQ(j["key"], "C");
  EXPECT_EQ(j["mode"], "major");
  EXPECT_NEAR(j["bpm"].get<double>(), 100.0, 2.0);
  std::vector<std::string> labels;
  for (const auto& c : j["chords"])
    if (c["label"] != "N") labels.push_back(c["label"]);  // the decay after the last chord is "N"
  EXPECT_EQ(labels, (std::vector<std::string>{"C", "Am", "F", "G"}));
#ifdef MUSICGEN_HAVE_PNG
  EXPECT_EQ(mgtest::slurp(png).substr(1, 3), "PNG");
#endif
}

TEST(AnalyzeCli, HumanReadableByDefault) {
  const std::string wav = write_progression(mgtest::test_case_dir());
  mgtest::RunResult r = mgtest::run_command(kCli, "analyze " + wav);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("key:    C major"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tempo:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Am"), std::string::npos) << r.out;
}

TEST(AnalyzeCli, MissingFileIsAnError) {
  mgtest::RunResult r = mgtest::run_command(kCli, "analyze /nonexistent/x.wav");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("musicgen-cli: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/x.wav"), std::string::npos) << r.err;
}

// The tiny melody model has random weights: its output is noise, so only the report's presence
// is checked, not what it finds.
TEST(AnalyzeCli, ReportAfterGenerating) {
  const std::string out = mgtest::test_case_dir() + "/gen.wav";
  mgtest::RunResult r = mgtest::run_command(
      kCli, "-q --model " + kMelody + " --chords \"C G Am F\" --bpm 100 -d 1 --seed 1 --report -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("report for " + out), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tempo:  100.0 bpm ->"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("chords: C G Am F ->"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("of the time the found chord is the requested one"), std::string::npos) << r.err;
}

TEST(AnalysisCApi, AudioAccessorsAndErrors) {
  const std::vector<float> x = mgtest::render_key(9, true, 90);
  musicgen_analysis* a = nullptr;
  ASSERT_EQ(musicgen_analyze_audio(x.data(), int64_t(x.size()), 1, mgtest::kSynthRate, &a), MUSICGEN_OK)
      << musicgen_last_error();
  EXPECT_STREQ(musicgen_analysis_key(a), "A");
  EXPECT_STREQ(musicgen_analysis_mode(a), "minor");
  EXPECT_GT(musicgen_analysis_key_confidence(a), 0.0f);
  EXPECT_NEAR(musicgen_analysis_bpm(a), 90.0f, 1.8f);
  ASSERT_GT(musicgen_analysis_chord_count(a), 0);
  EXPECT_STREQ(musicgen_analysis_chord_label(a, 0), "Am");
  EXPECT_LT(musicgen_analysis_chord_start(a, 0), musicgen_analysis_chord_end(a, 0));
  EXPECT_STREQ(musicgen_analysis_chord_label(a, 9999), "");
  EXPECT_NO_THROW(nlohmann::json::parse(musicgen_analysis_to_json(a)));
  musicgen_analysis_free(a);
  musicgen_analysis_free(nullptr);

  a = reinterpret_cast<musicgen_analysis*>(1);
  EXPECT_EQ(musicgen_analyze_audio(nullptr, 10, 1, 22050, &a), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(a, nullptr);
  std::vector<float> bad(1000, 0.0f);
  bad[3] = NAN;
  EXPECT_EQ(musicgen_analyze_audio(bad.data(), 1000, 1, 22050, &a), MUSICGEN_ERROR_FORMAT);
  EXPECT_EQ(musicgen_analyze_file("/nonexistent.wav", &a), MUSICGEN_ERROR_IO);
  EXPECT_NE(std::string(musicgen_last_error()).find("/nonexistent.wav"), std::string::npos);
}

}  // namespace
