// Parity of codec/resample (julius.resample_frac) and codec/convert_audio (audiocraft's
// convert_audio) with the goldens of tools/reference/make_audio_goldens.py, on the real music of
// the test audio folder (tests/README.md) and on synthetic inputs that pin julius's traps one by one.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "codec/resample.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

using Golden = std::map<std::string, mg::Tensor>;

constexpr double kTol = 1e-5;  // ||ours - julius|| / ||julius||

Golden load_golden(const std::string& name) {
  const std::string path = mgtest::golden_dir() + "/audio/" + name + ".safetensors";
  EXPECT_TRUE(std::filesystem::exists(path)) << path << " is missing: run tools/reference/make_audio_goldens.py";
  return mg::load_safetensors(path);
}

const mg::Tensor& at(const Golden& g, const std::string& key) {
  auto it = g.find(key);
  if (it == g.end()) throw mg::Error("golden tensor '" + key + "' is missing");
  return it->second;
}

int64_t scalar_i64(const Golden& g, const std::string& key, int index = 0) {
  return at(g, key).ptr<int64_t>()[index];
}

std::vector<float> vec(const Golden& g, const std::string& key) { return at(g, key).to_vector(); }

// Row c of a [C, M] golden tensor.
std::vector<float> row(const Golden& g, const std::string& key, int c) {
  const mg::Tensor& t = at(g, key);
  std::vector<float> all = t.to_vector();
  const int64_t m = t.cols();
  return std::vector<float>(all.begin() + c * m, all.begin() + (c + 1) * m);
}

std::vector<float> strided(const std::vector<float>& x, int64_t stride) {
  std::vector<float> out;
  for (size_t i = 0; i < x.size(); i += size_t(stride)) out.push_back(x[i]);
  return out;
}

// Sum and sum of squares of one channel against the golden [sum, sumsq] (accumulated in float64).
// By Cauchy-Schwarz a relative error of kTol bounds the sum's drift by kTol * sqrt(n * sumsq).
void expect_stats(const std::vector<float>& x, float gsum, float gsumsq, const std::string& what) {
  double sum = 0, sumsq = 0;
  for (float v : x) { sum += v; sumsq += double(v) * v; }
  EXPECT_NEAR(sumsq, gsumsq, kTol * gsumsq + 1e-12) << what << ": sum of squares";
  EXPECT_NEAR(sum, gsum, kTol * std::sqrt(double(x.size()) * gsumsq) + 1e-9) << what << ": sum";
}

// Checks a whole output against its golden summary: rate, channels, length, checksums, strided
// samples and both edges (where replicate padding acts).
void expect_output_matches(const Golden& g, const std::string& tag, const mg::AudioBuffer& out) {
  SCOPED_TRACE(tag);
  ASSERT_EQ(out.sample_rate, scalar_i64(g, tag + ".info", 0));
  ASSERT_EQ(out.num_channels(), scalar_i64(g, tag + ".info", 1));
  ASSERT_EQ(out.num_frames(), scalar_i64(g, tag + ".info", 2));
  const int64_t stride = scalar_i64(g, tag + ".stride");
  const std::vector<float> stats = vec(g, tag + ".stats");
  for (int c = 0; c < out.num_channels(); ++c) {
    const std::vector<float>& y = out.channels[size_t(c)];
    const std::string what = tag + " channel " + std::to_string(c);
    expect_stats(y, stats[size_t(2 * c)], stats[size_t(2 * c + 1)], what);
    EXPECT_LT(mgtest::rel_err(strided(y, stride), row(g, tag + ".every", c)), kTol) << what << ": strided samples";
    const std::vector<float> head = row(g, tag + ".head", c), tail = row(g, tag + ".tail", c);
    EXPECT_LT(mgtest::rel_err(std::vector<float>(y.begin(), y.begin() + head.size()), head), kTol) << what << ": head";
    EXPECT_LT(mgtest::rel_err(std::vector<float>(y.end() - tail.size(), y.end()), tail), kTol) << what << ": tail";
  }
}

// ---------------------------------------------------------------- real music, one test per file

class ResampleMusic : public ::testing::TestWithParam<std::string> {};

