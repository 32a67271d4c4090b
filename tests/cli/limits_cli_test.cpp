// Hostile configs and options reach the tools as clear errors: exit status 1 and a message naming
// what is wrong, never a signal, a hang or a silent clamp (docs/LIMITS.md lists each row).
#include <gtest/gtest.h>

#include <filesystem>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "musicgen.h"
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

// Each refused before the model loads (or, for the threads, as the C API refuses them).
TEST(LimitsCli, MusicgenOptions) {
  const std::string base = "--model " + kTiny + " -q -o " + mgtest::temp_dir() + "/limits.wav ";
  expect_cli_error(base + "-d 0.2 --threads 100000", "--threads must be at most 1024 (0: all cores), found 100000");
  expect_cli_error(base + "-d 1e9", "--duration must be at most 3600 seconds (one hour), found 1e+09");
  expect_cli_error(base + "-d 0.2 --cfg nan", "--cfg must be in [0, 100], found nan");
  expect_cli_error(base + "-d 0.2 --cfg inf", "--cfg must be in [0, 100], found inf");
  expect_cli_error(base + "-d 0.2 --cfg 1e38", "--cfg must be in [0, 100], found 1e+38");
  expect_cli_error(base + "-d 0.2 --temperature nan", "--temperature must be in [0, 100], found nan");
  expect_cli_error(base + "-d 0.2 --temperature inf", "--temperature must be in [0, 100], found inf");
  expect_cli_error(base + "-d 0.2 --top-p nan", "--top-p must be in [0, 1], found nan");
  expect_cli_error(base + "-d 0.2 --seed 18446744073709551616",
                   "--seed must be an integer in [0, 18446744073709551615], found '18446744073709551616'");
  expect_cli_error(base + "-d 0.2 --seed -1", "--seed must be an integer in [0, 18446744073709551615], found '-1'");
  expect_cli_error(base + "-d 0.2 --drop-prompt", "--drop-prompt needs a prompt audio (--continue)");
  // The largest seed is a seed.
  EXPECT_EQ(mgtest::run_command(kCli, base + "-d 0.1 --greedy --seed 18446744073709551615").exit_code, 0);
}

TEST(LimitsCli, EncodecToolOptions) {
  const std::string dir = mgtest::temp_dir(), in = dir + "/limits_in.wav";
  ASSERT_EQ(mgtest::run_command(kCli, "--model " + kTiny + " -q -d 0.2 --greedy -o " + in).exit_code, 0);
  const std::string base = "roundtrip " + in + " " + dir + "/limits_out.wav -m " + mgtest::data_dir() +
                           "/models/encodec_24khz_tiny ";
  mgtest::RunResult r = mgtest::run_command(kTool, base + "-t 100000");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("n_threads must be at most 1024 (0: all cores), found 100000"), std::string::npos) << r.err;
  // Refused by the option checks, with the range in words (CLI11's own checks printed DBL_MAX in
  // 309 digits).
  const std::string wav = dir + "/limits_conv.wav";
  const std::vector<std::pair<std::string, std::string>> refused = {
      {base + "-b nan", "--bandwidth: must be a positive number of kbps, found 'nan'"},
      {base + "-b -1", "--bandwidth: must be a positive number of kbps, found '-1'"},
      {base + "-t -1", "--threads: must be at least 0 (0 = all cores), found '-1'"},
      {"convert " + in + " " + wav + " -r -5", "--rate: must be in [1000, 768000] Hz"},
      {"convert " + in + " " + wav + " -r 999999999", "--rate: must be in [1000, 768000] Hz"},
      {"convert " + in + " " + wav + " -c 0", "--channels: must be at least 1, found '0'"},
  };
  for (const auto& [args, message] : refused) {
    r = mgtest::run_command(kTool, args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_LT(r.exit_code, 128) << "a signal: " << args;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
    EXPECT_LT(r.err.size(), 200u) << args << "\n" << r.err;
  }
  EXPECT_FALSE(fs::exists(wav));
}

