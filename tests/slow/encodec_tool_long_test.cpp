// encodec-tool on 2 hours of 24 kHz audio (label slow: a few minutes with the tiny model on two
// cores): compress, decompress and convert stream their files, so the tool's peak resident memory
// (measured in the child, tests/tool_peak_rss.h) grows by less than kStreamingGrowthMb over the same
// commands on 10 seconds; the whole-file path needed 1.5 GB to compress and 2.65 GB to convert such
// a file (docs/PERFORMANCE.md). The input is a sparse WAV: its 2 hours of samples take no disk. The
// outputs are FLAC (zeros compress to little).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <tuple>

#include "encodec.h"
#include "test_util.h"
#include "tool_peak_rss.h"

namespace {

const std::string kTool = std::string(MG_BINARY_DIR) + "/tools/encodec-tool/encodec-tool";

TEST(EncodecToolLong, TwoHoursStayBounded) {
  const std::string dir = mgtest::test_case_dir(), in = dir + "/two_hours.wav", in_short = dir + "/short.wav";
  const uint32_t bytes = 2u * 3600u * 24000u * 2u, short_bytes = 10u * 24000u * 2u;
  mgtest::write_wav_file(in, 24000, bytes, 480000, 44 + int64_t(bytes));
  mgtest::write_wav_file(in_short, 24000, short_bytes, 480000, 44 + int64_t(short_bytes));
  const std::string m = mgtest::data_dir() + "/models/encodec_24khz_tiny";
  const mgtest::ToolPeaks base = mgtest::encodec_tool_peaks(kTool, m, in_short, dir + "/short");
  const mgtest::ToolPeaks big = mgtest::encodec_tool_peaks(kTool, m, in, dir + "/long");
  for (const auto& [name, b, l] : {std::tuple{"compress", base.compress, big.compress},
                                   std::tuple{"decompress", base.decompress, big.decompress},
                                   std::tuple{"convert", base.convert, big.convert}}) {
    ASSERT_EQ(b.exit_code, 0) << name;
    ASSERT_EQ(l.exit_code, 0) << name;
    std::printf("%s: peak RSS %ld MB for 10 s, %ld MB for 2 h\n", name, b.peak_mb, l.peak_mb);
    if (mgtest::kPeakRssIsMeaningful) EXPECT_LT(l.peak_mb - b.peak_mb, mgtest::kStreamingGrowthMb) << name;
  }
  encodec_ecdc_info info;
  ASSERT_EQ(encodec_ecdc_read_info((dir + "/long.ecdc").c_str(), &info), MUSICGEN_OK);
  EXPECT_EQ(info.audio_length, int64_t(bytes / 2));
}

}  // namespace
