// musicgen-cli --lora / --lora-scale on the tiny model with the committed PEFT adapter: the adapter
// changes the audio, scale 0 gives the base model's file byte for byte, and the errors say what is
// wrong (docs/LIMITS.md, "LoRA adapters and training data").
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kModel = mgtest::data_dir() + "/models/musicgen_tiny";
const std::string kAdapter = mgtest::data_dir() + "/models/musicgen_tiny_lora";

mgtest::RunResult run(const std::string& model, const std::string& args) {
  return mgtest::run_command(kCli, "--model " + model + " -p \"80s pop\" -d 0.3 --greedy -q " + args);
}

}  // namespace

TEST(LoraCli, AdapterChangesTheAudioAndScaleZeroIsTheBase) {
  const std::string dir = mgtest::test_case_dir();
  ASSERT_EQ(run(kModel, "-o " + dir + "/base.wav").exit_code, 0);
  mgtest::RunResult r = run(kModel, "--lora " + kAdapter + " -o " + dir + "/lora.wav");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run(kModel, "--lora " + kAdapter + " --lora-scale 0 -o " + dir + "/zero.wav");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string base = mgtest::slurp(dir + "/base.wav");
  ASSERT_FALSE(base.empty());
  EXPECT_EQ(mgtest::slurp(dir + "/zero.wav"), base);
  EXPECT_NE(mgtest::slurp(dir + "/lora.wav"), base);
}

TEST(LoraCli, Errors) {
  const std::string out = "-o " + mgtest::test_case_dir() + "/x.wav";
  mgtest::RunResult r = run(kModel, "--lora /nonexistent-adapter " + out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("LoRA adapter folder '/nonexistent-adapter' does not exist"), std::string::npos) << r.err;
  r = run(kModel, "--lora-scale 0.5 " + out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--lora-scale needs --lora DIR"), std::string::npos) << r.err;
  r = run(kModel, "--lora " + kAdapter + " --lora-scale nan " + out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("lora_scale nan must be a finite number in [-100, 100]"), std::string::npos) << r.err;
  r = run(mgtest::data_dir() + "/models/musicgen_melody_tiny", "--lora " + kAdapter + " " + out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the model needs [4, 8]: the adapter was made for another model"), std::string::npos) << r.err;
  r = run(kModel, "--lora " + mgtest::data_dir() + "/models/musicgen_tiny " + out);  // a model, not an adapter
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("has no adapter_config.json"), std::string::npos) << r.err;
}
