// Streaming audio out while generation runs: frames arrive one by one (GenerateParams::on_frame),
// and are decoded in overlapping windows. The 32 kHz EnCodec decoder is not causal (convolutions
// see both sides, the LSTM sees everything before), so each window carries left context and a
// lookahead that is decoded but not yet emitted, and consecutive windows are cross-faded. The
// difference from a whole-file decode is measured in tests/parity/generation_test.cpp.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "lm/generate.h"

namespace mg {

struct StreamParams {
  int64_t chunk_frames = 25;      // frames emitted per window (0.5 s at 50 Hz)
  int64_t context_frames = 50;    // decoded before the chunk, discarded
  int64_t lookahead_frames = 10;  // decoded after the chunk, held back until the next window
  int64_t fade_samples = 640;     // linear cross-fade between windows (one frame)
};

class StreamingDecoder {
 public:
  // sink(planar samples [channels][n], n): called with consecutive audio, in order.
  using Sink = std::function<void(const std::vector<std::vector<float>>& audio, int64_t n)>;
  // Decodes on `be` (a session's backend); without it, on the model's load backend.
  StreamingDecoder(const MusicGen& model, Backend& be, Sink sink, const StreamParams& params = {});
  StreamingDecoder(const MusicGen& model, Sink sink, const StreamParams& params = {})
      : StreamingDecoder(model, model.backend(), std::move(sink), params) {}

  void push(const std::vector<int>& frame);  // one frame: K codes
  void finish();                             // decodes and emits whatever is left
  int64_t frames_received() const { return frames_.empty() ? 0 : int64_t(frames_[0].size()); }
  // Frames a window needs before its first audio: chunk + lookahead (the delay pattern adds
  // max_delay decoder steps on top of that before the first frame is final).
  int64_t first_audio_after_frames() const { return p_.chunk_frames + p_.lookahead_frames; }

 private:
  void emit_window(int64_t end_frame, bool final);
  const MusicGen& model_;
  Backend& be_;
  Sink sink_;
  StreamParams p_;
  Codes frames_;
  int64_t emitted_ = 0;                    // frames already emitted
  std::vector<std::vector<float>> tail_;   // decoded samples past the last emitted frame, to fade
};

}  // namespace mg
