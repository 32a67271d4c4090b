// The training loop on the tiny model: the training forward equals the inference decoder's logits,
// a checkpoint resumes bit-exactly (N steps == N/2 steps, save, load, N/2 steps: the same adapter
// bytes), and the loss goes down when the same segments are trained on.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "lm/generate.h"
#include "lm/lora.h"
#include "test_util.h"
#include "train/trainer.h"

namespace {

using mg::Tensor;
namespace tr = mg::train;

class TrainLoop : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    be_ = mg::make_cpu_backend(1).release();
    model_ = mg::MusicGen::load(*be_, mgtest::data_dir() + "/models/musicgen_tiny").release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete be_;
  }
  static Tensor text(const std::string& prompt) {
    return be_->download(model_->project_text(*be_, model_->text_hidden_states(*be_, model_->tokenize(prompt))));
  }
  // n samples of T random frames, every third one unconditional.
  static std::vector<tr::TrainSample> samples(int n, int64_t T, uint32_t seed) {
    std::mt19937 rng(seed);
    const int K = model_->config().decoder.num_codebooks, V = model_->config().decoder.vocab_size;
    std::vector<tr::TrainSample> out;
    for (int i = 0; i < n; ++i) {
      tr::TrainSample s;
      s.codes.assign(K, std::vector<int>(T));
      for (auto& row : s.codes)
        for (int& c : row) c = int(rng() % uint32_t(V));
      if (i % 3 != 2) s.text = text(i % 2 ? "calm piano" : "drums and bass");
      out.push_back(std::move(s));
    }
    return out;
  }
  static tr::TrainOptions options() {
    tr::TrainOptions o;
    o.lora.r = 4;
    o.lora.lora_alpha = 8.0f;
    o.lora.lora_dropout = 0.1f;
    o.lora.targets = mg::all_lora_modules();
    o.adamw.lr = 1e-2f;
    o.steps = 6;
    o.warmup = 1;
    o.batch = 2;
    o.accumulate = 2;
    o.cond_dropout = 0.3;
    return o;
  }
  static mg::Backend* be_;
  static mg::MusicGen* model_;
};
mg::Backend* TrainLoop::be_ = nullptr;
mg::MusicGen* TrainLoop::model_ = nullptr;

TEST_F(TrainLoop, TrainingForwardEqualsTheInferenceDecoder) {
  // A fresh adapter (B = 0) leaves the model as it is: the teacher-forced training logits must be
  // the inference decoder's logits for the same delayed columns.
  auto batch = samples(2, 7, 3);
  tr::TrainOptions o = options();
  const mg::LoraAdapter ad = mg::init_lora_adapter(o.lora, model_->config().decoder, true, 1);
  const tr::LoraTrainingModel tm(model_->decoder(), model_->config().delays());
  mg::cpu::Exec ex;
  const std::vector<float> got = tm.logits(ex, ad, batch);
  const tr::DelayedBatch db = tr::build_delayed_batch(batch, model_->config().delays(), 2048);
  const int K = 4;
  const int64_t V = 2048, T = db.T;
  for (int b = 0; b < 2; ++b) {
    mg::DecoderState st = mg::decoder_start(*be_, model_->decoder(), {batch[b].text}, T);
    std::vector<std::vector<std::vector<int>>> codes(1, std::vector<std::vector<int>>(K));
    for (int k = 0; k < K; ++k)
      for (int64_t s = 0; s < T; ++s) codes[0][k].push_back(db.ids[k][b * T + s]);
    Tensor all;
    mg::decoder_step(*be_, model_->decoder(), st, codes, &all);  // [1, T, K, V]
    std::vector<float> want = all.to_vector();
    std::vector<float> mine(got.begin() + b * T * K * V, got.begin() + (b + 1) * T * K * V);
    EXPECT_LT(mgtest::rel_err(mine, want), 1e-5) << "sample " << b;
  }
}

TEST_F(TrainLoop, ResumeFromACheckpointIsBitExact) {
  tr::TrainData data;
  data.train = samples(5, 9, 7);
  const tr::TrainOptions o = options();
  const tr::LoraTrainingModel tm(model_->decoder(), model_->config().delays());
  mg::cpu::Exec ex;
  auto fresh = [&]() {
    tr::TrainState st;
    st.params = mg::init_lora_adapter(o.lora, model_->config().decoder, true, 5);
    st.rng.seed(9);
    return st;
  };
  const std::string dir = mgtest::test_case_dir();
  tr::TrainState straight = fresh();
  for (int i = 0; i < 6; ++i) tr::train_step(ex, tm, o, data, straight);
  mg::save_peft_adapter(dir + "/straight", straight.params);

  tr::TrainState half = fresh();
  for (int i = 0; i < 3; ++i) tr::train_step(ex, tm, o, data, half);
  tr::save_checkpoint(dir + "/ckpt", half);
  tr::TrainState resumed = tr::load_checkpoint(dir + "/ckpt");
  EXPECT_EQ(resumed.step, 3);
  for (int i = 0; i < 3; ++i) tr::train_step(ex, tm, o, data, resumed);
  mg::save_peft_adapter(dir + "/resumed", resumed.params);

  const std::string a = mgtest::slurp(dir + "/straight/adapter_model.safetensors");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == mgtest::slurp(dir + "/resumed/adapter_model.safetensors"))
      << "6 steps straight and 3 + save + load + 3 gave different adapters";
}

TEST_F(TrainLoop, LossFallsOnRepeatedData) {
  tr::TrainData data;
  data.train = samples(2, 12, 21);
  tr::TrainOptions o = options();
  o.lora.lora_dropout = 0.0f;
  o.cond_dropout = 0.0;
  o.steps = 40;
  o.warmup = 2;
  o.accumulate = 1;
  o.adamw.lr = 3e-2f;
  const tr::LoraTrainingModel tm(model_->decoder(), model_->config().delays());
  mg::cpu::Exec ex;
  tr::TrainState st;
  st.params = mg::init_lora_adapter(o.lora, model_->config().decoder, true, 5);
  const double before = tr::validation_loss(ex, tm, o, data.train, st.params);
  for (int i = 0; i < o.steps; ++i) tr::train_step(ex, tm, o, data, st);
  const double after = tr::validation_loss(ex, tm, o, data.train, st.params);
  EXPECT_LT(after, 0.9 * before) << "before " << before << ", after " << after;
}

TEST_F(TrainLoop, AMissingCheckpointNamesItsFolder) {
  const std::string dir = mgtest::test_case_dir();
  EXPECT_NE(mgtest::error_of([&] { tr::load_checkpoint(dir + "/nothing"); }).find("nothing"), std::string::npos);
}

}  // namespace
