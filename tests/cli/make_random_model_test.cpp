// make-random-model, run as gpu-check.sh runs it: describe a tiny test model, make a random snapshot
// from the manifest, and check that our loaders take it and give finite audio. Then the committed
// full-size manifests (the GPU benchmark's models), without writing their gigabytes: they parse and
// name every kind of tensor the loaders read, as many times as their config says.
// Trap pinned: a weight_g that does not match its weight_v (or NaN/inf from a bad fill rule) would
// load fine and only show as non-finite audio, so the audio is checked, not just the loading.
#include <gtest/gtest.h>

#include <encodec.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "conditioning/tokenizer.h"
#include "kernels/ops.h"
#include "lm/generate.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kTool = MG_BINARY_DIR "/tools/make-random-model/make-random-model";

std::string model(const std::string& name) { return mgtest::data_dir() + "/models/" + name; }
std::string manifest(const std::string& name) {
  return mgtest::source_dir() + "/tools/make-random-model/manifests/" + name;
}

mgtest::RunResult run_tool(const std::string& args) { return mgtest::run_command(kTool, args); }

// Describes `name` and makes a snapshot of it with `extra` arguments; returns the snapshot folder.
std::string describe_and_make(const std::string& dir, const std::string& name, const std::string& extra) {
  const std::string json_path = dir + "/" + name + ".json", out = dir + "/" + name + "_random";
  auto r = run_tool("describe " + model(name) + " " + json_path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_tool("make " + json_path + " " + out + " " + extra);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("tensors"), std::string::npos) << r.out;
  return out;
}

void expect_same_tensor_list(const std::string& made, const std::string& original) {
  const auto a = mg::SafeTensorsFile::open(made + "/model.safetensors");
  const auto b = mg::SafeTensorsFile::open(original + "/model.safetensors");
  ASSERT_EQ(a->names(), b->names());
  for (const auto& n : a->names()) {
    EXPECT_EQ(a->info(n).dtype, b->info(n).dtype) << n;
    EXPECT_EQ(a->info(n).shape, b->info(n).shape) << n;
    const mg::Tensor t = a->get(n).as_f32();
    for (int64_t i = 0; i < t.numel(); ++i) ASSERT_TRUE(std::isfinite(t.f32()[i])) << n << "[" << i << "]";
  }
}

class MakeRandomModel : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kTool)) << kTool << " is not built (cmake --build <dir> --target make-random-model)";
    dir_ = mgtest::test_case_dir();
  }
  std::string dir_;
};

TEST_F(MakeRandomModel, MusicgenSnapshotLoadsAndGeneratesFiniteAudio) {
  // Default --spiece: the tiny models' tokenizer, found from the working directory (the checkout).
  const std::string out = describe_and_make(dir_, "musicgen_tiny", "--seed 7");
  for (const char* f : {"config.json", "generation_config.json", "preprocessor_config.json", "tokenizer_config.json",
                        "spiece.model"})
    EXPECT_EQ(mgtest::slurp(out + "/" + f), mgtest::slurp(model("musicgen_tiny") + "/" + f)) << f;
  expect_same_tensor_list(out, model("musicgen_tiny"));

  auto cpu = mg::make_cpu_backend(2);
  auto m = mg::MusicGen::load(*cpu, out);
  mg::GenerateParams p;
  p.prompt = "random drums";
  p.guidance_scale = 3.0f;
  p.duration_s = 0.2;  // a few frames
  p.seed = 1;
  const mg::Codes codes = m->generate_codes(p);
  ASSERT_FALSE(codes.empty());
  ASSERT_FALSE(codes[0].empty());
  const mg::Tensor audio = m->decode_audio(codes).as_f32();
  ASSERT_GT(audio.numel(), 0);
  double energy = 0;
  for (int64_t i = 0; i < audio.numel(); ++i) {
    ASSERT_TRUE(std::isfinite(audio.f32()[i])) << "sample " << i;
    energy += double(audio.f32()[i]) * audio.f32()[i];
  }
  EXPECT_GT(energy, 0.0) << "all-zero audio: the random weights carry no signal";
}

