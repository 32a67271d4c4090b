// Parity of conditioning/chroma with transformers' MusicgenMelodyFeatureExtractor (goldens of
// tools/reference/make_chroma_goldens.py) on the real music of the test audio folder (tests/README.md) and on inputs
// that pin the extractor's padding and truncation rules.
//
// Pass rule: the pre-argmax chroma within 1e-4 relative, and the one-hot frames identical
// except where the reference's two largest bins tie within float rounding; such frames are counted
// and printed, never silently accepted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "conditioning/chroma.h"
#include "conditioning/chroma_filterbank.h"
#include "conditioning/chroma_png.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

using Golden = std::map<std::string, mg::Tensor>;

constexpr double kFeatureTol = 1e-4;  // ||ours - HF|| / ||HF|| over a case's [T, 12] chroma
constexpr double kElementTol = 1e-4;  // per element (values are normalised so each frame's max is 1)
constexpr double kTieTol = 1e-5;      // a frame whose two largest reference bins are this close is a tie

Golden load_golden(const std::string& name) {
  const std::string path = mgtest::golden_dir() + "/chroma/" + name + ".safetensors";
  if (!std::filesystem::exists(path)) throw mg::Error(path + " is missing: run tools/reference/make_chroma_goldens.py");
  return mg::load_safetensors(path);
}

const mg::Tensor& at(const Golden& g, const std::string& key) {
  auto it = g.find(key);
  if (it == g.end()) throw mg::Error("golden tensor '" + key + "' is missing");
  return it->second;
}

int argmax_row(const float* row, int n) { return int(std::max_element(row, row + n) - row); }

// Compares our features and one-hot with the golden ones; returns the number of tie frames.
int expect_chroma_matches(const std::string& what, const mg::Tensor& feats, const mg::Tensor& one_hot,
                          const mg::Tensor& gfeats, const mg::Tensor& gone_hot) {
  SCOPED_TRACE(what);
  EXPECT_EQ(feats.shape, gfeats.shape);
  EXPECT_EQ(one_hot.shape, gone_hot.shape);
  if (feats.shape != gfeats.shape || one_hot.shape != gone_hot.shape) return 0;
  const double rel = mgtest::rel_err(feats, gfeats);
  const double maxabs = mgtest::max_abs_diff(feats.to_vector(), gfeats.to_vector());
  EXPECT_LT(rel, kFeatureTol);
  EXPECT_LT(maxabs, kElementTol);
  const int64_t frames = gfeats.dim(0), nc = gfeats.dim(1);
  int ties = 0;
  for (int64_t t = 0; t < frames; ++t) {
    const int ours = argmax_row(one_hot.f32() + t * nc, int(nc));
    const int ref = argmax_row(gone_hot.f32() + t * nc, int(nc));
    if (ours == ref) continue;
    const float* g = gfeats.f32() + t * nc;
    const double gap = double(g[ref]) - double(g[ours]);  // reference max (1.0) minus our pick's value
    if (gap <= kTieTol) {
      ++ties;
      std::printf("[tie] %s frame %lld: HF bin %d, ours %d, reference values %.9g vs %.9g\n", what.c_str(),
                  (long long)t, ref, ours, g[ref], g[ours]);
    } else {
      ADD_FAILURE() << "frame " << t << ": HF bin " << ref << ", ours " << ours << " (reference gap " << gap << ")";
    }
  }
  std::printf("%s: %lld frames, rel err %.3g, max abs diff %.3g, tie frames %d\n", what.c_str(), (long long)frames,
              rel, maxabs, ties);
  return ties;
}

void check_case(const Golden& g, const std::string& tag, const std::vector<float>& input) {
  const mg::Tensor feats = mg::chroma_features(input);
  const mg::Tensor one_hot = mg::chroma_one_hot(input);
  expect_chroma_matches(tag, feats, one_hot, at(g, tag + ".features"), at(g, tag + ".one_hot"));
}

