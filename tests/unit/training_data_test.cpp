// Training data: metadata -> text as audiocraft builds it, the segment plan, the train/validation
// split, and the code cache (a second run must encode nothing; a changed file must be re-encoded).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "codec/audio_file.h"
#include "kernels/ops.h"
#include "lm/generate.h"
#include "test_util.h"
#include "train/dataset.h"

namespace fs = std::filesystem;

namespace {

const std::string kModel = "tests/data/models/musicgen_tiny";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A tone of `seconds` at `rate` Hz with `channels` channels.
void write_tone(const std::string& path, int rate, int channels, double seconds, double hz) {
  mg::AudioBuffer b = mg::AudioBuffer::zeros(rate, channels, int64_t(seconds * rate));
  for (int c = 0; c < channels; ++c)
    for (int64_t i = 0; i < b.num_frames(); ++i) b.channels[c][i] = 0.3f * float(std::sin(2 * M_PI * hz * i / rate));
  mg::write_audio(path, b);
}

struct TinyModel {
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(1);
  std::unique_ptr<mg::MusicGen> model = mg::MusicGen::load(*be, kModel);
};

}  // namespace

// audiocraft's electro_1.json: keywords as a comma string, moods as a list, empty key and bpm.
// A plausible bug: splitting "bright, pulsing" into an empty keyword, or printing bpm 120 as "120".
TEST(MusicInfo, TextAsAudiocraftMergesIt) {
  const nlohmann::json j = nlohmann::json::parse(
      R"({"key": "", "artist": "Voyager I", "description": "A cool song from Voyager.", "keywords": "bright, pulsing, cool",
          "bpm": "", "genre": "electronic", "title": "Enracinement", "name": "electro_1", "instrument": "Mix",
          "moods": ["uplifting", "motivational"]})");
  const mg::MusicInfo m = mg::music_info_from_json(j, "electro_1.json");
  EXPECT_EQ(mg::music_info_text(m, mg::TextMode::Merged),
            "A cool song from Voyager. genre: electronic. moods: uplifting, motivational. keywords: bright, pulsing, "
            "cool. instrument: mix");
  EXPECT_EQ(mg::music_info_text(m, mg::TextMode::Description), "A cool song from Voyager.");
  const mg::MusicInfo k = mg::music_info_from_json(nlohmann::json::parse(R"({"bpm": 120, "key": "C Major"})"), "x");
  EXPECT_EQ(mg::music_info_text(k, mg::TextMode::Merged), "key: c major. bpm: 120.0");
  const mg::MusicInfo two = mg::music_info_from_json(nlohmann::json::parse(R"({"key": "C, G", "bpm": "92.5"})"), "x");
  EXPECT_EQ(mg::music_info_text(two, mg::TextMode::Merged), "bpm: 92.5");
  EXPECT_EQ(mg::music_info_text(mg::MusicInfo{}, mg::TextMode::Merged), "");
}

// The plan covers whole segments, is the same for the same seed and path, and moves with the seed.
TEST(SegmentPlan, DeterministicAndSeeded) {
  const auto a = mg::plan_segments(1050, 100, 7, "x.wav");
  ASSERT_EQ(a.size(), 10u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].second, 100);
    EXPECT_EQ(a[i].first, a[0].first + int64_t(i) * 100);
  }
  EXPECT_LE(a.back().first + 100, 1050);
  EXPECT_EQ(a, mg::plan_segments(1050, 100, 7, "x.wav"));
  bool moved = false;
  for (uint64_t s = 0; s < 8 && !moved; ++s) moved = mg::plan_segments(1050, 100, s, "x.wav")[0].first != a[0].first;
  EXPECT_TRUE(moved);
  EXPECT_EQ(mg::plan_segments(60, 100, 7, "x.wav"), (std::vector<std::pair<int64_t, int64_t>>{{0, 60}}));
}

TEST(TrainingData, EmptyOrMissingFolderIsAnError) {
  const std::string dir = mgtest::test_case_dir();
  mg::DatasetOptions o;
  o.data = dir;
  EXPECT_NE(mgtest::error_of([&] { mg::list_training_tracks(o); }).find("holds no audio files"), std::string::npos);
  o.data = dir + "/nope";
  EXPECT_NE(mgtest::error_of([&] { mg::list_training_tracks(o); }).find("does not exist"), std::string::npos);
  write_text(dir + "/bad.wav", "not audio");
  o.data = dir;
  TinyModel tm;
  EXPECT_NE(mgtest::error_of([&] { mg::prepare_dataset(*tm.be, *tm.model, o); }).find("bad.wav"), std::string::npos);
}

TEST(TrainingData, ManifestLinesNeedAPath) {
  const std::string dir = mgtest::test_case_dir();
  write_text(dir + "/m.jsonl", "{\"description\": \"x\"}\n");
  mg::DatasetOptions o;
  o.data = dir + "/m.jsonl";
  EXPECT_NE(mgtest::error_of([&] { mg::list_training_tracks(o); }).find("line 1"), std::string::npos);
}