TEST_P(ResampleMusic, MatchesJulius) {
  const std::string audio_dir = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(audio_dir);
  const std::string file = GetParam();
  const std::string stem = std::filesystem::path(file).stem().string();
  const Golden g = load_golden(stem);

  // Our libsndfile decode must equal python soundfile's (else the goldens would test a different input).
  const mg::AudioBuffer in = mg::read_audio(audio_dir + "/" + file);
  ASSERT_EQ(in.sample_rate, scalar_i64(g, "decoded.info", 0));
  ASSERT_EQ(in.num_channels(), scalar_i64(g, "decoded.info", 1));
  ASSERT_EQ(in.num_frames(), scalar_i64(g, "decoded.info", 2));
  const int64_t offset = scalar_i64(g, "decoded.offset");
  const std::vector<float> decoded_stats = vec(g, "decoded.stats");
  for (int c = 0; c < in.num_channels(); ++c) {
    const std::vector<float>& x = in.channels[size_t(c)];
    const std::vector<float> excerpt = row(g, "decoded.excerpt", c);
    // Bit-exact with Debian 12's libsndfile 1.2.0 + mpg123 1.31 against soundfile 0.14's bundled
    // libsndfile 1.2.2; another mpg123 build may round differently, hence a tolerance, not equality.
    EXPECT_LT(mgtest::rel_err(std::vector<float>(x.begin() + offset, x.begin() + offset + excerpt.size()), excerpt),
              kTol)
        << "decoded channel " << c;
    expect_stats(x, decoded_stats[size_t(2 * c)], decoded_stats[size_t(2 * c + 1)], "decoded");
  }

  for (int rate : {32000, 24000, 48000}) {
    const std::string tag = "resample_" + std::to_string(rate);
    if (!g.count(tag + ".info")) continue;  // the file is already at this rate
    const mg::Resampler resampler(in.sample_rate, rate);
    mg::AudioBuffer out;
    out.sample_rate = rate;
    for (const auto& ch : in.channels) out.channels.push_back(resampler.resample(ch));
    expect_output_matches(g, tag, out);
  }
  expect_output_matches(g, "convert_32000_1", mg::convert_audio(in, 32000, 1));
}

INSTANTIATE_TEST_SUITE_P(SharedAudio, ResampleMusic,
                         ::testing::Values("CJ_Beatbox_Loop_05_90.wav",
                                           "a_duck_quacking_as_birds_chirp_and_a_pigeon_cooing.mp3", "bach.mp3",
                                           "electro_1.mp3", "electro_2.mp3", "electronic.mp3", "sep_drums_1.mp3"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = std::filesystem::path(info.param).stem().string();
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

// ---------------------------------------------------------------- traps, synthetic inputs

class ResampleTraps : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { golden_ = new Golden(load_golden("traps")); }
  static void TearDownTestSuite() { delete golden_; golden_ = nullptr; }
  static const Golden& g() { return *golden_; }
  static Golden* golden_;
};
Golden* ResampleTraps::golden_ = nullptr;

// The two sines of make_audio_goldens.py's sines(): computed in double, stored as float.
std::vector<float> sines(int64_t n, int sr) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double t = double(i) / sr;
    x[size_t(i)] = float(0.5 * std::sin(2 * M_PI * 440.0 * t) + 0.25 * std::sin(2 * M_PI * 3000.0 * t + 1.0));
  }
  return x;
}

TEST_F(ResampleTraps, OutputLengthRoundsThroughFloat32) {
  // Trap: julius computes the output length as floor(torch.as_tensor(new*n/old)), and as_tensor of
  // a Python float is float32. For 44.1k -> 32k and n = 90682 the exact quotient 65800.9977 rounds
  // to 65801.0, so julius returns 65801 samples where integer arithmetic says 65800. An encoder
  // fed 65800 samples would frame the audio differently from audiocraft.
  const int64_t n = scalar_i64(g(), "length_rounding.n");
  const mg::Resampler r(44100, 32000);
  EXPECT_EQ(r.default_output_length(n), scalar_i64(g(), "length_rounding.output_length"));
  EXPECT_EQ(r.default_output_length(n), 65801);
  const std::vector<float> y = r.resample(sines(n, 44100));
  ASSERT_EQ(int64_t(y.size()), 65801);
  EXPECT_LT(mgtest::rel_err(strided(y, 50), vec(g(), "length_rounding.every")), kTol);
  const std::vector<float> tail = vec(g(), "length_rounding.tail");
  EXPECT_LT(mgtest::rel_err(std::vector<float>(y.end() - tail.size(), y.end()), tail), kTol);
  const std::vector<float> st = vec(g(), "length_rounding.stats");
  expect_stats(y, st[0], st[1], "length_rounding");
}

TEST_F(ResampleTraps, InputsShorterThanTheKernel) {
  // Trap: an input shorter than one kernel (here 1 to 10 samples against 53 to 511 taps) is all
  // replicate padding; julius still answers, and 1 sample at 48k -> 32k gives floor(2/3) = 0 samples.
  for (const char* name : {"short_44100_32000", "short_16000_48000", "short_48000_44100", "short_48000_32000"}) {
    SCOPED_TRACE(name);
    const std::string key = name;
    const int old_sr = int(scalar_i64(g(), key + ".rates", 0)), new_sr = int(scalar_i64(g(), key + ".rates", 1));
    const int64_t expected_len = scalar_i64(g(), key + ".output_length");
    std::vector<float> expected = vec(g(), key + ".output");
    expected.resize(size_t(expected_len));  // stored with one padding zero
    const std::vector<float> y = mg::resample_frac(vec(g(), key + ".input"), old_sr, new_sr);
    ASSERT_EQ(y.size(), expected.size());
    if (!expected.empty()) EXPECT_LT(mgtest::rel_err(y, expected), kTol);
  }
  EXPECT_THROW(mg::resample_frac({}, 44100, 32000), mg::Error);  // julius fails on empty input too
}

