// encodec-tool compress / decompress / roundtrip / info, run as a user would: the built binary on
// the tiny models, real files, exit codes, messages, and the promise that a failed run leaves no
// output file behind.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "codec/audio_file.h"
#include "codec/ecdc.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kTool = MG_BINARY_DIR "/tools/encodec-tool/encodec-tool";

std::string model(const std::string& name) { return mgtest::data_dir() + "/models/" + name; }

using mgtest::RunResult;
using mgtest::slurp;

RunResult run_tool(const std::string& args) { return mgtest::run_command(kTool, args); }

class EncodecToolCodec : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kTool)) << kTool << " is not built (cmake --build <dir> --target encodec-tool)";
    dir_ = mgtest::test_case_dir();
    // 0.3 s of a 44.1 kHz stereo chirp-ish signal: not the model's rate nor channel count.
    mg::AudioBuffer b = mg::AudioBuffer::zeros(44100, 2, 13230);
    for (int64_t i = 0; i < b.num_frames(); ++i) {
      b.channels[0][size_t(i)] = 0.4f * float(std::sin(0.03 * double(i) + 1e-6 * double(i * i)));
      b.channels[1][size_t(i)] = 0.3f * float(std::sin(0.05 * double(i)));
    }
    wav_ = dir_ + "/in.wav";
    mg::write_audio(wav_, b);
  }
  size_t files() const { return size_t(std::distance(fs::directory_iterator(dir_), fs::directory_iterator())); }
  std::string dir_, wav_;
};