// Trap: librosa's bank is built in float64 and cast once to float32; building it in float32 or
// forgetting the roll to C / the octave weighting moves every chroma bin. (The golden script asserts
// that HF's chroma_filter_bank, the extractor's, equals librosa's bit for bit.)
TEST(ChromaFilterBank, MatchesLibrosa) {
  const Golden g = load_golden("filter_bank");
  const mg::Tensor ours = mg::chroma_filter_bank();
  const mg::Tensor& ref = at(g, "librosa");
  ASSERT_EQ(ours.shape, ref.shape);
  ASSERT_EQ(ours.shape, (mg::Shape{12, 8193}));
  EXPECT_LT(mgtest::rel_err(ours, ref), 1e-7);
  EXPECT_LT(mgtest::max_abs_diff(ours.to_vector(), ref.to_vector()), 1e-7);
}

// Trap: the extractor's own bach input (stored exactly), so this case tests the chroma alone,
// independent of the mp3 decoder and the resampler.
TEST(ChromaParity, BachExactInput) {
  const Golden g = load_golden("synthetic");
  check_case(g, "bach", at(g, "bach.input").to_vector());
}

// Trap: HF truncates the SAMPLES to 30 s (960000) before the STFT, so the last of the 235 frames
// sees reflect padding; audiocraft would truncate frames instead (a different frame 234).
TEST(ChromaParity, LongerThan30sTruncatesSamples) {
  const Golden g = load_golden("synthetic");
  const std::vector<float> bach = at(g, "bach.input").to_vector();
  std::vector<float> x;
  for (int i = 0; i < 4; ++i) x.insert(x.end(), bach.begin(), bach.end());
  ASSERT_EQ(mg::chroma_num_frames(int64_t(x.size())), 235);
  check_case(g, "bach_x4", x);
}

// Trap: an input shorter than n_fft is zero-padded to exactly n_fft, pad/2 on the left and the
// rest (one more when odd) on the right, then centred as usual: 5 frames.
TEST(ChromaParity, ShorterThanNfftIsZeroPadded) {
  const Golden g = load_golden("synthetic");
  const std::vector<float> x = at(g, "short.input").to_vector();
  ASSERT_EQ(x.size(), 9999u);
  ASSERT_EQ(mg::chroma_num_frames(int64_t(x.size())), 5);
  check_case(g, "short", x);
}

// Trap: frames = 1 + N / hop with center=True (not (N - n_fft) / hop + 1).
TEST(ChromaParity, FrameCountAtHopEdge) {
  const Golden g = load_golden("synthetic");
  const std::vector<float> x = at(g, "hop_edge.input").to_vector();
  ASSERT_EQ(mg::chroma_num_frames(int64_t(x.size())), 6);
  check_case(g, "hop_edge", x);
}

// Trap: silence normalises by eps (not by zero) and its argmax is bin 0 (C): the null melody.
TEST(ChromaParity, SilenceIsBinZero) {
  const Golden g = load_golden("synthetic");
  const std::vector<float> x(1000, 0.0f);
  check_case(g, "silence", x);
  const mg::Tensor oh = mg::chroma_one_hot(x);
  for (int64_t t = 0; t < oh.dim(0); ++t) EXPECT_EQ(oh.f32()[t * 12], 1.0f) << "frame " << t;
  const mg::Tensor empty = mg::chroma_one_hot({});
  ASSERT_EQ(empty.shape, (mg::Shape{5, 12}));
  EXPECT_EQ(mgtest::max_abs_diff(empty.to_vector(), oh.to_vector()), 0.0);
}

