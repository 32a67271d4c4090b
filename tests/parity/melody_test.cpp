// MusicGen-melody against transformers' MusicgenMelodyForConditionalGeneration (goldens in
// tests/data/golden/melody from tools/reference/make_melody_goldens.py; the script asserts that
// this transformers version really conditions on the melody: some versions dropped the melody
// prefix at step 0 of generate).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "kernels/cpu/sample.h"
#include "lm/generate.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

const std::string kGolden = mgtest::golden_dir() + "/melody/";
const std::string kModel = mgtest::data_dir() + "/models/musicgen_melody_tiny";

nlohmann::json case_info(const std::string& name) {
  std::ifstream f(kGolden + "index.json");
  return nlohmann::json::parse(f).at("cases").at(name);
}

std::vector<int> ints(const mg::Tensor& t) {
  std::vector<int> v;
  for (float x : t.to_vector()) v.push_back(int(x));
  return v;
}

// logits [S, K, 2048] -> the first `keep` classes, as the goldens store them.
mg::Tensor first_classes(const mg::Tensor& l, int64_t keep) {
  const int64_t S = l.dim(0), K = l.dim(1), V = l.dim(2);
  mg::Tensor out = mg::Tensor::empty(mg::DType::F32, {S, K, keep});
  for (int64_t i = 0; i < S * K; ++i) std::copy(l.f32() + i * V, l.f32() + i * V + keep, out.f32() + i * keep);
  return out;
}

struct Melody {
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(2);
  std::unique_ptr<mg::MusicGen> model = mg::MusicGen::load(*be, kModel);

  // [chroma prefix || text] for the cond row (chroma may be undefined = no melody) and the null
  // row (one-hot bin 0, zero text of the same length), as HF builds encoder_hidden_states.
  std::vector<mg::Tensor> prefixes(const mg::Tensor& chroma, const std::vector<int>& ids) {
    mg::Tensor c = model->chroma_prefix(chroma), n = model->chroma_prefix(mg::Tensor());
    if (ids.empty()) return {c, n};
    mg::Tensor text = be->download(model->project_text(model->text_hidden_states(ids)));
    auto cat = [&](const mg::Tensor& a, const mg::Tensor& t) {
      mg::Tensor ha = be->download(a);
      mg::Tensor out = mg::Tensor::empty(mg::DType::F32, {ha.dim(0) + t.dim(0), ha.dim(1)});
      std::copy(ha.f32(), ha.f32() + ha.numel(), out.f32());
      std::copy(t.f32(), t.f32() + t.numel(), out.f32() + ha.numel());
      return be->upload(out);
    };
    return {cat(c, text), cat(n, mg::Tensor::zeros(mg::DType::F32, text.shape))};
  }
};

