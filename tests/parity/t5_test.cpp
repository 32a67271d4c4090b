// T5 text conditioning against transformers: token ids from our SentencePiece wrapper, the T5
// encoder's hidden states and the projected text (tests/data/golden/{tokenizer,t5}, written by
// tools/reference/make_musicgen_goldens.py from tests/data/models/musicgen_tiny).
#include <gtest/gtest.h>

#include <cstring>
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

// A server encodes the prompts of requests that start together in one pass (t5_encode_batch):
// each prompt's hidden states must be the same bits as its encode alone, or a request's music
// would depend on which others joined with it. The trap: prompts that share a linear call get
// different bits if the kernel's summation depends on the row count (sgemm above 16 rows), so the
// mix has prompts that fill a 16-row call exactly, overflow it, and one longer than 16 tokens.
TEST(T5Encoder, BatchedPromptsAreBitIdenticalToEachAlone) {
  for (int threads : {1, 2}) {
    auto be = mg::make_cpu_backend(threads);
    auto model = mg::MusicGen::load(*be, kModel);
    std::vector<std::vector<int>> prompts;
    for (const char* text : {"lofi beat", "", "a calm piano piece with soft strings and rain", "drums",
                             "an upbeat electronic dance track with heavy bass, bright synth leads and claps",
                             "jazz", "jazz", "80s pop"})
      prompts.push_back(model->tokenize(text));
    prompts.push_back(std::vector<int>(16, 5));  // exactly one call's rows
    prompts.push_back(std::vector<int>(15, 7));
    prompts.push_back(std::vector<int>(1, 1));
    bool some_long = false;
    for (const auto& p : prompts) some_long |= p.size() > size_t(mg::kT5RowsPerCall);
    ASSERT_TRUE(some_long);
    std::vector<mg::Tensor> batch = model->text_hidden_states(*be, prompts);
    ASSERT_EQ(batch.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      mg::Tensor alone = be->download(model->text_hidden_states(*be, prompts[i]));
      mg::Tensor b = be->download(batch[i]);
      ASSERT_EQ(b.shape, alone.shape) << "prompt " << i;
      EXPECT_EQ(std::memcmp(b.f32(), alone.f32(), size_t(alone.numel()) * sizeof(float)), 0)
          << "prompt " << i << " (" << prompts[i].size() << " tokens), " << threads << " threads";
    }
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
