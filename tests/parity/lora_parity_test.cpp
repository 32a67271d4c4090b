// LoRA adapters against PEFT (tests/data/golden/lora, written by tools/reference/make_lora_goldens.py
// from the PEFT adapter tests/data/models/musicgen_tiny_lora on the tiny model): the model with the
// adapter merged at load gives PEFT's merged logits and greedy codes, and what our save writes is
// what PEFT wrote.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "kernels/cpu/sample.h"
#include "lm/generate.h"
#include "lm/lora.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;

namespace {

const std::string kBase = "tests/data/models/musicgen_tiny";
const std::string kAdapter = "tests/data/models/musicgen_tiny_lora";
const std::string kGolden = mgtest::golden_dir() + "/lora/";

std::vector<int> ints(const mg::Tensor& t) {
  std::vector<int> v;
  for (float x : t.to_vector()) v.push_back(int(x));
  return v;
}

struct Loaded {
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(2);
  std::unique_ptr<mg::MusicGen> model;
  explicit Loaded(const mg::LoraAdapter* lora, float scale = 1.0f, mg::DType weights = mg::DType::F32) {
    model = mg::MusicGen::load(*be, mgtest::source_dir() + "/" + kBase, weights, lora, scale);
  }
};

// Teacher-forced guided logits [S, K, V], one column per call (the KV-cache path generation uses).
mg::Tensor cfg_logits(Loaded& m, const std::vector<int>& ids, const mg::Tensor& cols) {
  const int K = int(cols.dim(0));
  const int64_t S = cols.dim(1), V = 2048;
  const std::vector<int> c = ints(cols);
  mg::Tensor text = m.model->project_text(m.model->text_hidden_states(ids));
  mg::DecoderState st = mg::decoder_start(*m.be, m.model->decoder(), {text, mg::Tensor()}, S);
  mg::Tensor out = mg::Tensor::empty(mg::DType::F32, {S, K, V});
  for (int64_t s = 0; s < S; ++s) {
    std::vector<std::vector<std::vector<int>>> codes(2, std::vector<std::vector<int>>(K));
    for (int r = 0; r < 2; ++r)
      for (int k = 0; k < K; ++k) codes[r][k] = {c[k * S + s]};
    mg::Tensor l = mg::decoder_step(*m.be, m.model->decoder(), st, codes);  // [2, K, V]
    for (int64_t i = 0; i < K * V; ++i) out.f32()[s * K * V + i] = mg::cfg_value(l.f32()[i], l.f32()[K * V + i], 3.0f);
  }
  return out;
}

}  // namespace

// Traps: scale = alpha / r (not alpha, not alpha / sqrt(r)); B A (not A^T B^T); q/k/v merged before
// they are concatenated; the cross-attention k/v merged too (they run once per generation, at start).
TEST(LoraParity, TeacherForcedLogitsMatchPeftMerged) {
  const mg::LoraAdapter a = mg::load_peft_adapter(mgtest::source_dir() + "/" + kAdapter);
  EXPECT_EQ(a.config.scale(), 2.0f);
  EXPECT_EQ(a.weights.size(), 3u * 10u);
  Loaded m(&a);
  auto g = mg::load_safetensors(kGolden + "tf_ascii.safetensors");
  EXPECT_LT(mgtest::rel_err(cfg_logits(m, ints(g.at("input_ids")), g.at("decoder_input_ids")), g.at("logits_cfg")),
            1e-4);
}

TEST(LoraParity, GreedyCodesMatchPeftMerged) {
  const mg::LoraAdapter a = mg::load_peft_adapter(mgtest::source_dir() + "/" + kAdapter);
  Loaded m(&a);
  auto g = mg::load_safetensors(kGolden + "greedy_ascii.safetensors");
  mg::GenerateParams p;
  p.sampler.greedy = true;
  p.guidance_scale = 3.0f;
  const mg::Tensor& ref = g.at("codes");
  p.duration_s = (ref.dim(1) + 0.5) / 50.0;
  mg::Tensor text = m.model->project_text(m.model->text_hidden_states(ints(g.at("input_ids"))));
  const mg::Codes codes = m.model->generate_codes_from_rows({text, mg::Tensor()}, p);
  std::vector<int> flat;
  for (const auto& row : codes) flat.insert(flat.end(), row.begin(), row.end());
  EXPECT_EQ(flat, ints(ref));
}

