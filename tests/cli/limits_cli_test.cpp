// Hostile configs and options reach the tools as clear errors: exit status 1 and a message naming
// what is wrong, never a signal, a hang or a silent clamp (docs/LIMITS.md lists each row).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kTool = std::string(MG_BINARY_DIR) + "/tools/encodec-tool/encodec-tool";
const std::string kTiny = mgtest::data_dir() + "/models/musicgen_tiny";

// A copy of the tiny model whose config.json has `key` (in `section`) set to `value`; the other
// files are links to the committed ones.
std::string hostile_model(const std::string& name, const std::string& section, const std::string& key,
                          const nlohmann::json& value) {
  const fs::path dir = fs::path(mgtest::temp_dir()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(kTiny))
    if (e.path().filename() != "config.json") fs::create_symlink(fs::absolute(e.path()), dir / e.path().filename());
  nlohmann::json j = nlohmann::json::parse(std::ifstream(kTiny + "/config.json"));
  j[section][key] = value;
  std::ofstream(dir / "config.json") << j.dump(2);
  return dir.string();
}

// Runs musicgen-cli and expects exit 1 (not a signal) with `message` on stderr.
void expect_cli_error(const std::string& args, const std::string& message) {
  const mgtest::RunResult r = mgtest::run_command(kCli, args);
  EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
}

TEST(LimitsCli, HostileConfigs) {
  const std::string out = " -d 0.2 -q -o " + mgtest::temp_dir() + "/limits.wav";
  for (const char* v : {"0", "-1", "-2147483648"})
    expect_cli_error("--model " + hostile_model("limits_codebooks", "decoder", "num_codebooks", std::stoi(v)) + out,
                     "key 'decoder.num_codebooks' in ");
  expect_cli_error("--model " + hostile_model("limits_heads", "decoder", "num_attention_heads", 0) + out,
                   "key 'decoder.num_attention_heads' in ");
  const std::string sr = hostile_model("limits_rate", "audio_encoder", "sampling_rate", 2147483647);
  expect_cli_error("--model " + sr + out, "key 'audio_encoder.sampling_rate' in " + sr + "/config.json: must be in [1, 384000], found 2147483647");
}

}  // namespace
