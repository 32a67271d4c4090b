// One generation request stepped from outside, one decode step at a time: what a continuous
// batching scheduler (tools/musicgen-server) holds per request. It walks the same windows,
// delay patterns, guidance, sampling and streaming as MusicGen::generate_codes, but leaves the
// decoder step to the caller, who runs the single-column steps of many steppers together with
// decoder_step_states (lm/batched_step.h) and hands each its rows of the logits.
//
// A request's tokens depend only on its own parameters and seed: sampling is a function of
// (seed, step, codebook) and every op of the shared step computes a row without looking at the
// other rows. Audio prompts (continuation) are not supported here.
#pragma once

#include <utility>

#include "lm/generate.h"
#include "lm/generate_internal.h"

namespace mg {

class MusicGen::SequenceStepper {
 public:
  // p: one sequence (p.prompts, p.takes and p.audio_prompt unused). text: the projected text of
  // p.prompt (MusicGen::project_text), computed by the caller so that it can cache it; undefined
  // for an unconditional request. Sets up the first window (melody models: runs its prefix).
  // kv_block: a finished stepper's (take_kv_block), used as this one's KV caches when it fits, so
  // a server's next request writes into pages already mapped; each later window takes over its
  // previous window's block the same way.
  SequenceStepper(const MusicGen& model, Backend& be, GenerateParams p, Tensor text, Tensor kv_block = Tensor());

  bool done() const { return done_; }
  // The next step feeds several columns (a later window's prompt): run it alone with solo_step().
  bool needs_solo_step() const;
  void solo_step();

  // For a shared single-column step: this sequence's decoder state, its row count, and its input
  // column written into ids[k * ld + r0 + r] for each of its rows r.
  DecoderState& state() { return w_.st; }
  int rows() const { return w_.st.rows; }  // 0 once done()
  void write_ids(int32_t* ids, int64_t ld, int64_t r0) const;
  // The inputs of one shared step of `steppers` (at least one; each due a shared step): their
  // states, and the ids [K, total rows] on the host with each stepper's rows after the previous
  // one's (write_ids of each).
  struct StepInputs {
    std::vector<DecoderState*> states;
    Tensor ids;
  };
  static StepInputs shared_step_inputs(const std::vector<SequenceStepper*>& steppers);
  // This sequence's logits [rows, K, vocab] (on the device) from the shared step: samples, fills
  // the pattern, streams final frames, and moves on to the next window when this one is full.
  // The same as finish_sampled_step(sample_shared_step(logits, its own backend)).
  void finish_shared_step(const Tensor& logits);
  // The two halves, for a step whose logits come out on another backend (lm/step_lanes.h): the
  // tokens drawn from this sequence's logits on `be` (host i32; the same bits on any CPU backend:
  // the draws depend on the seed, step and codebook only; reads this stepper, changes nothing), and
  // everything after the draw, on the stepper's own backend.
  Tensor sample_shared_step(const Tensor& logits, Backend& be) const;
  void finish_sampled_step(const Tensor& tokens);

  int64_t steps_done() const { return b_.steps_done; }
  int64_t steps_total() const { return b_.steps_total; }
  const Codes& codes() const { return all_; }  // every frame, once done()
  // The KV cache block once done() (undefined before, or after a first call): for the next stepper.
  Tensor take_kv_block() { return done_ ? std::exchange(kv_spare_, Tensor()) : Tensor(); }

 private:
  void start_window();
  void end_window();
  const MusicGen& m_;
  GenerateParams p_;
  Batch b_;
  Window w_;
  std::vector<std::pair<int64_t, int64_t>> windows_;
  size_t window_ = 0;
  int64_t column_ = 0;  // the column the next step generates
  Codes prompt_;        // the next window's prompt (the previous window's tail)
  Codes all_;
  Tensor kv_spare_;  // a block for the next window: the given one, then each ended window's
  bool done_ = false;
};

}  // namespace mg
