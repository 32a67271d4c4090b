// musicgen-cli end to end on the tiny model, and every bad input the issue names: each must exit
// non-zero with a message that says what is wrong, and never leave an output file behind.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "codec/audio_file.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kModel = mgtest::data_dir() + "/models/musicgen_tiny";

struct CliRun {
  int code;
  std::string out;
};

CliRun run(const std::string& args) {
  std::string cmd = kCli + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 512> buf;
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

TEST(MusicgenCli, GeneratesAWavWithTheTinyModel) {
  const std::string out = mgtest::temp_dir() + "/electro.wav";
  CliRun r = run("--model " + kModel + " --prompt electro -d 1 --seed 7 -o " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  mg::AudioBuffer a = mg::read_audio(out);
  EXPECT_EQ(a.sample_rate, 32000);
  EXPECT_EQ(a.num_channels(), 1);
  EXPECT_EQ(a.num_frames(), 50 * 640);
  // Not a TTY here: no progress bar escape sequences in the output.
  EXPECT_EQ(r.out.find('\r'), std::string::npos) << r.out;
}

TEST(MusicgenCli, SameSeedGivesTheSameAudio) {
  const std::string a = mgtest::temp_dir() + "/a.wav", b = mgtest::temp_dir() + "/b.wav";
  ASSERT_EQ(run("-q --model " + kModel + " -p techno -d 0.5 --seed 3 -o " + a).code, 0);
  ASSERT_EQ(run("-q --model " + kModel + " -p techno -d 0.5 --seed 3 -o " + b).code, 0);
  EXPECT_EQ(mg::read_audio(a).channels, mg::read_audio(b).channels);
}

TEST(MusicgenCli, HelpShowsDefaults) {
  CliRun r = run("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* s : {"--prompt", "--duration", "=10", "--top-k", "=250", "--cfg", "=3", "--device", "--normalize"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

void expect_error(const std::string& args, const std::string& needle) {
  const std::string out = mgtest::temp_dir() + "/never.wav";
  fs::remove(out);
  CliRun r = run(args + " -o " + out);
  EXPECT_NE(r.code, 0) << args;
  EXPECT_NE(r.out.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.out;
  EXPECT_FALSE(fs::exists(out)) << args;
}

TEST(MusicgenCli, BadInputsAreClearErrors) {
  expect_error("--model " + kModel + " --bogus-flag", "bogus-flag");
  expect_error("--model " + kModel + " -d 0", "--duration must be > 0");
  expect_error("--model " + kModel + " -d -3", "--duration must be > 0");
  expect_error("--model " + kModel + " -d 31", "above the 30");
  expect_error("--model " + kModel + " --top-k 0", "--top-k 0");
  expect_error("--model /nonexistent/model", "weights/download.sh");
  // A folder that is not a MusicGen snapshot (an EnCodec one) is refused by name.
  expect_error("--model " + mgtest::data_dir() + "/configs", "config");
}

TEST(MusicgenCli, UnwritableOutputIsRefusedBeforeGenerating) {
  CliRun r = run("--model " + kModel + " -d 0.5 -o /nonexistent-dir/out.wav");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("not writable"), std::string::npos) << r.out;
  r = run("--model " + kModel + " -d 0.5 -o " + mgtest::temp_dir() + "/out.xyz");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find(".wav"), std::string::npos) << r.out;
}

}  // namespace
