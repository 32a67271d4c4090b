// T5 text conditioning against transformers: token ids from our SentencePiece wrapper, the T5
// encoder's hidden states and the projected text (tests/data/golden/{tokenizer,t5}, written by
// tools/reference/make_musicgen_goldens.py from tests/data/models/musicgen_tiny).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "conditioning/t5.h"
#include "conditioning/tokenizer.h"
#include "lm/generate.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

const std::string kModel = mgtest::data_dir() + "/models/musicgen_tiny";

std::vector<int> ints(const mg::Tensor& t) {
  std::vector<int> v;
  for (float x : t.to_vector()) v.push_back(int(x));
  return v;
}

// Trap: T5 appends </s> (id 1) and no BOS; the empty prompt is [</s>]; CJK and emoji fall back to
// <unk> pieces exactly as sentencepiece does. Our ids must equal sentencepiece + [1] for every case.
TEST(Tokenizer, MatchesSentencePieceAndTransformers) {
  std::ifstream f(mgtest::golden_dir() + "/tokenizer/cases.json");
  ASSERT_TRUE(f.good());
  nlohmann::json j = nlohmann::json::parse(f);
  auto tok = mg::T5Tokenizer::load(kModel);
  int n = 0;
  for (const auto& c : j.at("cases")) {
    std::vector<int> expected = c.at("ids").get<std::vector<int>>();
    EXPECT_EQ(tok->encode(c.at("text").get<std::string>()), expected) << "case " << c.at("name");
    ++n;
  }
  EXPECT_GE(n, 6);
}

// Trap: no 1/sqrt(d) scaling in T5 attention, the relative bias of block 0 shared by every block,
// buckets with +16 for keys after the query, RMSNorm without mean or bias. 'long' (> 128 tokens)
// reaches every bucket, including the exact 16/32/64 edges.
TEST(T5Encoder, HiddenStatesAndProjectionMatchTransformers) {
  auto be = mg::make_cpu_backend(1);
  auto model = mg::MusicGen::load(*be, kModel);
  for (const char* name : {"ascii", "accents", "empty", "long"}) {
    auto g = mg::load_safetensors(mgtest::golden_dir() + "/t5/" + name + ".safetensors");
    std::vector<int> ids = ints(g.at("input_ids"));
    mg::Tensor hs = be->download(model->text_hidden_states(ids));
    EXPECT_LT(mgtest::rel_err(hs, g.at("last_hidden_state")), 1e-4) << name;
    mg::Tensor proj = be->download(model->project_text(model->text_hidden_states(ids)));
    EXPECT_LT(mgtest::rel_err(proj, g.at("projected")), 1e-4) << name;
  }
}

// The bucket function against T5's relative-position buckets (transformers'
// T5Attention._relative_position_bucket for t5-base: 32 buckets, bidirectional, 128 max distance).
TEST(T5Encoder, RelativePositionBucketsMatchTable) {
  auto expect_mag = [](int64_t n) {
    if (n < 8) return int(n);
    if (n < 12) return 8;
    if (n < 16) return 9;
    if (n < 23) return 10;
    if (n < 32) return 11;
    if (n < 46) return 12;
    if (n < 64) return 13;
    if (n < 91) return 14;
    return 15;
  };
  for (int64_t rel = -300; rel <= 300; ++rel) {
    const int64_t n = rel < 0 ? -rel : rel;
    EXPECT_EQ(mg::t5_relative_position_bucket(rel, 32, 128), expect_mag(n) + (rel > 0 ? 16 : 0)) << "rel " << rel;
  }
}

}  // namespace