TEST_F(ResampleTraps, IdenticalRatesAreANoOp) {
  // Trap: equal rates (after gcd reduction) skip the filter entirely in julius: the output is
  // the input bit for bit, not a low-passed copy.
  const std::vector<float> x = mgtest::random_vector(1000, 7);
  for (int sr : {32000, 44100, 1}) {
    const mg::Resampler r(sr, sr);
    EXPECT_TRUE(r.is_identity());
    EXPECT_EQ(r.resample(x), x);
    EXPECT_EQ(r.resample(x, -1, true), x);
  }
  const mg::AudioBuffer in{32000, {x, x}};
  EXPECT_EQ(mg::convert_audio(in, 32000, 2).channels, in.channels);
}

TEST_F(ResampleTraps, PairsWithALargeGcd) {
  // Trap: julius divides both rates by their gcd before building kernels, so 96000 -> 48000 is
  // 2 -> 1 with a 2-tap stride; forgetting the reduction gives the same maths with 48000 kernels.
  const std::map<std::string, std::pair<int, int>> reduced = {
      {"pair_96000_48000", {2, 1}}, {"pair_16000_48000", {1, 3}}, {"pair_48000_32000", {3, 2}},
      {"pair_22050_44100", {1, 2}}, {"pair_44100_48000", {147, 160}}};
  for (const auto& [key, fraction] : reduced) {
    SCOPED_TRACE(key);
    int old_sr = 0, new_sr = 0;
    ASSERT_EQ(std::sscanf(key.c_str(), "pair_%d_%d", &old_sr, &new_sr), 2);
    const mg::Resampler r(old_sr, new_sr);
    EXPECT_EQ(r.reduced_old_rate(), fraction.first);
    EXPECT_EQ(r.reduced_new_rate(), fraction.second);
    const std::vector<float> expected = vec(g(), key + ".output");
    const std::vector<float> y = r.resample(vec(g(), key + ".input"));
    ASSERT_EQ(y.size(), expected.size());
    EXPECT_LT(mgtest::rel_err(y, expected), kTol);
  }
}

TEST_F(ResampleTraps, OutputLengthAndFullOptions) {
  const std::vector<float> x = vec(g(), "options.input");
  const mg::Resampler r(44100, 16000);
  const std::vector<float> full = vec(g(), "options.full");
  const std::vector<float> y_full = r.resample(x, -1, true);
  ASSERT_EQ(y_full.size(), full.size());
  EXPECT_LT(mgtest::rel_err(y_full, full), kTol);
  const std::vector<float> y100 = r.resample(x, 100);
  EXPECT_LT(mgtest::rel_err(y100, vec(g(), "options.length_100")), kTol);
  EXPECT_THROW(r.resample(x, r.max_output_length(int64_t(x.size())) + 1), mg::Error);
  EXPECT_THROW(r.resample(x, 100, true), mg::Error);
}

TEST_F(ResampleTraps, KernelsMatchJuliusFloat32Construction) {
  // Trap: julius builds its kernels with float32 torch ops (time grid, clamp, pi, cos^2 window, sum
  // normalisation); building them in double moves every tap by ~1e-7 and drifts long outputs.
  for (const auto& [old_sr, new_sr] : std::vector<std::pair<int, int>>{{48000, 32000}, {16000, 48000}}) {
    const mg::Resampler r(old_sr, new_sr);
    const mg::Tensor& k = at(g(), "kernel_" + std::to_string(old_sr) + "_" + std::to_string(new_sr));
    ASSERT_EQ(k.dim(0), r.reduced_new_rate());
    ASSERT_EQ(k.dim(1), r.taps());
    EXPECT_LT(mgtest::max_abs_diff(r.kernel(), k.to_vector()), 1e-6);
  }
}

TEST(Resample, RejectsRatesItCannotServe) {
  EXPECT_THROW(mg::Resampler(0, 32000), mg::Error);
  EXPECT_THROW(mg::Resampler(32000, -1), mg::Error);
  try {
    mg::Resampler r(44100, 44101);  // coprime: a 44101 x 44152 kernel table
    FAIL() << "expected an error";
  } catch (const mg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("44100 -> 44101"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- channel conversion

TEST(ConvertAudioChannels, FollowsAudiocraftRules) {
  const std::vector<float> a = {1, 2, 3}, b = {3, 4, 5}, c = {7, 8, 9};
  const mg::AudioBuffer stereo{16000, {a, b}}, mono{16000, {a}}, three{16000, {a, b, c}};
  EXPECT_EQ(mg::convert_audio_channels(stereo, 1).channels, (std::vector<std::vector<float>>{{2, 3, 4}}));
  EXPECT_EQ(mg::convert_audio_channels(mono, 3).channels, (std::vector<std::vector<float>>{a, a, a}));
  EXPECT_EQ(mg::convert_audio_channels(three, 2).channels, (std::vector<std::vector<float>>{a, b}));
  EXPECT_EQ(mg::convert_audio_channels(stereo, 2).channels, stereo.channels);
  EXPECT_THROW(mg::convert_audio_channels(stereo, 3), mg::Error);  // audiocraft raises too
  EXPECT_THROW(mg::convert_audio(stereo, 32000, 3), mg::Error);
}

}  // namespace
