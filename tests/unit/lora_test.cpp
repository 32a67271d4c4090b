// LoRA adapters in PEFT's format: the names and config we write, what we refuse, and the merge.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lm/lora.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;

namespace {

mg::MusicgenDecoderConfig small_model() {
  mg::MusicgenDecoderConfig c;
  c.hidden_size = 8;
  c.ffn_dim = 16;
  c.num_hidden_layers = 2;
  return c;
}

mg::LoraAdapter random_adapter(mg::PeftLayout layout = mg::PeftLayout::ConditionalGeneration) {
  mg::LoraConfig cfg;
  cfg.r = 2;
  cfg.lora_alpha = 6;
  cfg.targets = mg::parse_lora_targets("q,v,cross,ffn");
  cfg.layout = layout;
  cfg.base_model_name_or_path = "tiny";
  mg::LoraAdapter a = mg::init_lora_adapter(cfg, small_model(), true, 1);
  uint32_t seed = 10;
  for (mg::LoraWeights& w : a.weights) w.B = mgtest::random_tensor(w.B.shape, seed++);
  return a;
}

void write_json(const std::string& path, const nlohmann::json& j) { std::ofstream(path) << j.dump(2); }

}  // namespace

TEST(Lora, TargetsList) {
  using M = mg::LoraModule;
  EXPECT_EQ(mg::parse_lora_targets("q,v"), (std::vector<M>{M::SelfQ, M::SelfV}));
  EXPECT_EQ(mg::parse_lora_targets("ffn,o,q,q"), (std::vector<M>{M::SelfQ, M::SelfO, M::Fc1, M::Fc2}));
  EXPECT_EQ(mg::parse_lora_targets("all").size(), 10u);
  EXPECT_NE(mgtest::error_of([] { mg::parse_lora_targets("q,x"); }).find("unknown target 'x'"), std::string::npos);
  EXPECT_NE(mgtest::error_of([] { mg::parse_lora_targets(""); }).find("names no target"), std::string::npos);
}

// PEFT initialises B to zero: a fresh adapter must leave the model unchanged, and A must not be zero
// (or the adapter could never learn).
TEST(Lora, InitIsPeftLike) {
  mg::LoraConfig cfg;
  cfg.targets = mg::parse_lora_targets("q,ffn");
  const mg::LoraAdapter a = mg::init_lora_adapter(cfg, small_model(), true, 3);
  ASSERT_EQ(a.weights.size(), 2u * 3u);
  const mg::LoraWeights* fc2 = a.find(1, mg::LoraModule::Fc2);
  ASSERT_NE(fc2, nullptr);
  EXPECT_EQ(fc2->A.shape, (mg::Shape{8, 16}));
  EXPECT_EQ(fc2->B.shape, (mg::Shape{8, 8}));
  float amax = 0;
  for (float v : fc2->A.to_vector()) amax = std::max(amax, std::fabs(v));
  EXPECT_GT(amax, 0.0f);
  EXPECT_LE(amax, 0.25f);  // 1 / sqrt(16)
  for (float v : fc2->B.to_vector()) EXPECT_EQ(v, 0.0f);
  cfg.targets = mg::parse_lora_targets("cross");
  EXPECT_NE(mgtest::error_of([&] { mg::init_lora_adapter(cfg, small_model(), false, 3); }).find("no cross-attention"),
            std::string::npos);
}

