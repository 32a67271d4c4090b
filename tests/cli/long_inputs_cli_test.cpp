// musicgen-cli reads only what the generation can use of an input file (docs/LIMITS.md): a
// 2-hour continuation is refused from its header before a sample is read (it used to take 4.3 GB
// and 14 s to be refused), a 2-hour melody is decoded for the generation's length only (it used to
// take 3.3 GB). The files are sparse: their 2 hours of samples take no disk.
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";

std::string two_hour_wav(const std::string& dir, const std::string& name) {
  const uint32_t bytes = 2u * 3600u * 24000u * 2u;
  const std::string path = dir + "/" + name;
  mgtest::write_wav_file(path, 24000, bytes, 96000, 44 + int64_t(bytes));
  return path;
}

}  // namespace

TEST(LongInputsCli, TwoHourContinuationIsRefusedFromItsHeader) {
  const std::string dir = mgtest::test_case_dir();
  const std::string in = two_hour_wav(dir, "prompt.wav"), out = dir + "/out.wav";
  const mgtest::RunResult r = mgtest::run_command(
      kCli, "-q --device cpu --model " + mgtest::data_dir() + "/models/musicgen_tiny -p x -d 1 --continue " + in +
                " -o " + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("its header says 7200 s, at most 3 s can be used here"), std::string::npos) << r.err;
}

TEST(LongInputsCli, TwoHourMelodyIsReadForTheGenerationOnly) {
  const std::string dir = mgtest::test_case_dir();
  const std::string in = two_hour_wav(dir, "tune.wav"), out = dir + "/out.wav";
  const mgtest::RunResult r = mgtest::run_command(
      kCli, "-q --device cpu --model " + mgtest::data_dir() + "/models/musicgen_melody_tiny -p x -d 0.5 --melody " +
                in + " -o " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}
