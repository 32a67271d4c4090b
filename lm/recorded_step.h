// The decode step of the generation loop as ONE recording per generation window, replayed for
// every single-column step (Backend::record; a CUDA graph on the GPU): the decoder, guidance,
// sampling and the delay pattern's bookkeeping. The step's inputs (the column's codes, the
// position, the step number) and the delay pattern live in device memory and the recording
// advances them itself, so steps follow each other with no upload or download: the host reads
// tokens back only when it needs them (streaming, logits callbacks) and the pattern once at the
// end of the window. On the CPU the recording re-runs the same ops, so the parity tests cover
// this path too.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "kernels/ops.h"
#include "lm/delay_pattern.h"
#include "lm/transformer.h"

namespace mg {

class RecordedStep {
 public:
  // state must outlive this object; seeds: one per sequence (rows = 2 * seeds with cfg, else seeds).
  RecordedStep(Backend& be, const MusicgenDecoder& dec, DecoderState& state, bool cfg, float guidance_scale,
               const SamplerParams& sampler, const std::vector<uint64_t>& seeds, bool want_guided);

  // Uploads the patterns (one per sequence) and the step's inputs: the next step feeds column
  // `feed` (known for every sequence) at position state.length and is numbered `step` for the
  // sampler (Backend::sample_tokens).
  void start(const std::vector<DelayPattern>& patterns, int64_t feed, int64_t step);
  // One step: feeds the current column, samples the next one into the device pattern, and moves
  // on to it. Advances state.length. guided (when asked for at construction) receives the [B, K, V]
  // logits on the device, valid until the next step.
  void step(Tensor* guided = nullptr);
  // The tokens [B, K] the last step sampled (a download: waits for the device).
  Tensor tokens();
  // The device patterns back into `patterns` (a download: waits for the device).
  void read_patterns(std::vector<DelayPattern>& patterns);

 private:
  Backend& be_;
  DecoderState& st_;
  int K_ = 0;
  // i32: ids[K * rows] | row_positions[rows] | pos | keys | step | column; the last rows + 4 are the
  // counters every step advances by one.
  Tensor in_dev_, counters_, column_;
  StepAt at_;
  Tensor step_, seeds_, pattern_;  // pattern_: [B, K, columns] i32
  Tensor tokens_, guided_;
  std::function<void()> ops_;  // the step: run directly the first time, recorded from the second
  bool warm_ = false;
  std::unique_ptr<Backend::Recording> rec_;
};

}  // namespace mg
