// LoRA training of the tiny MusicGen against PyTorch + PEFT (tests/data/golden/train/lora.safetensors,
// tools/reference/make_train_goldens.py): the audiocraft loss of a batch (with one null condition),
// every LoRA gradient, and 20 AdamW steps with accumulation, clipping and the warmup + cosine schedule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "lm/generate.h"
#include "lm/lora.h"
#include "test_util.h"
#include "train/adamw.h"
#include "train/lora_decoder.h"
#include "weights/safetensors.h"

namespace {

using mg::LoraAdapter;
using mg::LoraModule;
using mg::Tensor;

class LoraTrainingParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new std::map<std::string, Tensor>(mg::load_safetensors(mgtest::golden_dir() + "/train/lora.safetensors"));
    be_ = mg::make_cpu_backend(1).release();
    model_ = mg::MusicGen::load(*be_, mgtest::data_dir() + "/models/musicgen_tiny").release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete be_;
    delete golden_;
  }
  static const Tensor& g(const std::string& name) {
    auto it = golden_->find(name);
    if (it == golden_->end()) throw mg::Error("golden tensor " + name + " is missing from train/lora.safetensors");
    return it->second;
  }
  static std::string peft_name(int layer, LoraModule m, const char* ab) {
    return std::string(mg::peft_layer_prefix(mg::PeftLayout::ConditionalGeneration)) + std::to_string(layer) + "." +
           mg::lora_module_name(m) + ".lora_" + ab + ".weight";
  }
  // The golden's adapter (prefix "" initial, "grad." gradients, "final." after the 20 steps).
  static LoraAdapter adapter(const std::string& prefix) {
    LoraAdapter a;
    a.config.r = 4;
    a.config.lora_alpha = 8.0f;
    a.config.targets = mg::all_lora_modules();
    for (int l = 0; l < model_->config().decoder.num_hidden_layers; ++l)
      for (LoraModule m : mg::all_lora_modules()) {
        mg::LoraWeights w;
        w.layer = l;
        w.module = m;
        w.A = g(prefix + peft_name(l, m, "A")).as_f32();
        w.B = g(prefix + peft_name(l, m, "B")).as_f32();
        w.A = Tensor::from_vector(w.A.to_vector(), w.A.shape);  // own copies: the optimiser writes them
        w.B = Tensor::from_vector(w.B.to_vector(), w.B.shape);
        a.weights.push_back(w);
      }
    return a;
  }
  static std::vector<mg::train::TrainSample> batch(std::vector<int> which) {
    const Tensor& codes = g("codes");
    const int64_t K = codes.dim(1), T = codes.dim(2);
    std::vector<mg::train::TrainSample> out;
    for (int b : which) {
      mg::train::TrainSample s;
      s.codes.assign(K, std::vector<int>(T));
      for (int64_t k = 0; k < K; ++k)
        for (int64_t t = 0; t < T; ++t) s.codes[k][t] = codes.ptr<int32_t>()[(b * K + k) * T + t];
      const std::string tn = "text." + std::to_string(b);
      if (golden_->count(tn)) s.text = Tensor::from_vector(g(tn).to_vector(), g(tn).shape);
      out.push_back(std::move(s));
    }
    return out;
  }
  static void expect_adapters_near(const LoraAdapter& got, const LoraAdapter& want, double tol, const char* what) {
    ASSERT_EQ(got.weights.size(), want.weights.size());
    double worst = 0.0;
    for (size_t i = 0; i < got.weights.size(); ++i) {
      const auto& a = got.weights[i];
      const auto& b = want.weights[i];
      const double ea = mgtest::rel_err(a.A, b.A), eb = mgtest::rel_err(a.B, b.B);
      EXPECT_LT(ea, tol) << what << " " << peft_name(a.layer, a.module, "A");
      EXPECT_LT(eb, tol) << what << " " << peft_name(a.layer, a.module, "B");
      worst = std::max(worst, std::max(ea, eb));
    }
    std::printf("%s: worst relative error over %zu tensors %.2e\n", what, 2 * got.weights.size(), worst);
  }
  static std::map<std::string, Tensor>* golden_;
  static mg::Backend* be_;
  static mg::MusicGen* model_;
};
std::map<std::string, Tensor>* LoraTrainingParity::golden_ = nullptr;
mg::Backend* LoraTrainingParity::be_ = nullptr;
mg::MusicGen* LoraTrainingParity::model_ = nullptr;

TEST_F(LoraTrainingParity, LossAndEveryLoraGradientMatchPeft) {
  mg::train::LoraTrainingModel tm(model_->decoder(), model_->config().delays());
  const LoraAdapter params = adapter("");
  LoraAdapter grads = mg::train::zero_like(params);
  mg::cpu::Exec ex;
  const auto res = tm.forward_backward(ex, params, batch({0, 1, 2, 3}), &grads);
  const double want = g("loss").to_vector()[0];
  EXPECT_NEAR(res.loss, want, 1e-4 * want);
  expect_adapters_near(grads, adapter("grad."), 1e-4, "gradient");
}

TEST_F(LoraTrainingParity, TwentyAdamWStepsMatchPytorch) {
  mg::train::LoraTrainingModel tm(model_->decoder(), model_->config().delays());
  LoraAdapter params = adapter("");
  mg::train::AdamWState state;
  mg::train::AdamWConfig cfg;
  cfg.lr = 1e-2f;
  cfg.weight_decay = 0.01f;
  mg::cpu::Exec ex;
  const std::vector<float> step_losses = g("step_losses").to_vector();
  for (int step = 0; step < 20; ++step) {
    LoraAdapter grads = mg::train::zero_like(params);
    double loss = 0.0;
    for (const auto& mb : {std::vector<int>{0, 1}, std::vector<int>{2, 3}})
      loss += 0.5 * tm.forward_backward(ex, params, batch(mb), &grads, 0.5f).loss;
    EXPECT_NEAR(loss, step_losses[step], 1e-4 * step_losses[step]) << "step " << step;
    mg::train::clip_grad_norm(grads, 1.0);
    mg::train::adamw_step(params, grads, state, cfg, cfg.lr * mg::train::lr_factor(step, 3, 20));
  }
  expect_adapters_near(params, adapter("final."), 1e-4, "after 20 steps");
}

}  // namespace