// Traps: prefix order [chroma 235 || text || audio], no cross-attention, causal over the prefix,
// positions from the first chroma frame, tiling (T_c < 235) and truncation (T_c > 235) of the
// projected chroma, a null row whose chroma is one-hot bin 0 (W[:,0] + b, not zero).
void check_teacher_forcing(const std::string& name) {
  SCOPED_TRACE(name);
  Melody m;
  auto g = mg::load_safetensors(kGolden + name + ".safetensors");
  nlohmann::json info = case_info(name);
  mg::Tensor chroma = g.count("input_features") ? g.at("input_features") : mg::Tensor();
  std::vector<int> ids = g.count("input_ids") ? ints(g.at("input_ids")) : std::vector<int>{};
  if (info.at("text").is_string()) EXPECT_EQ(m.model->tokenize(info.at("text").get<std::string>()), ids);
  std::vector<mg::Tensor> pre = m.prefixes(chroma, ids);
  ASSERT_EQ(pre[0].dim(0), info.at("prefix_length").get<int64_t>());
  const mg::Tensor& cols = g.at("decoder_input_ids");
  const int K = int(cols.dim(0));
  const int64_t S = cols.dim(1);
  mg::DecoderState st = mg::decoder_start(*m.be, m.model->decoder(), {mg::Tensor(), mg::Tensor()}, pre[0].dim(0) + S);
  mg::decoder_prefill(*m.be, m.model->decoder(), st, pre);
  std::vector<int> c = ints(cols);
  std::vector<std::vector<std::vector<int>>> codes(2, std::vector<std::vector<int>>(K));
  for (int r = 0; r < 2; ++r)
    for (int k = 0; k < K; ++k) codes[r][k].assign(c.begin() + k * S, c.begin() + (k + 1) * S);
  mg::Tensor all;
  mg::decoder_step(*m.be, m.model->decoder(), st, codes, &all);  // [2, S, K, 2048]
  const int64_t n = S * K * 2048, keep = info.value("v_kept", 128);
  mg::Tensor cond = all.slice0(0, 1).reshape({S, K, 2048}), uncond = all.slice0(1, 1).reshape({S, K, 2048});
  mg::Tensor guided = mg::Tensor::empty(mg::DType::F32, {S, K, 2048});
  for (int64_t i = 0; i < n; ++i) guided.f32()[i] = mg::cfg_value(cond.f32()[i], uncond.f32()[i], 3.0f);
  EXPECT_LT(mgtest::rel_err(first_classes(cond, keep), g.at("logits_cond")), 1e-4);
  EXPECT_LT(mgtest::rel_err(first_classes(uncond, keep), g.at("logits_uncond")), 1e-4);
  EXPECT_LT(mgtest::rel_err(first_classes(guided, keep), g.at("logits_cfg")), 1e-4);
  std::vector<int> argmax;
  for (int64_t i = 0; i < S * K; ++i)
    argmax.push_back(int(std::max_element(guided.f32() + i * 2048, guided.f32() + (i + 1) * 2048) - guided.f32() - i * 2048));
  EXPECT_EQ(argmax, ints(g.at("argmax_cfg")));
  if (g.count("prefix.chroma")) {
    EXPECT_LT(mgtest::rel_err(m.be->download(m.model->chroma_prefix(chroma)), g.at("prefix.chroma")), 1e-5);
    EXPECT_LT(mgtest::rel_err(m.be->download(m.model->chroma_prefix(mg::Tensor())), g.at("prefix.null_chroma")), 1e-5);
  }
}

TEST(MelodyParity, ShortChromaIsTiled) { check_teacher_forcing("tf_scale_text"); }
TEST(MelodyParity, LongChromaIsTruncated) { check_teacher_forcing("tf_fifths_long_text"); }
// Trap: HF's forward without text drops the text block (prefix 235); generate() differs (below).
TEST(MelodyParity, MelodyWithoutText) { check_teacher_forcing("tf_scale_notext"); }
// Trap: no melody = the null chroma (one-hot bin 0) as the conditional chroma too.
TEST(MelodyParity, TextWithoutMelody) { check_teacher_forcing("tf_nomelody_text"); }
TEST(MelodyParity, BachChroma) { check_teacher_forcing("tf_bach_text"); }

// Greedy generation through the public path (prompt text + chroma), token-exact.
void check_greedy(const std::string& name) {
  SCOPED_TRACE(name);
  Melody m;
  auto g = mg::load_safetensors(kGolden + name + ".safetensors");
  nlohmann::json info = case_info(name);
  mg::GenerateParams p;
  p.sampler.greedy = true;
  p.duration_s = (info.at("frames").get<int>() + 0.5) / 50.0;
  p.prompt = info.at("text").is_string() ? info.at("text").get<std::string>() : "";
  if (g.count("input_features")) p.chroma = g.at("input_features");
  std::vector<float> first;
  p.on_logits = [&](int64_t step, const float* l, int K, int V) {
    if (step < 3) first.insert(first.end(), l, l + int64_t(K) * V);
  };
  mg::Codes codes = m.model->generate_codes(p);
  std::vector<int> flat;
  for (auto& row : codes) flat.insert(flat.end(), row.begin(), row.end());
  EXPECT_EQ(flat, ints(g.at("codes")));
  EXPECT_LT(mgtest::rel_err(first, g.at("guided_logits_first_steps").to_vector()), 1e-4);
}

TEST(MelodyGreedy, MelodyAndText) { check_greedy("greedy_melody_text"); }
// Trap: generate() without text feeds one masked token: prefix [chroma 235 || one zero vector].
TEST(MelodyGreedy, MelodyOnly) { check_greedy("greedy_melody_only"); }
TEST(MelodyGreedy, TextOnly) { check_greedy("greedy_text_only"); }

}  // namespace