TEST_F(MakeRandomModel, EncodecSnapshotLoadsAndRoundTripsFinite) {
  const std::string out = describe_and_make(dir_, "encodec_32khz_tiny", "--seed 3 --threads 3");
  expect_same_tensor_list(out, model("encodec_32khz_tiny"));

  encodec_model_params mp = encodec_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  encodec_session_params sp = encodec_session_default_params();
  sp.n_threads = 2;
  encodec_model* m = nullptr;
  encodec_session* s = nullptr;
  ASSERT_EQ(encodec_model_load(out.c_str(), &mp, &m), MUSICGEN_OK) << musicgen_last_error();
  ASSERT_EQ(encodec_session_create(m, &sp, &s), MUSICGEN_OK) << musicgen_last_error();
  const int sr = encodec_model_sample_rate(m);
  encodec_audio* in = nullptr;
  ASSERT_EQ(encodec_audio_create(sr, encodec_model_channels(m), sr / 5, &in), MUSICGEN_OK);
  for (int c = 0; c < encodec_model_channels(m); ++c) {
    float* x = encodec_audio_channel_data(in, c);
    for (int64_t i = 0; i < sr / 5; ++i) x[i] = 0.4f * float(std::sin(0.05 * double(i)));
  }
  encodec_codes* codes = nullptr;
  encodec_audio* dec = nullptr;
  ASSERT_EQ(encodec_session_encode(s, in, 0, &codes), MUSICGEN_OK) << musicgen_last_error();
  ASSERT_EQ(encodec_session_decode(s, codes, &dec), MUSICGEN_OK) << musicgen_last_error();
  ASSERT_EQ(encodec_audio_frames(dec), sr / 5);
  const float* y = encodec_audio_channel_data_const(dec, 0);
  for (int64_t i = 0; i < encodec_audio_frames(dec); ++i) ASSERT_TRUE(std::isfinite(y[i])) << "sample " << i;
  encodec_audio_free(dec);
  encodec_codes_free(codes);
  encodec_audio_free(in);
  encodec_session_free(s);
  encodec_model_free(m);
}

// Same manifest and seed, any thread count: the same bytes (values depend on (seed, name, index) only).
TEST_F(MakeRandomModel, ValuesDependOnTheSeedOnly) {
  const std::string out1 = describe_and_make(dir_, "encodec_32khz_tiny", "--seed 5 --threads 1");
  const std::string json_path = dir_ + "/encodec_32khz_tiny.json";
  ASSERT_EQ(run_tool("make " + json_path + " " + dir_ + "/t4 --seed 5 --threads 4").exit_code, 0);
  ASSERT_EQ(run_tool("make " + json_path + " " + dir_ + "/s6 --seed 6").exit_code, 0);
  const std::string a = mgtest::slurp(out1 + "/model.safetensors");
  EXPECT_EQ(a, mgtest::slurp(dir_ + "/t4/model.safetensors"));
  EXPECT_NE(a, mgtest::slurp(dir_ + "/s6/model.safetensors"));
}

TEST_F(MakeRandomModel, RefusesWhatIsNotAManifest) {
  const std::string bad = dir_ + "/bad.json";
  { std::ofstream(bad) << "{\"tensors\": []}"; }
  const auto r = run_tool("make " + bad + " " + dir_ + "/out");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a make-random-model manifest"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/out/model.safetensors"));
}

// ---- the committed full-size manifests ----

// Tensor names with every index replaced by N ("decoder.layers.N.fc1.weight"), and for each such
// pattern the indices seen at its first index position.
struct NamePatterns {
  std::map<std::string, std::set<int>> first_index;
  std::map<std::string, std::vector<int64_t>> shape_of;  // by exact name
};

NamePatterns patterns(const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  static const std::regex index(R"(\.(\d+)(?=\.|$))");
  NamePatterns p;
  for (const auto& [name, shape] : tensors) {
    std::smatch m;
    const int first = std::regex_search(name, m, index) ? std::stoi(m[1]) : -1;
    p.first_index[std::regex_replace(name, index, ".N")].insert(first);
    p.shape_of[name] = shape;
  }
  return p;
}