// Scale 0 is the base model, bit for bit; another scale moves the logits.
TEST(LoraParity, ScaleZeroIsTheBaseModel) {
  const mg::LoraAdapter a = mg::load_peft_adapter(mgtest::source_dir() + "/" + kAdapter);
  auto g = mg::load_safetensors(kGolden + "tf_ascii.safetensors");
  Loaded base(nullptr), zero(&a, 0.0f), half(&a, 0.5f);
  const mg::Tensor b = cfg_logits(base, ints(g.at("input_ids")), g.at("decoder_input_ids"));
  EXPECT_EQ(cfg_logits(zero, ints(g.at("input_ids")), g.at("decoder_input_ids")).to_vector(), b.to_vector());
  EXPECT_GT(mgtest::rel_err(cfg_logits(half, ints(g.at("input_ids")), g.at("decoder_input_ids")), b), 1e-2);
}

// Half-precision weights are converted after the merge: f16 logits stay close to the f32 golden.
TEST(LoraParity, MergeHappensBeforeConversion) {
  const mg::LoraAdapter a = mg::load_peft_adapter(mgtest::source_dir() + "/" + kAdapter);
  Loaded m(&a, 1.0f, mg::DType::F16);
  auto g = mg::load_safetensors(kGolden + "tf_ascii.safetensors");
  EXPECT_LT(mgtest::rel_err(cfg_logits(m, ints(g.at("input_ids")), g.at("decoder_input_ids")), g.at("logits_cfg")),
            1e-2);
}

// Our save of PEFT's adapter: the same tensor names, shapes, dtypes and bytes, and a config whose
// every field is one PEFT wrote, with PEFT's value. The copy stays in <build>/lora_roundtrip for
// make_lora_goldens.py --ours, which checks that PEFT loads it and gives the same logits.
TEST(LoraParity, OurSaveIsWhatPeftWrote) {
  const std::string peft_dir = mgtest::source_dir() + "/" + kAdapter;
  const std::string ours = std::string(MG_BINARY_DIR) + "/lora_roundtrip";
  mg::save_peft_adapter(ours, mg::load_peft_adapter(peft_dir));
  const auto theirs_st = mg::SafeTensorsFile::open(peft_dir + "/adapter_model.safetensors");
  const auto ours_st = mg::SafeTensorsFile::open(ours + "/adapter_model.safetensors");
  ASSERT_EQ(ours_st->names(), theirs_st->names());
  for (const std::string& n : theirs_st->names()) {
    EXPECT_EQ(ours_st->info(n).shape, theirs_st->info(n).shape) << n;
    EXPECT_EQ(ours_st->info(n).dtype, theirs_st->info(n).dtype) << n;
    EXPECT_EQ(ours_st->get(n).to_vector(), theirs_st->get(n).to_vector()) << n;
  }
  const nlohmann::json theirs = nlohmann::json::parse(mgtest::slurp(peft_dir + "/adapter_config.json"));
  nlohmann::json mine = nlohmann::json::parse(mgtest::slurp(ours + "/adapter_config.json"));
  auto sorted = [](nlohmann::json j) {
    std::vector<std::string> v = j.get<std::vector<std::string>>();
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(mine["target_modules"]), sorted(theirs["target_modules"]));
  mine.erase("target_modules");
  for (auto& [key, value] : mine.items()) {
    ASSERT_TRUE(theirs.contains(key)) << key << " is not a field PEFT writes";
    EXPECT_EQ(value, theirs[key]) << key;
  }
  // Loading it back gives the same adapter.
  const mg::LoraAdapter back = mg::load_peft_adapter(ours);
  EXPECT_EQ(back.config.r, 4);
  EXPECT_EQ(back.config.lora_alpha, 8.0f);
  EXPECT_EQ(back.weights.size(), 30u);
}

// PEFT's adapter has no record of the model's kind: a model of other shapes is refused by shape.
TEST(LoraParity, AdapterForAnotherModelIsRefused) {
  const mg::LoraAdapter a = mg::load_peft_adapter(mgtest::source_dir() + "/" + kAdapter);
  auto be = mg::make_cpu_backend(1);
  const std::string err = mgtest::error_of(
      [&] { mg::MusicGen::load(*be, mgtest::source_dir() + "/tests/data/models/musicgen_melody_tiny", mg::DType::F32, &a); });
  EXPECT_NE(err.find("made for another model"), std::string::npos) << err;
}
