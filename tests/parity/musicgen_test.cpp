// MusicGen decoder and generation against transformers (tests/data/golden/musicgen, written by
// tools/reference/make_musicgen_goldens.py from the tiny models in tests/data/models): teacher-forced
// logits for every column, greedy generation token for token, and the decoded audio.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "kernels/cpu/sample.h"
#include "lm/generate.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

const std::string kGolden = mgtest::golden_dir() + "/musicgen/";

nlohmann::json index_json() {
  std::ifstream f(kGolden + "index.json");
  return nlohmann::json::parse(f);
}

std::vector<int> ints(const mg::Tensor& t) {
  std::vector<int> v;
  for (float x : t.to_vector()) v.push_back(int(x));
  return v;
}

struct Loaded {
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(2);
  std::unique_ptr<mg::MusicGen> model;
  explicit Loaded(const std::string& dir, mg::DType weights = mg::DType::F32) {
    model = mg::MusicGen::load(*be, mgtest::source_dir() + "/" + dir, weights);
  }
};

mg::Tensor slice_rows(const mg::Tensor& all, int64_t row) {  // all [R, S, K, V] -> [S, K, V] of row
  return all.slice0(row, 1).reshape({all.dim(1), all.dim(2), all.dim(3)});
}

// Runs the teacher-forced columns [K, S] for the given rows, either in one call (all columns at
// once, causal mask over them) or one column per call (the KV-cache path generation uses).
mg::Tensor teacher_force(Loaded& m, const std::vector<mg::Tensor>& rows, const mg::Tensor& cols, bool per_column) {
  const int K = int(cols.dim(0));
  const int64_t S = cols.dim(1);
  std::vector<int> c = ints(cols);
  mg::DecoderState st = mg::decoder_start(*m.be, m.model->decoder(), rows, S);
  mg::Tensor all = mg::Tensor::empty(mg::DType::F32, {int64_t(rows.size()), S, K, 2048});
  for (int64_t s0 = 0; s0 < S; s0 += per_column ? 1 : S) {
    const int64_t n = per_column ? 1 : S;
    std::vector<std::vector<std::vector<int>>> codes(rows.size(), std::vector<std::vector<int>>(K));
    for (size_t r = 0; r < rows.size(); ++r)
      for (int k = 0; k < K; ++k) codes[r][k].assign(c.begin() + k * S + s0, c.begin() + k * S + s0 + n);
    mg::Tensor out;
    mg::decoder_step(*m.be, m.model->decoder(), st, codes, &out);  // [R, n, K, V]
    for (size_t r = 0; r < rows.size(); ++r)
      for (int64_t s = 0; s < n; ++s)
        std::copy(out.f32() + (r * n + s) * K * 2048, out.f32() + (r * n + s + 1) * K * 2048,
                  all.f32() + (r * S + s0 + s) * K * 2048);
  }
  return all;
}

mg::Tensor cfg_combine(const mg::Tensor& all, float scale) {
  const int64_t n = all.numel() / 2;
  mg::Tensor out = mg::Tensor::empty(mg::DType::F32, {all.dim(1), all.dim(2), all.dim(3)});
  // Exactly the guidance sample_tokens applies (each operation rounded to f32).
  for (int64_t i = 0; i < n; ++i) out.f32()[i] = mg::cfg_value(all.f32()[i], all.f32()[n + i], scale);
  return out;
}

// Traps: sinusoid layout (cos block first, exponent i/(half-1)), position 0 = the BOS column,
// the special token 2048's learned embedding row, no biases in attention/FFN/heads, exact GELU,
// null row = zero text (its cross-attention output is exactly 0), CFG = uncond + 3 (cond - uncond).
TEST(MusicgenParity, TeacherForcedLogitsMatchTransformers) {
  Loaded m("tests/data/models/musicgen_tiny");
  auto g = mg::load_safetensors(kGolden + "tf_ascii.safetensors");
  EXPECT_EQ(m.model->tokenize("80s pop track with bassy drums and synth"), ints(g.at("input_ids")));
  mg::Tensor text = m.model->project_text(m.model->text_hidden_states(ints(g.at("input_ids"))));
  EXPECT_LT(mgtest::rel_err(m.be->download(text), g.at("projected")), 1e-4);
  for (bool per_column : {false, true}) {
    mg::Tensor all = teacher_force(m, {text, mg::Tensor()}, g.at("decoder_input_ids"), per_column);
    EXPECT_LT(mgtest::rel_err(slice_rows(all, 0), g.at("logits_cond")), 1e-4) << "per_column " << per_column;
    EXPECT_LT(mgtest::rel_err(slice_rows(all, 1), g.at("logits_uncond")), 1e-4) << "per_column " << per_column;
    EXPECT_LT(mgtest::rel_err(cfg_combine(all, 3.0f), g.at("logits_cfg")), 1e-4) << "per_column " << per_column;
  }
}

// Trap: positions are computed as HF does in float32 (recomputed, not read from the checkpoint).
TEST(MusicgenParity, PositionsMatchTransformers) {
  auto g = mg::load_safetensors(kGolden + "tf_ascii.safetensors");
  const mg::Tensor& ref = g.at("inter.positions");
  mg::Tensor ours = mg::sinusoidal_positions(ref.dim(0), ref.dim(1));
  EXPECT_LT(mgtest::rel_err(ours, ref), 1e-6);
}