// --takes is bounded, and one -p prompt takes several takes (it used to work only with
// --prompts-file): take-1.wav, take-2.wav.
TEST(LimitsCli, TakesOfOnePrompt) {
  const std::string dir = mgtest::test_case_dir();
  const std::string base = "--model " + kTiny + " -q -d 0.1 --greedy -p x -o " + dir + "/take.wav ";
  expect_cli_error(base + "--takes 100000",
                   "--takes must be in [1, 64] (one batch: every take is generated at once), found 100000");
  expect_cli_error(base + "--takes 0", "--takes must be in [1, 64]");
  const mgtest::RunResult r = mgtest::run_command(kCli, base + "--takes 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_regular_file(dir + "/take-1.wav"));
  EXPECT_TRUE(fs::is_regular_file(dir + "/take-2.wav"));
}

// A copy of `model` with `file` replaced by `bytes` (the other files are links).
std::string damaged_model(const std::string& model, const std::string& name, const std::string& file,
                          const std::string& bytes) {
  const fs::path dir = fs::path(mgtest::temp_dir()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(model))
    if (e.path().filename() != file) fs::create_symlink(fs::absolute(e.path()), dir / e.path().filename());
  std::ofstream(dir / file, std::ios::binary) << bytes;
  return dir.string();
}

// `model`'s model.safetensors with the first value of the f32 tensor `tensor` set to `value`.
std::string safetensors_with(const std::string& model, const std::string& tensor, float value) {
  std::string b = mgtest::slurp(model + "/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  const nlohmann::json h = nlohmann::json::parse(b.substr(8, n));
  EXPECT_EQ(h.at(tensor).at("dtype"), "F32");
  const uint64_t at = 8 + n + h.at(tensor).at("data_offsets")[0].get<uint64_t>();
  std::memcpy(&b[at], &value, 4);
  return b;
}

// Damaged model files are refused at load with what is wrong and what to do: a NaN or infinite
// weight (it used to give a WAV of noise or silence), a spiece.model that is not one (it used to
// print SentencePiece's source line only).
TEST(LimitsCli, DamagedModelFiles) {
  const std::string out = " -p x -d 0.1 -q -o " + mgtest::temp_dir() + "/damaged.wav";
  const std::string w = "decoder.model.decoder.layers.0.fc1.weight";
  const std::string nan_model =
      damaged_model(kTiny, "limits_nan", "model.safetensors", safetensors_with(kTiny, w, std::nanf("")));
  expect_cli_error("--model " + nan_model + out, "tensor '" + w + "' in " + nan_model +
                                                     " holds nan at element 0: the weights are damaged");
  std::string garbage(3000, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = char((i * 7919 + 13) % 251);
  const std::string spm = damaged_model(kTiny, "limits_spm", "spiece.model", garbage);
  expect_cli_error("--model " + spm + out, "cannot load the tokenizer " + spm +
                                               "/spiece.model: it is not a valid SentencePiece model");

  const std::string codec = mgtest::data_dir() + "/models/encodec_24khz_tiny";
  const std::string inf_codec = damaged_model(codec, "limits_inf", "model.safetensors",
                                              safetensors_with(codec, "decoder.layers.0.conv.bias", HUGE_VALF));
  const std::string in = mgtest::temp_dir() + "/damaged_in.wav";
  mgtest::write_wav_file(in, 24000, 9600, 9600);
  const mgtest::RunResult r = mgtest::run_command(kTool, "compress " + in + " " + mgtest::temp_dir() +
                                                             "/damaged.ecdc -m " + inf_codec);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("tensor 'decoder.layers.0.conv.bias' in " + inf_codec + " holds inf at element 0"),
            std::string::npos)
      << r.err;
}

// The same limits at the C API, so that every front end gets them.
TEST(LimitsCli, CApi) {
  musicgen_model_params mp = musicgen_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  mp.n_threads = 100000;
  musicgen_model* m = nullptr;
  ASSERT_EQ(musicgen_model_load(kTiny.c_str(), &mp, &m), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(musicgen_last_error(), "n_threads must be at most 1024 (0: all cores), found 100000");
  mp.n_threads = 1;
  const std::string melody = mgtest::data_dir() + "/models/musicgen_melody_tiny";
  ASSERT_EQ(musicgen_model_load(melody.c_str(), &mp, &m), MUSICGEN_OK) << musicgen_last_error();
  musicgen_session_params sp = musicgen_session_default_params();
  sp.n_threads = 100000;
  musicgen_session* s = nullptr;
  EXPECT_EQ(musicgen_session_create(m, &sp, &s), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(musicgen_last_error(), "n_threads must be at most 1024 (0: all cores), found 100000");
  sp.n_threads = 1;
  ASSERT_EQ(musicgen_session_create(m, &sp, &s), MUSICGEN_OK);
  std::vector<float> chroma(50 * 12, 0.0f);
  chroma[3 * 12 + 5] = std::nanf("");
  auto refused = [&](void (*edit)(musicgen_generate_params&, const float*), const std::string& message) {
    musicgen_generate_params p = musicgen_generate_default_params();
    p.duration_s = 0.2f;
    edit(p, chroma.data());
    musicgen_audio out{};
    EXPECT_EQ(musicgen_session_generate(s, &p, &out), MUSICGEN_ERROR_INVALID_ARGUMENT) << message;
    EXPECT_EQ(std::string(musicgen_last_error()).rfind(message, 0), 0u) << musicgen_last_error();
  };
  refused([](musicgen_generate_params& p, const float*) { p.duration_s = 1e9f; },
          "duration must be at most 3600 seconds (one hour), found 1e+09");
  refused([](musicgen_generate_params& p, const float*) { p.guidance_scale = std::nanf(""); },
          "guidance_scale must be in [0, 100], found nan");
  refused([](musicgen_generate_params& p, const float*) { p.guidance_scale = 1e38f; },
          "guidance_scale must be in [0, 100], found 1e+38");
  refused([](musicgen_generate_params& p, const float*) { p.temperature = HUGE_VALF; },
          "temperature must be in [0, 100], found inf");
  refused([](musicgen_generate_params& p, const float*) { p.top_p = std::nanf(""); },
          "top_p must be in [0, 1], found nan");
  refused([](musicgen_generate_params& p, const float*) { p.drop_prompt = 1; },
          "drop_prompt needs a prompt audio (continuation): there is no prompt to drop");
  refused([](musicgen_generate_params& p, const float* c) { p.chroma = c; p.chroma_frames = 50; },
          "chroma must hold finite values: frame 3, bin 5 is nan");
  musicgen_generate_params p = musicgen_generate_default_params();
  const char* prompts[] = {"x"};
  musicgen_audio outs[1] = {};
  EXPECT_EQ(musicgen_session_generate_batch(s, &p, prompts, 0, 100000, outs), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(musicgen_last_error(), "musicgen_session_generate_batch: a batch needs at least one prompt and one "
                                      "take, found 0 prompt(s) and 100000 take(s)");
  musicgen_session_free(s);
  musicgen_model_free(m);
}

}  // namespace