// --version says what this machine's backends run (a user's first question when it is slow).
TEST(EncodecToolVersion, PrintsTheSystemInfo) {
  const RunResult r = run_tool("--version");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("encodec-tool 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("BLAS = OpenBLAS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CUDA = "), std::string::npos) << r.out;
}

// Meta's `encodec` picks the decoding model from the file; so does decompress without --model:
// weights/<the file's model> under the working directory (not the compress default, 24 kHz).
TEST_F(EncodecToolCodec, DecompressDefaultsToTheModelNamedInTheFile) {
  const std::string ecdc = dir_ + "/in.ecdc", out = dir_ + "/out.wav";
  RunResult r = run_tool("compress '" + wav_ + "' '" + ecdc + "' --model '" + model("encodec_32khz_tiny") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string work = dir_ + "/work";
  fs::create_directories(work + "/weights");
  fs::create_directory_symlink(model("encodec_32khz_tiny"), work + "/weights/encodec_32khz");
  const fs::path cwd = fs::current_path();
  fs::current_path(work);
  r = run_tool("decompress '" + ecdc + "' '" + out + "'");
  const RunResult r24 = run_tool("decompress '" + ecdc + "' '" + dir_ + "/other.wav' --model encodec_24khz");
  fs::current_path(cwd);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(mg::read_audio(out).sample_rate, 32000);
  EXPECT_NE(r24.exit_code, 0) << "an explicit --model still wins (and is missing here)";
}

TEST_F(EncodecToolCodec, CompressInfoDecompress24k) {
  const std::string ecdc = dir_ + "/in.ecdc", out = dir_ + "/out.wav";
  RunResult r = run_tool("compress '" + wav_ + "' '" + ecdc + "' -b 3 --model '" + model("encodec_24khz_tiny") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string bytes = slurp(ecdc);
  const mg::EcdcHeader h = mg::ecdc_read_header(std::vector<uint8_t>(bytes.begin(), bytes.end()));
  EXPECT_EQ(h.model, "encodec_24khz");
  EXPECT_EQ(h.audio_length, 7200);  // 13230 samples at 44.1 kHz -> 24 kHz
  EXPECT_EQ(h.num_codebooks, 4);

  r = run_tool("info '" + ecdc + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("encodec_24khz"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("7200 samples"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 kbps"), std::string::npos) << r.out;

  r = run_tool("decompress '" + ecdc + "' '" + out + "' --model '" + model("encodec_24khz_tiny") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const mg::AudioBuffer y = mg::read_audio(out);
  EXPECT_EQ(y.sample_rate, 24000);
  EXPECT_EQ(y.num_channels(), 1);
  EXPECT_EQ(y.num_frames(), 7200);
  EXPECT_EQ(files(), 3u) << "a temporary file was left";
}

TEST_F(EncodecToolCodec, EnvironmentModelAndRoundtrip48k) {
  const std::string out = dir_ + "/rt.flac";
  const RunResult r = run_tool("roundtrip '" + wav_ + "' '" + out + "' -b 6");
  EXPECT_NE(r.exit_code, 0) << "no model given and weights/encodec_24khz should not exist in the test tree";
  const std::string env = "ENCODEC_MODEL='" + model("encodec_48khz_tiny") + "' ";
  const std::string cmd = env + "'" + kTool + "' roundtrip '" + wav_ + "' '" + out + "' -b 6 >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const mg::AudioBuffer y = mg::read_audio(out);
  EXPECT_EQ(y.sample_rate, 48000);
  EXPECT_EQ(y.num_channels(), 2);
  EXPECT_EQ(y.num_frames(), 14400);
}

TEST_F(EncodecToolCodec, MusicGenFolderAndThirtyTwoKhz) {
  const std::string ecdc = dir_ + "/mg.ecdc", out = dir_ + "/mg.wav";
  RunResult r = run_tool("compress '" + wav_ + "' '" + ecdc + "' --model '" + model("musicgen_tiny") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_tool("info '" + ecdc + "'");
  EXPECT_NE(r.out.find("encodec_32khz"), std::string::npos) << r.out;
  r = run_tool("decompress '" + ecdc + "' '" + out + "' --model '" + model("musicgen_tiny") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(mg::read_audio(out).sample_rate, 32000);
}

TEST_F(EncodecToolCodec, ErrorsAreClearAndLeaveNoOutput) {
  const std::string ecdc = dir_ + "/x.ecdc", out = dir_ + "/x.wav";
  // Missing model folder.
  RunResult r = run_tool("compress '" + wav_ + "' '" + ecdc + "' --model '" + dir_ + "/nope'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  // Wrong model type: a config.json of another model.
  fs::create_directories(dir_ + "/t5");
  std::ofstream(dir_ + "/t5/config.json") << "{\"model_type\": \"t5\", \"d_model\": 512}";
  r = run_tool("compress '" + wav_ + "' '" + ecdc + "' --model '" + dir_ + "/t5'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("encodec"), std::string::npos) << r.err;
  // A bandwidth the model lacks: the message lists the valid ones.
  r = run_tool("compress '" + wav_ + "' '" + ecdc + "' -b 5 --model '" + model("encodec_24khz_tiny") + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("1.5, 3, 6, 12, 24"), std::string::npos) << r.err;
  // Missing input.
  r = run_tool("compress '" + dir_ + "/missing.wav' '" + ecdc + "' --model '" + model("encodec_24khz_tiny") + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(fs::exists(ecdc));

  // Corrupt .ecdc files: bad magic, truncated body, a model that is not the loaded one.
  ASSERT_EQ(run_tool("compress '" + wav_ + "' '" + ecdc + "' --model '" + model("encodec_24khz_tiny") + "'").exit_code, 0);
  const std::string good = slurp(ecdc);
  std::ofstream(dir_ + "/magic.ecdc", std::ios::binary) << "ECDX" << good.substr(4);
  std::ofstream(dir_ + "/trunc.ecdc", std::ios::binary) << good.substr(0, good.size() - 3);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"magic.ecdc", "bad magic"}, {"trunc.ecdc", "truncated"}};
  for (const auto& [file, msg] : bad) {
    r = run_tool("decompress '" + dir_ + "/" + file + "' '" + out + "' --model '" + model("encodec_24khz_tiny") + "'");
    EXPECT_NE(r.exit_code, 0) << file;
    EXPECT_NE(r.err.find(msg), std::string::npos) << file << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << file;
  }
  r = run_tool("decompress '" + ecdc + "' '" + out + "' --model '" + model("encodec_32khz_tiny") + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("written with encodec_24khz"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  r = run_tool("info '" + dir_ + "/magic.ecdc'");
  EXPECT_NE(r.exit_code, 0);
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "temporary file left: " << e.path();
}

TEST_F(EncodecToolCodec, HelpReadsLikeATool) {
  for (const char* sub : {"compress", "decompress", "roundtrip", "info"}) {
    const RunResult r = run_tool(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << sub;
  }
  const RunResult r = run_tool("--help");
  for (const char* sub : {"compress", "decompress", "roundtrip", "info", "convert"})
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
}

}  // namespace