// Trap: stereo has 8 codebooks with delays 0,0,1,1,2,2,3,3 (interleaved L/R).
TEST(MusicgenParity, StereoTeacherForcedLogitsMatchTransformers) {
  Loaded m("tests/data/models/musicgen_stereo_tiny");
  auto g = mg::load_safetensors(kGolden + "tf_stereo.safetensors");
  EXPECT_EQ(m.model->config().delays(), (std::vector<int>{0, 0, 1, 1, 2, 2, 3, 3}));
  mg::Tensor text = m.model->project_text(m.model->text_hidden_states(ints(g.at("input_ids"))));
  mg::Tensor all = teacher_force(m, {text, mg::Tensor()}, g.at("decoder_input_ids"), true);
  EXPECT_LT(mgtest::rel_err(cfg_combine(all, 3.0f), g.at("logits_cfg")), 1e-4);
}

// Greedy generation must reproduce HF generate's codes exactly; where recorded, the guided logits
// of the first steps and the decoded audio too.
void check_greedy(const std::string& name) {
  SCOPED_TRACE(name);
  nlohmann::json c = index_json().at("cases").at(name);
  const bool stereo = c.at("delays").size() == 8;
  Loaded m(stereo ? "tests/data/models/musicgen_stereo_tiny" : "tests/data/models/musicgen_tiny");
  auto g = mg::load_safetensors(kGolden + name + ".safetensors");
  mg::GenerateParams p;
  p.sampler.greedy = true;
  p.guidance_scale = float(c.at("cfg_scale").get<double>());
  p.duration_s = (c.at("frames").get<int>() + 0.5) / 50.0;  // int(d * 50) = frames
  std::vector<std::vector<float>> first_logits;
  p.on_logits = [&](int64_t step, const float* l, int K, int V) {
    if (step < 3) first_logits.emplace_back(l, l + int64_t(K) * V);
  };
  std::vector<mg::Tensor> rows;
  if (!c.at("unconditional").get<bool>()) {
    // HF conditions on the tokenized text even when it is "" (then [</s>], mask 1).
    mg::Tensor text = m.model->project_text(m.model->text_hidden_states(ints(g.at("input_ids"))));
    rows = p.guidance_scale != 1.0f ? std::vector<mg::Tensor>{text, mg::Tensor()} : std::vector<mg::Tensor>{text};
  } else {
    rows = {mg::Tensor()};  // get_unconditional_inputs: a zero state, mask 0, guidance 1
  }
  auto codes = m.model->generate_codes_from_rows(rows, p);
  const mg::Tensor& ref = g.at("codes");
  ASSERT_EQ(int64_t(codes.size()), ref.dim(0));
  ASSERT_EQ(int64_t(codes[0].size()), ref.dim(1));
  std::vector<int> flat;
  for (auto& row : codes) flat.insert(flat.end(), row.begin(), row.end());
  EXPECT_EQ(flat, ints(ref));
  if (g.count("cfg_logits_first_steps")) {
    std::vector<float> ours;
    for (auto& l : first_logits) ours.insert(ours.end(), l.begin(), l.end());
    EXPECT_LT(mgtest::rel_err(ours, g.at("cfg_logits_first_steps").to_vector()), 1e-4);
  }
  if (g.count("audio")) {
    mg::Tensor audio = m.model->decode_audio(codes);
    EXPECT_LT(mgtest::rel_err(audio, g.at("audio")), 1e-4);
  }
}

TEST(MusicgenGreedy, Ascii) { check_greedy("greedy_ascii"); }
TEST(MusicgenGreedy, Accents) { check_greedy("greedy_accents"); }
TEST(MusicgenGreedy, Cjk) { check_greedy("greedy_cjk"); }
// Trap: HF treats "" as the text [</s>] (conditioned, with CFG); our CLI follows audiocraft instead
// ("" = null condition) - both paths exist: this pins HF's.
TEST(MusicgenGreedy, EmptyPromptAsHfConditionsIt) { check_greedy("greedy_empty_prompt"); }
// Trap: unconditional = one null row, no CFG branch (HF get_unconditional_inputs, audiocraft None).
TEST(MusicgenGreedy, Unconditional) { check_greedy("greedy_unconditional"); }
TEST(MusicgenGreedy, NoCfg) { check_greedy("greedy_ascii_nocfg"); }
TEST(MusicgenGreedy, Stereo) { check_greedy("greedy_stereo"); }

// The public path: an empty prompt through generate_codes is the unconditional case.
TEST(MusicgenGreedy, EmptyPromptIsUnconditionalThroughGenerate) {
  Loaded m("tests/data/models/musicgen_tiny");
  auto g = mg::load_safetensors(kGolden + "greedy_unconditional.safetensors");
  mg::GenerateParams p;
  p.sampler.greedy = true;
  p.duration_s = 57.5 / 50.0;
  auto codes = m.model->generate_codes(p);
  std::vector<int> flat;
  for (auto& row : codes) flat.insert(flat.end(), row.begin(), row.end());
  EXPECT_EQ(flat, ints(g.at("codes")));
}

}  // namespace

namespace {

// f16/bf16 decoder weights: the parity cost of halving the bytes per step, measured on the
// teacher-forced logits (the numbers are printed so docs/PERFORMANCE.md can quote them).
TEST(MusicgenHalfWeights, LogitsStayCloseToF32) {
  auto g = mg::load_safetensors(kGolden + "tf_ascii.safetensors");
  for (mg::DType dt : {mg::DType::F16, mg::DType::BF16}) {
    Loaded m("tests/data/models/musicgen_tiny", dt);
    mg::Tensor text = m.model->project_text(m.model->text_hidden_states(ints(g.at("input_ids"))));
    mg::Tensor all = teacher_force(m, {text, mg::Tensor()}, g.at("decoder_input_ids"), true);
    const double err = mgtest::rel_err(cfg_combine(all, 3.0f), g.at("logits_cfg"));
    std::printf("decoder weights %s: CFG logits relative error %.2e vs transformers f32\n", mg::dtype_name(dt), err);
    EXPECT_LT(err, dt == mg::DType::F16 ? 5e-3 : 2e-2);
  }
}

}  // namespace