json read_manifest_json(const std::string& name) {
  const std::string text = mgtest::slurp(manifest(name));
  EXPECT_FALSE(text.empty()) << manifest(name) << " is missing";
  return json::parse(text);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> manifest_tensors(const json& j) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& t : j.at("tensors")) {
    EXPECT_EQ(t.at("dtype"), "F32") << t.at("name");
    out.emplace_back(t.at("name").get<std::string>(), t.at("shape").get<std::vector<int64_t>>());
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> safetensors_tensors(const std::string& dir) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  const auto f = mg::SafeTensorsFile::open(dir + "/model.safetensors");
  for (const auto& n : f->names()) out.emplace_back(n, f->info(n).shape);
  return out;
}

// Every pattern of the tiny model (which the loaders take: the parity tests load it) is in the
// full-size manifest.
void expect_patterns_cover(const NamePatterns& full, const NamePatterns& tiny, const std::string& what) {
  for (const auto& [pat, _] : tiny.first_index) EXPECT_TRUE(full.first_index.count(pat)) << what << " lacks " << pat;
}

int count_of(const NamePatterns& p, const std::string& pattern) {
  auto it = p.first_index.find(pattern);
  return it == p.first_index.end() ? 0 : int(it->second.size());
}

TEST(FullSizeManifests, MusicgenSmallNamesWhatTheLoaderReads) {
  const json j = read_manifest_json("musicgen-small.json");
  EXPECT_EQ(j.at("tokenizer_file"), "spiece.model");
  for (const char* f : {"config.json", "generation_config.json", "preprocessor_config.json"})
    EXPECT_TRUE(j.at("text_files").contains(f)) << f;
  const json cfg = json::parse(j.at("text_files").at("config.json").get<std::string>());
  const NamePatterns full = patterns(manifest_tensors(j));
  expect_patterns_cover(full, patterns(safetensors_tensors(model("musicgen_tiny"))), "musicgen-small.json");

  const auto& dec = cfg.at("decoder");
  const int64_t D = dec.at("hidden_size"), F = dec.at("ffn_dim"), V = dec.at("vocab_size");
  EXPECT_EQ(D, 1024);
  EXPECT_EQ(count_of(full, "decoder.model.decoder.layers.N.fc1.weight"), dec.at("num_hidden_layers").get<int>());
  EXPECT_EQ(count_of(full, "decoder.lm_heads.N.weight"), dec.at("num_codebooks").get<int>());
  EXPECT_EQ(count_of(full, "text_encoder.encoder.block.N.layer.N.SelfAttention.q.weight"),
            cfg.at("text_encoder").at("num_layers").get<int>());
  EXPECT_EQ(full.shape_of.at("decoder.lm_heads.0.weight"), (std::vector<int64_t>{V, D}));
  EXPECT_EQ(full.shape_of.at("decoder.model.decoder.layers.23.fc1.weight"), (std::vector<int64_t>{F, D}));
  EXPECT_EQ(full.shape_of.at("enc_to_dec_proj.weight"),
            (std::vector<int64_t>{D, cfg.at("text_encoder").at("d_model").get<int64_t>()}));
  // The tokenizer make copies by default must fit T5's vocabulary (32128 rows).
  const auto shared = full.shape_of.at("text_encoder.shared.weight");
  EXPECT_EQ(shared[0], cfg.at("text_encoder").at("vocab_size").get<int64_t>());
  EXPECT_LE(mg::T5Tokenizer::load(model("musicgen_tiny") + "/spiece.model")->vocab_size(), shared[0]);
}

TEST(FullSizeManifests, Encodec32kNamesWhatTheLoaderReads) {
  const json j = read_manifest_json("encodec_32khz.json");
  const json cfg = json::parse(j.at("text_files").at("config.json").get<std::string>());
  EXPECT_EQ(cfg.at("sampling_rate"), 32000);
  const NamePatterns full = patterns(manifest_tensors(j));
  expect_patterns_cover(full, patterns(safetensors_tensors(model("encodec_32khz_tiny"))), "encodec_32khz.json");
  // 2.2 kbps at 50 frames/s of 11-bit codes: 4 codebooks.
  EXPECT_EQ(count_of(full, "quantizer.layers.N.codebook.embed"), 4);
  EXPECT_EQ(full.shape_of.at("quantizer.layers.0.codebook.embed"),
            (std::vector<int64_t>{cfg.at("codebook_size").get<int64_t>(), cfg.at("hidden_size").get<int64_t>()}));
}

}  // namespace
