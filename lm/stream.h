// Streaming audio out while generation runs: frames arrive one by one (GenerateParams::on_frame)
// and go straight into the push-driven EnCodec decoder (EncodecDecodeStream, codec/encodec.h), one
// per audio channel. It runs the whole-file decode's pipeline (codec/encodec_stream.cpp) window by
// window as the frames reach each window's receptive field, so the streamed samples are the
// whole-file samples (up to float summation order) and each sample is decoded once, plus the
// margins of the windows (tests/parity/generation_test.cpp checks both, and how early audio comes).
#pragma once

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "lm/generate.h"

namespace mg {

// The EnCodec windows of the stream (codec/encodec.h): audio in windows of 0.5 s first, growing to
// 2 s; the first audio comes after the first window, its right margin and the LSTM windows that
// cover them (33 frames with the defaults and the 32 kHz decoder).
using StreamParams = DecodeStreamWindows;

class StreamingDecoder {
 public:
  // sink(planar samples [channels][n], n): called with consecutive audio, in order.
  using Sink = std::function<void(const std::vector<std::vector<float>>& audio, int64_t n)>;
  // Decodes on `be` (a session's backend); without it, on the model's load backend.
  StreamingDecoder(const MusicGen& model, Backend& be, Sink sink, const StreamParams& params = {});
  StreamingDecoder(const MusicGen& model, Sink sink, const StreamParams& params = {})
      : StreamingDecoder(model, model.backend(), std::move(sink), params) {}
  ~StreamingDecoder();

  void push(const std::vector<int>& frame);  // one frame: K codes
  void finish();                             // decodes and emits whatever is left
  int64_t frames_received() const { return decoders_[0]->frames_pushed(); }  // every channel has them all
  // Frames pushed before the first audio is emitted (on a longer stream): the first window, its
  // right margin and the LSTM chunks that cover them. The delay pattern adds max_delay decoder
  // steps on top of that before the first frame is final.
  int64_t first_audio_after_frames() const;

 private:
  void emit_ready();
  int channels_, per_channel_;             // codebooks per channel: stereo interleaves [L0, R0, L1, ...]
  Sink sink_;
  std::vector<std::unique_ptr<EncodecDecodeStream>> decoders_;  // one per channel
  std::vector<std::vector<float>> pending_;                     // decoded, not yet emitted, per channel
};

}  // namespace mg
