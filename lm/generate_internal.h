// The generation loop's per-batch and per-window state (lm/generate_loop.cpp), shared with the
// request-at-a-time stepper of continuous batching (lm/sequence_stepper.cpp) so that both walk the
// same windows, patterns and streaming bookkeeping.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "lm/generate.h"

namespace mg {

struct MusicGen::Batch {
  Backend* be = nullptr;             // the session's backend: everything below runs on it
  const GenerateParams* p = nullptr;
  int sequences = 0;
  bool cfg = false;
  std::vector<Tensor> text;          // cross-attention models: projected text per sequence (undefined: null)
  std::vector<Tensor> melody_text;   // melody models: projected text per sequence (undefined: none)
  std::vector<uint64_t> seeds;      // per sequence: the counter-based draws of sample_tokens
  int64_t steps_done = 0, steps_total = 0;
};

// One window of generation: a delay pattern per sequence over `frames` frames, the decoder state
// of every row, and how far streaming has got.
struct MusicGen::Window {
  std::vector<DelayPattern> patterns;  // one per sequence, prompt codes fixed
  DecoderState st;
  int64_t frames = 0, columns = 0;
  int64_t start = 0;        // the first column to generate (prompt frames + 1)
  int64_t first_new = 0;    // frames before this come from the prompt: streamed already
  int64_t emitted = 0;      // frames of this window handed to on_frame (or skipped) so far
  int64_t global_base = 0;  // the index on_frame gives this window's first new frame
};

// Window sizes of audiocraft's loop, to know the total step count up front (for progress).
// Returns (prompt frames, total frames) per window.
std::vector<std::pair<int64_t, int64_t>> plan_windows(int64_t total, int64_t prompt, double duration_s,
                                                      double max_window_s, double stride_s, int frame_rate);

}  // namespace mg
