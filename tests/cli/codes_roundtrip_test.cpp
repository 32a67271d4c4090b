// Generated codes are first-class: `musicgen-cli --codes-out x.ecdc` writes the codes it generated,
// and both `encodec-tool decompress x.ecdc --model <the MusicGen folder>` and `musicgen-cli
// --from-codes x.ecdc` turn them into the audio the normal generation of that seed gives.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "codec/audio_file.h"
#include "test_util.h"

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kTool = std::string(MG_BINARY_DIR) + "/tools/encodec-tool/encodec-tool";
const std::string kModel = mgtest::data_dir() + "/models/musicgen_tiny";
// No normalisation: encodec-tool writes the decoder's output as it is, so the generation must too.
const std::string kGen = "-q --model " + kModel + " -p \"deep house\" -d 0.6 --seed 11 --normalize none";

void expect_ok(const mgtest::RunResult& r, const std::string& what) {
  ASSERT_EQ(r.exit_code, 0) << what << ":\n" << r.out << r.err;
}

void expect_same_audio(const std::string& a, const std::string& b) {
  const mg::AudioBuffer x = mg::read_audio(a), y = mg::read_audio(b);
  EXPECT_EQ(x.sample_rate, y.sample_rate);
  ASSERT_EQ(x.num_channels(), y.num_channels());
  ASSERT_EQ(x.num_frames(), y.num_frames());
  EXPECT_EQ(x.channels, y.channels) << a << " and " << b << " differ";
}

}  // namespace

TEST(CodesRoundtrip, CodesOutDecodesToTheGeneratedAudio) {
  const std::string dir = mgtest::test_case_dir();
  const std::string plain = dir + "/plain.wav", with_codes = dir + "/with-codes.wav", ecdc = dir + "/x.ecdc";
  expect_ok(mgtest::run_command(kCli, kGen + " -o " + plain), "plain generation");
  expect_ok(mgtest::run_command(kCli, kGen + " --codes-out " + ecdc + " -o " + with_codes), "--codes-out");
  ASSERT_TRUE(std::filesystem::exists(ecdc));
  expect_same_audio(with_codes, plain);

  // encodec-tool, given the MusicGen snapshot: its codec is EnCodec 32 kHz, the name in the file.
  const std::string via_tool = dir + "/via-tool.wav";
  expect_ok(mgtest::run_command(kTool, "decompress " + ecdc + " " + via_tool + " --model " + kModel), "decompress");
  expect_same_audio(via_tool, plain);

  // musicgen-cli decodes the file without generating.
  const std::string via_cli = dir + "/via-cli.wav";
  expect_ok(mgtest::run_command(kCli, "-q --model " + kModel + " --normalize none --from-codes " + ecdc + " -o " + via_cli),
            "--from-codes");
  expect_same_audio(via_cli, plain);

  const mgtest::RunResult info = mgtest::run_command(kTool, "info " + ecdc);
  expect_ok(info, "info");
  EXPECT_NE(info.out.find("encodec_32khz"), std::string::npos) << info.out;
}

TEST(CodesRoundtrip, FromCodesKeepsTheNormalisationOfAGeneration) {
  const std::string dir = mgtest::test_case_dir();
  const std::string gen = "-q --model " + kModel + " -p techno -d 0.4 --seed 5";
  const std::string plain = dir + "/plain.wav", ecdc = dir + "/t.ecdc", back = dir + "/back.wav";
  expect_ok(mgtest::run_command(kCli, gen + " --codes-out " + ecdc + " -o " + plain), "--codes-out");
  expect_ok(mgtest::run_command(kCli, "-q --model " + kModel + " --from-codes " + ecdc + " -o " + back), "--from-codes");
  expect_same_audio(back, plain);
}

TEST(CodesRoundtrip, BadCodesOptionsAreClearErrors) {
  const std::string dir = mgtest::test_case_dir();
  mgtest::RunResult r = mgtest::run_command(kCli, "-q --model " + kModel + " -p x --codes-out " + dir + "/x.wav -o " +
                                                      dir + "/o.wav");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("--codes-out takes an .ecdc"), std::string::npos) << r.out << r.err;
  r = mgtest::run_command(kCli, "-q --model " + kModel + " --from-codes " + dir + "/missing.ecdc -o " + dir + "/o.wav");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("missing.ecdc"), std::string::npos) << r.out << r.err;
}