// Files at another rate and channel count are converted, cut, encoded once; the second run reads
// every file from the cache; touching a file re-encodes that file only. Validation holds whole files.
TEST(TrainingData, SyntheticFolderEncodesOnceThenCaches) {
  const std::string dir = mgtest::test_case_dir();
  fs::create_directories(dir + "/data/sub");
  write_tone(dir + "/data/a.wav", 16000, 2, 2.5, 220);
  write_tone(dir + "/data/b.flac", 44100, 1, 1.2, 330);
  write_tone(dir + "/data/sub/c.wav", 32000, 1, 0.5, 440);
  write_text(dir + "/data/a.json", R"({"description": "A tone.", "genre": "Test"})");
  mg::DatasetOptions o;
  o.data = dir + "/data";
  o.cache_dir = dir + "/out/cache";
  o.segment_seconds = 1.0;
  o.val_fraction = 0.34;
  o.model_key = mg::model_cache_key(kModel);
  TinyModel tm;
  const int K = tm.model->config().decoder.num_codebooks;
  const int hop = tm.model->config().audio_encoder.hop_length();
  const mg::Dataset d1 = mg::prepare_dataset(*tm.be, *tm.model, o);
  ASSERT_EQ(d1.tracks.size(), 3u);
  EXPECT_EQ(d1.encoded_tracks, 3);
  EXPECT_EQ(d1.cached_tracks, 0);
  EXPECT_EQ(d1.tracks[0].text, "A tone. genre: test");
  EXPECT_EQ(d1.tracks[1].text, "");
  int n_val = 0;
  for (const auto& t : d1.tracks) n_val += t.validation;
  EXPECT_EQ(n_val, 1);
  EXPECT_EQ(d1.train.size() + d1.validation.size(), 2u + 1u + 1u);  // a: 2 x 1 s, b: 1 x 1 s, c: 0.5 s
  for (const auto* set : {&d1.train, &d1.validation})
    for (const mg::TrainingSegment& s : *set) {
      EXPECT_EQ(d1.tracks[s.track].validation, set == &d1.validation);
      ASSERT_EQ(int(s.codes.size()), K);
      EXPECT_EQ(int64_t(s.codes[0].size()), (s.length + hop - 1) / hop);
    }

  const mg::Dataset d2 = mg::prepare_dataset(*tm.be, *tm.model, o);
  EXPECT_EQ(d2.encoded_tracks, 0);
  EXPECT_EQ(d2.cached_tracks, 3);
  ASSERT_EQ(d2.train.size(), d1.train.size());
  for (size_t i = 0; i < d1.train.size(); ++i) {
    EXPECT_EQ(d2.train[i].codes, d1.train[i].codes);
    EXPECT_EQ(d2.train[i].start, d1.train[i].start);
  }

  fs::last_write_time(dir + "/data/b.flac", fs::last_write_time(dir + "/data/b.flac") + std::chrono::seconds(5));
  const mg::Dataset d3 = mg::prepare_dataset(*tm.be, *tm.model, o);
  EXPECT_EQ(d3.encoded_tracks, 1);
  EXPECT_EQ(d3.cached_tracks, 2);

  o.segment_seconds = 0.5;  // another plan: nothing cached fits
  EXPECT_EQ(mg::prepare_dataset(*tm.be, *tm.model, o).encoded_tracks, 3);
}

// The real-music folder: mp3 and wav at several rates, two audiocraft sidecars.
TEST(TrainingData, RealAudioFolder) {
  const std::string audio = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(audio);
  const std::string dir = mgtest::test_case_dir();
  // A manifest of three files (relative and absolute paths) keeps the test short.
  write_text(dir + "/m.jsonl", "{\"path\": \"" + audio + "/electro_1.mp3\"}\n" +
                                   "{\"path\": \"" + audio + "/CJ_Beatbox_Loop_05_90.wav\", \"description\": \"beatbox\", \"bpm\": 90}\n");
  mg::DatasetOptions o;
  o.data = dir + "/m.jsonl";
  o.segment_seconds = 4.0;
  o.val_fraction = 0.5;
  o.cache_dir = dir + "/cache";
  TinyModel tm;
  const mg::Dataset d = mg::prepare_dataset(*tm.be, *tm.model, o);
  ASSERT_EQ(d.tracks.size(), 2u);
  EXPECT_EQ(d.tracks[0].text,
            "A cool song from Voyager. genre: electronic. moods: uplifting, motivational. keywords: bright, pulsing, "
            "cool. instrument: mix");
  EXPECT_EQ(d.tracks[1].text, "beatbox. bpm: 90.0");
  EXPECT_EQ(d.validation.empty(), false);
  EXPECT_EQ(d.train.empty(), false);
  EXPECT_EQ(mg::prepare_dataset(*tm.be, *tm.model, o).encoded_tracks, 0);
}
