// Where the tools may write, run as a user would (encodec-tool convert and compress): a device, a
// FIFO or a dangling link at the output path is refused with a non-zero exit and left as it was; a
// link to a regular file is followed; a planted link at the old fixed .ecdc temporary name is not;
// a full disk (injected through MUSICGEN_TEST_FAIL_WRITE_AFTER) fails with the reason and leaves
// nothing; two runs writing one path end with one complete file; a run killed (-9) mid-write
// leaves no file at the output path, only a temporary that a later write removes.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "codec/audio_file.h"
#include "test_util.h"

namespace fs = std::filesystem;
using mgtest::RunResult;
using mgtest::slurp;

namespace {

const std::string kTool = MG_BINARY_DIR "/tools/encodec-tool/encodec-tool";

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class OutputPaths : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kTool)) << kTool << " is not built (cmake --build <dir> --target encodec-tool)";
    dir_ = mgtest::test_case_dir();
    in_ = dir_ + "/in.wav";
    mg::AudioBuffer b = mg::AudioBuffer::zeros(24000, 1, 12000);
    for (size_t i = 0; i < b.channels[0].size(); ++i) b.channels[0][i] = float((i % 100) / 200.0);
    mg::write_audio(in_, b);
  }
  RunResult convert(const std::string& out) { return mgtest::run_command(kTool, "convert '" + in_ + "' '" + out + "'"); }
  std::string dir_, in_;
};

TEST_F(OutputPaths, DeviceFifoAndDanglingLinkAreRefused) {
  RunResult r = convert("/dev/full");
  EXPECT_NE(r.exit_code, 0);
  // /dev/full has no extension: refused by name or by kind, never written.
  fs::create_symlink("/dev/null", dir_ + "/null.wav");
  r = convert(dir_ + "/null.wav");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("symbolic link to a character device"), std::string::npos) << r.err;

  ASSERT_EQ(mkfifo((dir_ + "/pipe.wav").c_str(), 0600), 0);
  r = convert(dir_ + "/pipe.wav");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("FIFO"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_fifo(dir_ + "/pipe.wav"));

  fs::create_symlink("nowhere/x.wav", dir_ + "/dangling.wav");
  r = convert(dir_ + "/dangling.wav");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("does not resolve"), std::string::npos) << r.err;
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"dangling.wav", "in.wav", "null.wav", "pipe.wav"}));
  struct stat st {};
  ASSERT_EQ(stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST_F(OutputPaths, LinkToARegularFileIsFollowed) {
  fs::create_directory(dir_ + "/real");
  std::ofstream(dir_ + "/real/out.wav") << "old";
  fs::create_symlink("real/out.wav", dir_ + "/link.wav");
  const RunResult r = convert(dir_ + "/link.wav");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(dir_ + "/link.wav"));
  EXPECT_NEAR(mg::read_audio(dir_ + "/real/out.wav").seconds(), 0.5, 1e-3);  // the whole input
  EXPECT_EQ(listing(dir_ + "/real"), std::vector<std::string>{"out.wav"});
}

// The .ecdc writer once used a fixed temporary name; a link planted there must not be written
// through.
TEST_F(OutputPaths, PlantedLinkAtTheOldEcdcTemporaryNameIsNotFollowed) {
  const std::string victim = mgtest::temp_dir() + "/ecdc-victim";
  std::ofstream(victim) << "precious";
  fs::create_symlink(victim, dir_ + "/.out.ecdc.tmp-encodec");
  const RunResult r = mgtest::run_command(
      kTool, "compress '" + in_ + "' '" + dir_ + "/out.ecdc' --model '" + mgtest::data_dir() + "/models/encodec_24khz_tiny'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slurp(victim), "precious");
  EXPECT_EQ(slurp(dir_ + "/out.ecdc").substr(0, 4), "ECDC");
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{".out.ecdc.tmp-encodec", "in.wav", "out.ecdc"}));
}

TEST_F(OutputPaths, FullDiskFailsWithTheReasonAndLeavesNothing) {
  for (const std::string ext : {".wav", ".flac", ".ogg", ".mp3"}) {
    setenv("MUSICGEN_TEST_FAIL_WRITE_AFTER", "1000", 1);
    const RunResult r = convert(dir_ + "/out" + ext);
    unsetenv("MUSICGEN_TEST_FAIL_WRITE_AFTER");
    EXPECT_NE(r.exit_code, 0) << ext;
    EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << ext << ": " << r.err;
    EXPECT_EQ(listing(dir_), std::vector<std::string>{"in.wav"}) << ext;
  }
}

// .ecdc used to say "error writing" with no reason.
TEST_F(OutputPaths, FullDiskWritingAnEcdcFailsWithTheReasonAndLeavesNothing) {
  const std::string model = mgtest::data_dir() + "/models/encodec_24khz_tiny";
  for (const char* after : {"0", "10", "100"}) {
    setenv("MUSICGEN_TEST_FAIL_WRITE_AFTER", after, 1);
    const RunResult r = mgtest::run_command(kTool, "compress '" + in_ + "' '" + dir_ + "/out.ecdc' --model '" + model + "'");
    unsetenv("MUSICGEN_TEST_FAIL_WRITE_AFTER");
    EXPECT_EQ(r.exit_code, 1) << after << ": " << r.err;
    EXPECT_NE(r.err.find("cannot write '" + dir_ + "/out.ecdc': No space left on device"), std::string::npos)
        << after << ": " << r.err;
    EXPECT_EQ(listing(dir_), std::vector<std::string>{"in.wav"}) << after;
  }
}

TEST_F(OutputPaths, TwoRunsWritingOnePathEndWithOneCompleteFile) {
  const std::string out = dir_ + "/out.flac", cmd = "'" + kTool + "' convert '" + in_ + "' '" + out + "'";
  const RunResult r = mgtest::run_command(
      "bash", "-c \"for i in 1 2 3 4 5; do " + cmd + " & " + cmd + " & wait; done\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(mg::read_audio(out).seconds(), 0.5, 1e-3);  // the whole input
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"in.wav", "out.flac"}));
}

}  // namespace

// kill -9 in the middle of a write (held there by MUSICGEN_TEST_STALL_WRITE_AFTER): no file at
// the output path, only the temporary, which a later write to that path removes once it is over
// an hour old (its age is set back here instead of waiting).
TEST_F(OutputPaths, KillDuringAWriteLeavesNoOutputAndACleanableTemporary) {
  const std::string out = dir_ + "/out.wav";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("MUSICGEN_TEST_STALL_WRITE_AFTER", "4096", 1);
    execl(kTool.c_str(), kTool.c_str(), "convert", in_.c_str(), out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string temp;
  for (int i = 0; i < 600 && temp.empty(); ++i) {  // up to 60 s for the tool to reach the stall
    for (const std::string& name : listing(dir_))
      if (name.rfind(".out.wav.musicgen-tmp-", 0) == 0 && fs::file_size(dir_ + "/" + name) >= 2048) temp = name;
    if (temp.empty()) usleep(100 * 1000);
  }
  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_FALSE(temp.empty()) << "the tool never reached the stalled write";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{temp, "in.wav"}));  // nothing at out.wav

  const fs::path stale = dir_ + "/" + temp;
  fs::last_write_time(stale, fs::last_write_time(stale) - std::chrono::hours(2));
  const RunResult r = convert(out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"in.wav", "out.wav"}));
  EXPECT_EQ(mg::read_audio(out).num_frames(), 16000);  // 0.5 s at the default model's 32 kHz
}
