// The decode step of the generation loop (decoder, guidance, sampling) as ONE recording per
// generation window, replayed for every single-column step (Backend::record; CUDA graphs on the
// GPU). Only the inputs change between steps, and they live in one small device buffer that each
// step refreshes with a single upload: the column's codes, the position and the step number.
// On the CPU the recording re-runs the same ops, so the parity tests cover this path too.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "kernels/ops.h"
#include "lm/transformer.h"

namespace mg {

class RecordedStep {
 public:
  // state must outlive this object; seeds: one per sequence (rows = 2 * seeds with cfg, else seeds).
  RecordedStep(Backend& be, const MusicgenDecoder& dec, DecoderState& state, bool cfg, float guidance_scale,
               const SamplerParams& sampler, const std::vector<uint64_t>& seeds, bool want_guided);

  // One column per row at position state.length: ids[k * rows + r] is row r's code of codebook k;
  // `step` numbers the draw (Backend::sample_tokens). Returns the tokens [B, K] on the host and
  // advances state.length. guided (when asked for at construction) receives the [B, K, V] logits
  // on the device, valid until the next run.
  Tensor run(const std::vector<int32_t>& ids, int64_t step, Tensor* guided = nullptr);

 private:
  Backend& be_;
  DecoderState& st_;
  int K_ = 0, V_ = 0;        // codebooks; vocabulary (ids run 0..V_, V_ being the special token)
  Tensor in_host_, in_dev_;  // i32: ids[K * rows] | row_positions[rows] | pos | keys | step
  StepAt at_;
  Tensor step_, seeds_;
  Tensor tokens_, guided_;
  std::function<void()> ops_;  // the step: run directly the first time, recorded from the second
  bool warm_ = false;
  std::unique_ptr<Backend::Recording> rec_;
};

}  // namespace mg
