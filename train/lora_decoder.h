// The MusicGen decoder's training forward and backward with LoRA adapters (the base weights, norms,
// embeddings and heads frozen), teacher-forced over a batch of code sequences exactly as
// audiocraft's trainer does it (LMModel.compute_predictions + MusicGenSolver._compute_cross_entropy):
//
//   - the codes [K, T] of a sample are laid out by the delay pattern: column s of codebook k holds
//     frame s - 1 - delay[k], column 0 and every position before a codebook's delay hold the
//     special token (vocab_size). audiocraft's sequence has T + 1 columns; the logits of the last
//     one are never used and, the attention being causal, cannot change the others, so T are run;
//   - the logits of column s predict frame s - delay[k] of codebook k; frames after
//     T - 1 - delay[k] have no prediction (masked);
//   - loss = mean over codebooks of the mean cross-entropy over that codebook's unmasked positions.
//
// The text condition of each sample is the projected, masked T5 output [T_text, D] (computed once
// per batch by the frozen encoder) or undefined for a null condition (condition dropout): its
// cross-attention output is exactly zero, as with audiocraft's and HF's zeroed conditions.
// Everything runs on the CPU in f32 (kernels/cpu/train_ops.h).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/tensor.h"
#include "lm/lora.h"
#include "lm/transformer.h"

namespace mg::train {

struct TrainSample {
  std::vector<std::vector<int>> codes;  // [K][T] frames, values 0..vocab-1 (not delayed)
  Tensor text;                          // host f32 [T_text, D], or undefined: the null condition
};

// The delayed inputs and the targets of a batch of B samples of T frames each: ids[k][b * T + s]
// and targets[(b * T + s) * K + k] (-1 where masked).
struct DelayedBatch {
  int64_t B = 0, T = 0;
  std::vector<std::vector<int32_t>> ids;
  std::vector<int32_t> targets;
};
DelayedBatch build_delayed_batch(const std::vector<TrainSample>& batch, const std::vector<int>& delays, int special);

struct LossResult {
  double loss = 0.0;
  std::vector<double> per_codebook;
};

// A zeroed gradient with the adapter's structure (same modules, A and B shapes).
LoraAdapter zero_like(const LoraAdapter& adapter);

class LoraTrainingModel {
 public:
  // `dec` must hold host f32 weights (loaded on a CPU backend with weight_dtype F32) and outlive
  // this object; delays as MusicgenConfig::delays().
  LoraTrainingModel(const MusicgenDecoder& dec, std::vector<int> delays);

  // Loss of the batch; when `grads` is given, adds d(loss * grad_scale)/d(A, B) to it (so that
  // micro-batches accumulate). LoRA dropout (adapter.config.lora_dropout > 0) draws its masks
  // from `rng` (required then).
  LossResult forward_backward(const cpu::Exec& ex, const LoraAdapter& adapter, const std::vector<TrainSample>& batch,
                              LoraAdapter* grads, float grad_scale = 1.0f, std::mt19937_64* rng = nullptr) const;

  // The logits [B * T, K, vocab] of the batch (no gradient, no dropout), for tests.
  std::vector<float> logits(const cpu::Exec& ex, const LoraAdapter& adapter,
                            const std::vector<TrainSample>& batch) const;

 private:
  const MusicgenDecoder& dec_;
  std::vector<int> delays_;
};

}  // namespace mg::train
