// encodec-tool compress, decompress and convert stream their files (docs/ARCHITECTURE.md,
// "Windowed EnCodec"): the same .ecdc bytes, decoded audio within 1e-5 and converted samples as
// the in-memory C API path (encodec_audio_read + encodec_session_compress / decompress /
// encodec_audio_convert), with windows of 3 frames (MUSICGEN_TEST_ENCODEC_WINDOW_FRAMES) so that a
// 3 s input crosses many window boundaries; and peak resident memory (of the tool, in a child
// process) that does not grow with the input: 20 minutes here, 2 hours in tests/slow.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "codec/audio_file.h"
#include "encodec.h"
#include "test_util.h"
#include "tool_peak_rss.h"

namespace {

const std::string kTool = std::string(MG_BINARY_DIR) + "/tools/encodec-tool/encodec-tool";

std::string model(const std::string& name) { return mgtest::data_dir() + "/models/" + name; }

// 3 s of a 44.1 kHz stereo chirp: every model resamples and remixes it.
std::string fixture(const std::string& dir) {
  mg::AudioBuffer b = mg::AudioBuffer::zeros(44100, 2, 3 * 44100 + 77);
  for (int c = 0; c < 2; ++c)
    for (int64_t t = 0; t < b.num_frames(); ++t) {
      const double s = double(t) / 44100;
      b.channels[size_t(c)][size_t(t)] = float(0.4 * std::sin(2 * M_PI * (200.0 * (c + 1) + 400.0 * s) * s));
    }
  const std::string path = dir + "/in.wav";
  mg::write_audio(path, b, {mg::AudioSubtype::Float});
  return path;
}

std::vector<uint8_t> bytes_of(const std::string& path) {
  const std::string s = mgtest::slurp(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

class EncodecToolStream : public ::testing::TestWithParam<const char*> {};

void same_as_in_memory(const std::string& dir, const std::string& in, const std::string& m);

TEST_P(EncodecToolStream, SameBytesAndAudioAsTheInMemoryPath) {
  const std::string dir = mgtest::test_case_dir(), m = model(GetParam());
  // WAV, and MP3, whose frame count libsndfile may only estimate (the .ecdc header is fixed at the end).
  for (const std::string ext : {"wav", "mp3"}) {
    SCOPED_TRACE(ext);
    std::string in = fixture(dir);
    if (ext != "wav") {
      const mgtest::RunResult r = mgtest::run_command(kTool, "convert " + in + " " + dir + "/in." + ext + " -r 44100 -c 2");
      ASSERT_EQ(r.exit_code, 0) << r.err;
      in = dir + "/in." + ext;
    }
    same_as_in_memory(dir, in, m);
  }
}

void same_as_in_memory(const std::string& dir, const std::string& in, const std::string& m) {
  setenv("MUSICGEN_TEST_ENCODEC_WINDOW_FRAMES", "3", 1);  // the tool's runs only
  const mgtest::RunResult c = mgtest::run_command(kTool, "compress " + in + " " + dir + "/s.ecdc -m " + m);
  const mgtest::RunResult d =
      mgtest::run_command(kTool, "decompress " + dir + "/s.ecdc " + dir + "/s.wav -s float -m " + m);
  unsetenv("MUSICGEN_TEST_ENCODEC_WINDOW_FRAMES");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  ASSERT_EQ(d.exit_code, 0) << d.err;

  // The in-memory path, in this process, with the default (5 s) window: the whole-file pass.
  encodec_model* em = nullptr;
  ASSERT_EQ(encodec_model_load(m.c_str(), nullptr, &em), MUSICGEN_OK) << musicgen_last_error();
  encodec_session* s = nullptr;
  ASSERT_EQ(encodec_session_create(em, nullptr, &s), MUSICGEN_OK) << musicgen_last_error();
  encodec_audio* audio = nullptr;
  ASSERT_EQ(encodec_audio_read(in.c_str(), &audio), MUSICGEN_OK) << musicgen_last_error();
  const double kbps = encodec_model_num_codebooks(em, 6.0) > 0 ? 6.0 : 0.0;  // as the tool picks
  uint8_t* data = nullptr;
  size_t size = 0;
  ASSERT_EQ(encodec_session_compress(s, audio, kbps, &data, &size), MUSICGEN_OK) << musicgen_last_error();
  EXPECT_EQ(bytes_of(dir + "/s.ecdc"), std::vector<uint8_t>(data, data + size));
  encodec_audio* decoded = nullptr;
  ASSERT_EQ(encodec_session_decompress(s, data, size, &decoded), MUSICGEN_OK) << musicgen_last_error();
  const mg::AudioBuffer streamed = mg::read_audio(dir + "/s.wav");
  ASSERT_EQ(streamed.num_channels(), encodec_audio_channels(decoded));
  ASSERT_EQ(streamed.num_frames(), encodec_audio_frames(decoded));
  double worst = 0;
  for (int c = 0; c < streamed.num_channels(); ++c)
    for (int64_t t = 0; t < streamed.num_frames(); ++t)
      worst = std::max(worst, double(std::fabs(streamed.channels[size_t(c)][size_t(t)] -
                                                encodec_audio_channel_data_const(decoded, c)[t])));
  EXPECT_LE(worst, 1e-5);
  encodec_audio_free(decoded);
  encodec_bytes_free(data);
  encodec_audio_free(audio);
  encodec_session_free(s);
  encodec_model_free(em);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, EncodecToolStream,
                         ::testing::Values("encodec_24khz_tiny", "encodec_32khz_tiny", "encodec_48khz_tiny"),
                         [](const auto& info) { return std::string(info.param).substr(8, 5); });

TEST(EncodecToolStreamConvert, SameSamplesAsTheInMemoryPath) {
  const std::string dir = mgtest::test_case_dir(), in = fixture(dir);
  for (const auto& [rate, channels] : std::vector<std::pair<int, int>>{{32000, 1}, {24000, 2}, {44100, 1}}) {
    const std::string out = dir + "/c.wav";
    const mgtest::RunResult r = mgtest::run_command(
        kTool, "convert " + in + " " + out + " -s float -r " + std::to_string(rate) + " -c " + std::to_string(channels));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    encodec_audio* a = nullptr;
    encodec_audio* b = nullptr;
    ASSERT_EQ(encodec_audio_read(in.c_str(), &a), MUSICGEN_OK);
    ASSERT_EQ(encodec_audio_convert(a, rate, channels, &b), MUSICGEN_OK);
    const mg::AudioBuffer got = mg::read_audio(out);
    ASSERT_EQ(got.num_channels(), channels);
    ASSERT_EQ(got.num_frames(), encodec_audio_frames(b));
    for (int c = 0; c < channels; ++c)
      EXPECT_TRUE(std::equal(got.channels[size_t(c)].begin(), got.channels[size_t(c)].end(),
                             encodec_audio_channel_data_const(b, c)))
          << rate << " Hz, " << channels << " channels: channel " << c << " differs";
    encodec_audio_free(a);
    encodec_audio_free(b);
  }
}

// 20 minutes of 24 kHz audio (a sparse WAV: a quiet saw, then zeros) through compress and
// decompress with the tiny model, and a convert: the tool's peak RSS grows by less than
// kStreamingGrowthMb over the same commands on 10 seconds (tool_peak_rss.h says why a difference:
// a CUDA build holds ~215 MB of libraries that a CPU build does not). The whole-file path grew by
// ~250 MB for 20 minutes and 1.5 GB for 2 h. Under AddressSanitizer the long file is 2 minutes and
// the memory is not checked (tool_peak_rss.h).
TEST(EncodecToolStreamMemory, TwentyMinutesStayBounded) {
  const std::string dir = mgtest::test_case_dir(), in = dir + "/long.wav", in_short = dir + "/short.wav";
  const uint32_t minutes = mgtest::kPeakRssIsMeaningful ? 20u : 2u;
  const uint32_t bytes = minutes * 60u * 24000u * 2u, short_bytes = 10u * 24000u * 2u;
  mgtest::write_wav_file(in, 24000, bytes, 480000, 44 + int64_t(bytes));
  mgtest::write_wav_file(in_short, 24000, short_bytes, 480000, 44 + int64_t(short_bytes));
  const std::string m = model("encodec_24khz_tiny");
  const mgtest::ToolPeaks base = mgtest::encodec_tool_peaks(kTool, m, in_short, dir + "/short", {"-t", "1"});
  const mgtest::ToolPeaks big = mgtest::encodec_tool_peaks(kTool, m, in, dir + "/long", {"-t", "1"});
  for (const auto& [name, b, l] : {std::tuple{"compress", base.compress, big.compress},
                                   std::tuple{"decompress", base.decompress, big.decompress},
                                   std::tuple{"convert", base.convert, big.convert}}) {
    ASSERT_EQ(b.exit_code, 0) << name;
    ASSERT_EQ(l.exit_code, 0) << name;
    std::printf("%s: peak RSS %ld MB for 10 s, %ld MB for %u min\n", name, b.peak_mb, l.peak_mb, minutes);
    if (mgtest::kPeakRssIsMeaningful) EXPECT_LT(l.peak_mb - b.peak_mb, mgtest::kStreamingGrowthMb) << name;
  }
  encodec_ecdc_info info;
  ASSERT_EQ(encodec_ecdc_read_info((dir + "/long.ecdc").c_str(), &info), MUSICGEN_OK);
  EXPECT_EQ(info.audio_length, int64_t(bytes / 2));
}

}  // namespace
