// musicgen-cli train: clear errors for missing or empty data, a short run on the tiny model that
// writes a PEFT adapter which `musicgen-cli --lora` loads, and --resume continuing the run.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kTiny = mgtest::data_dir() + "/models/musicgen_tiny";

TEST(TrainCli, AnEmptyDataFolderIsAClearError) {
  const std::string dir = mgtest::test_case_dir();
  fs::create_directories(dir + "/empty");
  const auto r = mgtest::run_command(kCli, "train --model " + kTiny + " --data " + dir + "/empty --out " + dir + "/out");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("holds no audio files"), std::string::npos) << r.err;
}

TEST(TrainCli, AMissingDataFolderIsAClearError) {
  const std::string dir = mgtest::test_case_dir();
  const auto r = mgtest::run_command(kCli, "train --model " + kTiny + " --data " + dir + "/nowhere --out " + dir + "/out");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir + "/nowhere"), std::string::npos) << r.err;
}

TEST(TrainCli, BadNumbersAreRefusedByName) {
  const std::string dir = mgtest::test_case_dir();
  const auto r = mgtest::run_command(kCli, "train --model " + kTiny + " --data " + dir + " --out " + dir +
                                               "/out --rank 0");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("rank 0"), std::string::npos) << r.err;
}

TEST(TrainCli, TrainsResumesAndTheAdapterLoadsWithLora) {
  const std::string audio = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(audio);
  const std::string dir = mgtest::test_case_dir();
  fs::create_directories(dir + "/data");
  for (const char* f : {"electro_2.mp3", "electro_2.json", "bach.mp3"})
    fs::create_symlink(fs::path(audio) / f, fs::path(dir) / "data" / f);
  const std::string common = "train --model " + kTiny + " --data " + dir + "/data --out " + dir +
                             "/out --rank 4 --alpha 8 --segment 2 --batch 2 --threads 2 --log-every 1 --val 0.5";
  auto r = mgtest::run_command(kCli, common + " --steps 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("step 2/2  loss "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("validation loss"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("steps/s"), std::string::npos) << r.err;
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "checkpoint/trainer_state.bin"})
    EXPECT_TRUE(fs::exists(dir + "/out/" + f)) << f;

  r = mgtest::run_command(kCli, common + " --steps 3 --resume");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("from the cache"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step 3/3"), std::string::npos) << r.err;

  r = mgtest::run_command(kCli, "--model " + kTiny + " --lora " + dir + "/out -p \"electronic\" -d 0.5 -q -o " + dir +
                                    "/out.wav");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/out.wav"));
}

}  // namespace