// What we write is what PEFT writes: tensor names with the HF class's prefix, f32, and a config
// PEFT reads (peft_type, r, lora_alpha, target_modules as module names, bias none, no rsLoRA/DoRA).
TEST(Lora, SaveWritesPeftNamesAndConfig) {
  const std::string dir = mgtest::test_case_dir() + "/adapter";
  mg::save_peft_adapter(dir, random_adapter());
  const auto f = mg::SafeTensorsFile::open(dir + "/adapter_model.safetensors");
  EXPECT_TRUE(f->has("base_model.model.decoder.model.decoder.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_TRUE(f->has("base_model.model.decoder.model.decoder.layers.1.encoder_attn.out_proj.lora_B.weight"));
  EXPECT_TRUE(f->has("base_model.model.decoder.model.decoder.layers.1.fc2.lora_A.weight"));
  EXPECT_EQ(f->names().size(), 2u * 2u * 8u);
  EXPECT_EQ(f->info("base_model.model.decoder.model.decoder.layers.1.fc1.lora_B.weight").shape, (mg::Shape{16, 2}));
  EXPECT_EQ(f->metadata().at("format"), "pt");
  nlohmann::json c = nlohmann::json::parse(mgtest::slurp(dir + "/adapter_config.json"));
  EXPECT_EQ(c["peft_type"], "LORA");
  EXPECT_EQ(c["r"], 2);
  EXPECT_EQ(c["lora_alpha"], 6);
  EXPECT_EQ(c["bias"], "none");
  EXPECT_EQ(c["use_rslora"], false);
  EXPECT_EQ(c["fan_in_fan_out"], false);
  EXPECT_EQ(c["base_model_name_or_path"], "tiny");
  EXPECT_EQ(c["target_modules"].size(), 8u);

  mg::save_peft_adapter(dir + "_causal", random_adapter(mg::PeftLayout::CausalLM));
  EXPECT_TRUE(mg::SafeTensorsFile::open(dir + "_causal/adapter_model.safetensors")
                  ->has("base_model.model.model.decoder.layers.0.self_attn.v_proj.lora_A.weight"));
}

TEST(Lora, SaveLoadRoundTrip) {
  const std::string dir = mgtest::test_case_dir();
  for (mg::PeftLayout layout : {mg::PeftLayout::ConditionalGeneration, mg::PeftLayout::CausalLM}) {
    const mg::LoraAdapter a = random_adapter(layout);
    mg::save_peft_adapter(dir, a);
    const mg::LoraAdapter b = mg::load_peft_adapter(dir);
    EXPECT_EQ(b.config.r, 2);
    EXPECT_EQ(b.config.scale(), 3.0f);
    EXPECT_EQ(b.config.layout, layout);
    EXPECT_EQ(b.config.base_model_signature, "layers=2 hidden=8 ffn=16 heads=16 codebooks=4 channels=1 vocab=2048 cross=1");
    EXPECT_EQ(b.config.targets, a.config.targets);
    ASSERT_EQ(b.weights.size(), a.weights.size());
    for (size_t i = 0; i < a.weights.size(); ++i) {
      EXPECT_EQ(b.weights[i].layer, a.weights[i].layer);
      EXPECT_EQ(b.weights[i].module, a.weights[i].module);
      EXPECT_EQ(b.weights[i].A.to_vector(), a.weights[i].A.to_vector());
      EXPECT_EQ(b.weights[i].B.to_vector(), a.weights[i].B.to_vector());
    }
    EXPECT_NO_THROW(mg::check_lora_adapter(b, small_model(), true));
  }
}

// W' = W + (alpha / r) * user_scale * B A, never written into W (a read-only mmap in real loads).
TEST(Lora, MergeMatchesTheFormula) {
  const mg::LoraAdapter a = random_adapter();
  const mg::LoraWeights& lw = *a.find(1, mg::LoraModule::Fc1);  // W [16, 8], A [2, 8], B [16, 2]
  const mg::Tensor W = mgtest::random_tensor({16, 8}, 99);
  const std::vector<float> before = W.to_vector();
  const mg::Tensor M = mg::lora_merged_weight(W, &a, 0.5f, 1, mg::LoraModule::Fc1);
  EXPECT_EQ(W.to_vector(), before);
  const float* A = lw.A.f32();
  const float* B = lw.B.f32();
  for (int o = 0; o < 16; ++o)
    for (int i = 0; i < 8; ++i) {
      const float d = B[o * 2] * A[i] + B[o * 2 + 1] * A[8 + i];
      EXPECT_NEAR(M.f32()[o * 8 + i], before[o * 8 + i] + 1.5f * d, 1e-6);
    }
  // Not adapted, or scale 0: the same tensor, no copy.
  EXPECT_EQ(mg::lora_merged_weight(W, &a, 1.0f, 0, mg::LoraModule::SelfK).data, W.data);
  EXPECT_EQ(mg::lora_merged_weight(W, &a, 0.0f, 1, mg::LoraModule::Fc1).data, W.data);
  EXPECT_EQ(mg::lora_merged_weight(W, nullptr, 1.0f, 1, mg::LoraModule::Fc1).data, W.data);
}

// An adapter for another model: more layers, another width, cross-attention on a melody model.
TEST(Lora, ModelMismatchIsAnError) {
  mg::LoraAdapter a = random_adapter();
  // Our adapters name the model they were made for: a stereo model has the same layer shapes.
  mg::MusicgenDecoderConfig stereo = small_model();
  stereo.num_codebooks = 8;
  stereo.audio_channels = 2;
  EXPECT_NE(mgtest::error_of([&] { mg::check_lora_adapter(a, stereo, true); }).find("codebooks=4 channels=1"),
            std::string::npos);
  // PEFT's files do not: then the shapes decide.
  a.config.base_model_signature.clear();
  EXPECT_NO_THROW(mg::check_lora_adapter(a, stereo, true));
  mg::MusicgenDecoderConfig one_layer = small_model();
  one_layer.num_hidden_layers = 1;
  EXPECT_NE(mgtest::error_of([&] { mg::check_lora_adapter(a, one_layer, true); }).find("made for another model"),
            std::string::npos);
  mg::MusicgenDecoderConfig wide = small_model();
  wide.hidden_size = 16;
  EXPECT_NE(mgtest::error_of([&] { mg::check_lora_adapter(a, wide, true); }).find("has shape"), std::string::npos);
  EXPECT_NE(mgtest::error_of([&] { mg::check_lora_adapter(a, small_model(), false); }).find("cross-attention"),
            std::string::npos);
}

TEST(Lora, RefusedFilesAndFeatures) {
  const std::string dir = mgtest::test_case_dir();
  EXPECT_NE(mgtest::error_of([&] { mg::load_peft_adapter(dir + "/none"); }).find("does not exist"), std::string::npos);
  EXPECT_NE(mgtest::error_of([&] { mg::load_peft_adapter(dir); }).find("has no adapter_config.json"), std::string::npos);
  mg::save_peft_adapter(dir, random_adapter());
  const nlohmann::json good = nlohmann::json::parse(mgtest::slurp(dir + "/adapter_config.json"));
  auto refused = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json c = good;
    c[key] = value;
    write_json(dir + "/adapter_config.json", c);
    return mgtest::error_of([&] { mg::load_peft_adapter(dir); });
  };
  EXPECT_NE(refused("use_rslora", true).find("rank-stabilised"), std::string::npos);
  EXPECT_NE(refused("use_dora", true).find("DoRA"), std::string::npos);
  EXPECT_NE(refused("bias", "all").find("bias"), std::string::npos);
  EXPECT_NE(refused("peft_type", "LOHA").find("only LoRA"), std::string::npos);
  EXPECT_NE(refused("rank_pattern", {{"fc1", 4}}).find("per-module ranks"), std::string::npos);
  EXPECT_NE(refused("target_modules", {"q", "k"}).find("unknown target module 'q'"), std::string::npos);
  EXPECT_NE(refused("r", 3).find("rank r = 3"), std::string::npos);
  EXPECT_NE(refused("target_modules", {"fc1"}).find("does not list"), std::string::npos);
  // PEFT's short names match both attentions, as PEFT's suffix rule does.
  EXPECT_EQ(refused("target_modules", {"q_proj", "v_proj", "k_proj", "out_proj", "fc1", "fc2"}), "(no error)");
  write_json(dir + "/adapter_config.json", good);
  fs::remove(dir + "/adapter_model.safetensors");
  EXPECT_NE(mgtest::error_of([&] { mg::load_peft_adapter(dir); }).find("has no adapter_model.safetensors"),
            std::string::npos);
}
