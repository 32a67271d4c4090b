// encodec-tool on 2 hours of 24 kHz audio (label slow: a few minutes with the tiny model on two
// cores): compress, decompress and convert stream their files, so the tool's peak resident memory
// (measured in the child, tests/tool_peak_rss.h) stays under 100 MB; the whole-file path needed
// 1.5 GB to compress and 2.65 GB to convert such a file (docs/PERFORMANCE.md). The input is a
// sparse WAV: its 2 hours of samples take no disk. The outputs are FLAC (zeros compress to little).
#include <gtest/gtest.h>

#include <string>

#include "encodec.h"
#include "test_util.h"
#include "tool_peak_rss.h"

namespace {

const std::string kTool = std::string(MG_BINARY_DIR) + "/tools/encodec-tool/encodec-tool";

TEST(EncodecToolLong, TwoHoursStayBounded) {
  const std::string dir = mgtest::test_case_dir(), in = dir + "/two_hours.wav";
  const uint32_t bytes = 2u * 3600u * 24000u * 2u;
  mgtest::write_wav_file(in, 24000, bytes, 480000, 44 + int64_t(bytes));
  const std::string m = mgtest::data_dir() + "/models/encodec_24khz_tiny";
  const mgtest::PeakRun c = mgtest::run_peak_rss(kTool, {"compress", in, dir + "/long.ecdc", "-m", m});
  ASSERT_EQ(c.exit_code, 0);
  EXPECT_LT(c.peak_mb, 100) << "compress";
  encodec_ecdc_info info;
  ASSERT_EQ(encodec_ecdc_read_info((dir + "/long.ecdc").c_str(), &info), MUSICGEN_OK);
  EXPECT_EQ(info.audio_length, int64_t(bytes / 2));
  const mgtest::PeakRun d = mgtest::run_peak_rss(kTool, {"decompress", dir + "/long.ecdc", dir + "/long.flac", "-m", m});
  ASSERT_EQ(d.exit_code, 0);
  EXPECT_LT(d.peak_mb, 100) << "decompress";
  const mgtest::PeakRun v = mgtest::run_peak_rss(kTool, {"convert", in, dir + "/long32k.flac", "-r", "32000"});
  ASSERT_EQ(v.exit_code, 0);
  EXPECT_LT(v.peak_mb, 100) << "convert";
}

}  // namespace