// Every file of the test audio folder decoded and converted by our codec (which has its own parity
// goldens) against the extractor fed soundfile + julius. The input's checksums are compared first,
// so a decoder or resampler drift is reported as such and not as a chroma bug.
TEST(ChromaParity, RealMusic) {
  const std::string dir = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(dir);
  int files = 0, total_ties = 0;
  for (const char* name : {"CJ_Beatbox_Loop_05_90.wav", "a_duck_quacking_as_birds_chirp_and_a_pigeon_cooing.mp3",
                           "bach.mp3", "electro_1.mp3", "electro_2.mp3", "electronic.mp3", "sep_drums_1.mp3"}) {
    const std::string stem = std::filesystem::path(name).stem().string();
    const Golden g = load_golden(stem);
    const mg::AudioBuffer mono = mg::convert_audio(mg::read_audio(dir + "/" + name), 32000, 1);
    const std::vector<float>& x = mono.channels[0];
    const std::vector<float> stats = at(g, "input.stats").to_vector();
    ASSERT_EQ(double(x.size()), double(stats[0])) << name << ": 32 kHz mono length";
    double sumsq = 0;
    for (float v : x) sumsq += double(v) * v;
    EXPECT_NEAR(sumsq, stats[2], 1e-5 * stats[2]) << name << ": input energy differs from the reference's";
    const mg::Tensor feats = mg::chroma_features(x);
    const mg::Tensor one_hot = mg::chroma_argmax_one_hot(feats);
    total_ties += expect_chroma_matches(stem, feats, one_hot, at(g, "features"), at(g, "one_hot"));
    ++files;
  }
  std::printf("real music: %d files, %d tie frames in all\n", files, total_ties);
}

// The model's length rule: tile repeat(ceil(235 / T)) then cut; longer keeps the first 235.
TEST(ChromaLength, TileAndTruncate) {
  mg::Tensor c = mg::Tensor::zeros(mg::DType::F32, {3, 12});
  for (int t = 0; t < 3; ++t) c.f32()[t * 12 + t + 2] = 1.0f;
  const mg::Tensor fitted = mg::chroma_fit_length(c);
  ASSERT_EQ(fitted.shape, (mg::Shape{235, 12}));
  for (int t = 0; t < 235; ++t) EXPECT_EQ(argmax_row(fitted.f32() + t * 12, 12), t % 3 + 2) << "frame " << t;
  mg::Tensor longc = mg::Tensor::zeros(mg::DType::F32, {300, 12});
  for (int t = 0; t < 300; ++t) longc.f32()[t * 12 + t % 12] = 1.0f;
  const mg::Tensor cut = mg::chroma_fit_length(longc);
  ASSERT_EQ(cut.shape, (mg::Shape{235, 12}));
  for (int t = 0; t < 235; ++t) EXPECT_EQ(argmax_row(cut.f32() + t * 12, 12), t % 12);
  const mg::Tensor null = mg::chroma_fit_length(mg::null_chroma());
  for (int t = 0; t < 235; ++t) EXPECT_EQ(argmax_row(null.f32() + t * 12, 12), 0);
  EXPECT_DOUBLE_EQ(mg::chroma_frame_rate(), 7.8125);
  EXPECT_EQ(mg::chroma_num_frames(960000), 235);
  EXPECT_EQ(mg::chroma_num_frames(0), 5);
  EXPECT_THROW(mg::chroma_fit_length(mg::Tensor::zeros(mg::DType::F32, {0, 12})), mg::Error);
}

TEST(ChromaErrors, NonFiniteInput) {
  std::vector<float> x(20000, 0.1f);
  x[123] = NAN;
  try {
    mg::chroma_features(x);
    FAIL() << "expected an error";
  } catch (const mg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample 123"), std::string::npos) << e.what();
  }
}

// The picture in docs/images/bach_chroma.png: the bach.mp3 demo melody as the model reads it (one-hot,
// tiled from 79 frames to 235). Written to the build dir; copy it to docs/images/ when it changes.
TEST(ChromaPicture, Bach) {
  MG_SKIP_WITHOUT_PNG();
  const Golden g = load_golden("synthetic");
  const mg::Tensor fitted = mg::chroma_fit_length(mg::chroma_one_hot(at(g, "bach.input").to_vector()));
  const std::string path = mgtest::temp_dir() + "/bach_chroma.png";
  mg::write_chroma_png(path, fitted);
  EXPECT_TRUE(std::filesystem::exists(path));
  std::printf("wrote %s\n", path.c_str());
}

}  // namespace
