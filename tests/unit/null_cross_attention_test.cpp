// CFG's null rows (no text) have all-zero cross-attention keys and values, so their
// cross-attention output is exactly +0.0; the decode step writes those zeros instead of attending
// (lm/transformer.h, CrossAttentionRun::null_text). The zeros must be the bits attending gives,
// sign included (a -0.0 could reach the logits through the output projection and residual), on
// every kernel path, and the logits of whole decode steps - alone and in the server's shared
// step - must be the bits of attending over the zeros.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "lm/batched_step.h"
#include "lm/generate.h"
#include "lm/transformer.h"
#include "cpu_paths.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::Tensor;

TEST(NullCrossAttention, ZeroKeysAndValuesGivePositiveZeroOnEveryPath) {
  mg::cpu::ThreadPool pool(2);
  // Head widths of the split-key path (64) and of the (head, query) paths (8, 6); key counts of
  // one and several blocks; queries of both signs.
  for (auto [heads, dh] : {std::pair<int, int64_t>{16, 64}, std::pair<int, int64_t>{4, 8}, std::pair<int, int64_t>{3, 6}})
    for (int64_t T : {1, 12, 100})
      for (auto [name, ex] : mgtest::cpu_kernel_paths()) {
        ex.pool = &pool;
        const int64_t D = heads * dh;
        Tensor q = mgtest::random_tensor({2, 1, D}, 9, 5.0f);
        Tensor kv = Tensor::zeros(DType::F32, {2, T, D});
        Tensor out = mg::cpu::attention_rows(q, kv, kv, T, heads, 0.125f, false, ex);
        for (int64_t i = 0; i < out.numel(); ++i) {
          uint32_t bits;
          std::memcpy(&bits, out.f32() + i, 4);
          ASSERT_EQ(bits, 0u) << name << " H " << heads << " T " << T << " value " << i;
        }
      }
}

struct Tiny {
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(2);
  std::unique_ptr<mg::MusicGen> model = mg::MusicGen::load(*be, mgtest::data_dir() + "/models/musicgen_tiny");
  Tensor text(const std::string& prompt) const {
    return model->project_text(model->text_hidden_states(model->tokenize(prompt)));
  }
};

// A fresh state (its own caches) that attends over its null rows' zeros instead of writing them.
mg::DecoderState attending(mg::Backend& be, const mg::MusicgenDecoder& dec, const std::vector<Tensor>& rows) {
  mg::DecoderState st = mg::decoder_start(be, dec, rows, 16);
  for (mg::CrossAttentionRun& run : st.cross_runs) run.null_text = false;
  return st;
}

// Codes that differ by row and step, inside the vocabulary.
std::vector<std::vector<std::vector<int>>> codes_at(int rows, int K, int step) {
  std::vector<std::vector<std::vector<int>>> c(static_cast<size_t>(rows), std::vector<std::vector<int>>(static_cast<size_t>(K)));
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < K; ++k) c[size_t(r)][size_t(k)] = {(7 * r + 3 * k + 5 * step) % 40};
  return c;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape == b.shape && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

TEST(NullCrossAttention, DecodeStepsKeepTheirLogitsBits) {
  Tiny t;
  const mg::MusicgenDecoder& dec = t.model->decoder();
  const int K = dec.cfg.num_codebooks;
  // Two sequences with CFG (texts of different lengths, then their null rows), and one alone.
  const std::vector<std::vector<Tensor>> row_sets = {{t.text("warm analog synth pads"), t.text("drums"), Tensor(), Tensor()},
                                                     {t.text("a calm piano"), Tensor()}};
  for (const auto& rows : row_sets) {
    mg::DecoderState skip = mg::decoder_start(*t.be, dec, rows, 16);
    int nulls = 0;
    for (const mg::CrossAttentionRun& run : skip.cross_runs) nulls += run.null_text ? run.rows : 0;
    ASSERT_EQ(nulls, int(rows.size()) / 2) << "the null rows form null runs";
    mg::DecoderState attend = attending(*t.be, dec, rows);
    for (int step = 0; step < 6; ++step) {
      const auto codes = codes_at(skip.rows, K, step);
      Tensor a = mg::decoder_step(*t.be, dec, skip, codes), b = mg::decoder_step(*t.be, dec, attend, codes);
      ASSERT_TRUE(same_bits(a, b)) << rows.size() << " rows, step " << step;
    }
  }
}

TEST(NullCrossAttention, SharedStepKeepsItsLogitsBits) {
  Tiny t;
  const mg::MusicgenDecoder& dec = t.model->decoder();
  const int K = dec.cfg.num_codebooks;
  const std::vector<std::vector<Tensor>> rows = {{t.text("bright brass"), Tensor()},
                                                 {t.text("lofi beat with vinyl"), Tensor()}};
  std::vector<mg::DecoderState> skip = {mg::decoder_start(*t.be, dec, rows[0], 16),
                                        mg::decoder_start(*t.be, dec, rows[1], 16)};
  std::vector<mg::DecoderState> attend = {attending(*t.be, dec, rows[0]), attending(*t.be, dec, rows[1])};
  for (int step = 0; step < 6; ++step) {
    Tensor ids = Tensor::empty(DType::I32, {K, 4});
    for (int k = 0; k < K; ++k)
      for (int r = 0; r < 4; ++r) ids.ptr<int32_t>()[k * 4 + r] = (11 * r + 3 * k + 5 * step) % 40;
    Tensor a = mg::decoder_step_states(*t.be, dec, {&skip[0], &skip[1]}, ids);
    Tensor b = mg::decoder_step_states(*t.be, dec, {&attend[0], &attend[1]}, ids);
    ASSERT_TRUE(same_bits(a, b)) << "step " << step;
  }
}

}  // namespace
