// encodec-tool convert, run as a user would: the built binary, real files, exit codes, and the
// promise that a failed run leaves no output file.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kTool = MG_BINARY_DIR "/tools/encodec-tool/encodec-tool";

using mgtest::RunResult;
using mgtest::slurp;

RunResult run_tool(const std::string& args) { return mgtest::run_command(kTool, args); }

class EncodecToolConvert : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kTool)) << kTool << " is not built (cmake --build <dir> --target encodec-tool)";
    dir_ = mgtest::test_case_dir();
  }
  std::string dir_;
};

TEST_F(EncodecToolConvert, SharedMp3To32kMonoWav) {
  const std::string audio = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(audio);
  const std::string in = audio + "/bach.mp3", out = dir_ + "/bach-32k.wav";
  const RunResult r = run_tool("convert '" + in + "' '" + out + "' --rate 32000 --channels 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const mg::AudioBuffer got = mg::read_audio(out);
  const mg::AudioBuffer expected = mg::convert_audio(mg::read_audio(in), 32000, 1);
  EXPECT_EQ(got.sample_rate, 32000);
  EXPECT_EQ(got.num_channels(), 1);
  EXPECT_EQ(got.num_frames(), expected.num_frames());  // julius's floor(float32(32000 * n / 44100))
  // The default subtype is 16-bit PCM: the samples are the library's, rounded to 1/32768.
  EXPECT_LE(mgtest::max_abs_diff(got.channels[0], expected.channels[0]), 1.0 / 32768);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "a temporary file was left";
}

TEST_F(EncodecToolConvert, OptionsReachTheWriter) {
  const std::string audio = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(audio);
  const std::string out = dir_ + "/drums.flac";
  const RunResult r =
      run_tool("convert '" + audio + "/sep_drums_1.mp3' '" + out + "' -r 48000 -c 2 --subtype pcm24");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const mg::AudioBuffer got = mg::read_audio(out);
  EXPECT_EQ(got.sample_rate, 48000);
  EXPECT_EQ(got.num_channels(), 2);
  EXPECT_EQ(got.channels[0], got.channels[1]);  // mono -> stereo copies
}

TEST_F(EncodecToolConvert, MissingInputFailsAndWritesNothing) {
  const std::string out = dir_ + "/out.wav";
  const RunResult r = run_tool("convert '" + dir_ + "/absent.mp3' '" + out + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("absent.mp3"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(EncodecToolConvert, BadRequestsFailAndWriteNothing) {
  // A real input, so only the request is wrong: an unknown format, float in FLAC, 3 channels from stereo.
  const std::string in = dir_ + "/in.wav";
  mg::AudioBuffer stereo = mg::AudioBuffer::zeros(16000, 2, 1600);
  stereo.channels[0][10] = 0.5f;
  mg::write_audio(in, stereo);
  for (const std::string& args : {"convert '" + in + "' '" + dir_ + "/o.xyz'",
                                  "convert '" + in + "' '" + dir_ + "/o.flac' --subtype float",
                                  "convert '" + in + "' '" + dir_ + "/o.wav' --channels 3",
                                  "convert '" + in + "' '" + dir_ + "/o.wav' --subtype pcm8",
                                  "convert '" + in + "' '" + dir_ + "/o.wav' --rate 0"}) {
    const RunResult r = run_tool(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_FALSE(r.err.empty()) << args;
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "only in.wav may remain";
}

TEST_F(EncodecToolConvert, HelpExitsZero) {
  RunResult r = run_tool("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("convert"), std::string::npos) << r.out;
  r = run_tool("convert --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--rate"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--subtype"), std::string::npos) << r.out;
  EXPECT_NE(run_tool("").exit_code, 0);  // no subcommand
}

}  // namespace
