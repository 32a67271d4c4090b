#include "lm/stream.h"

#include <algorithm>

namespace mg {

StreamingDecoder::StreamingDecoder(const MusicGen& model, Backend& be, Sink sink, const StreamParams& params)
    : model_(model), be_(be), sink_(std::move(sink)), p_(params) {
  MG_CHECK(p_.chunk_frames >= 1 && p_.context_frames >= 0 && p_.lookahead_frames >= 0 && p_.fade_samples >= 0,
           "streaming: chunk must be >= 1 frame, context/lookahead/fade >= 0");
  frames_.resize(model.config().decoder.num_codebooks);
}

void StreamingDecoder::push(const std::vector<int>& frame) {
  MG_CHECK(frame.size() == frames_.size(), "streaming: a frame has ", frame.size(), " codes, expected ", frames_.size());
  for (size_t k = 0; k < frame.size(); ++k) frames_[k].push_back(frame[k]);
  while (frames_received() >= emitted_ + p_.chunk_frames + p_.lookahead_frames)
    emit_window(emitted_ + p_.chunk_frames, false);
}

void StreamingDecoder::finish() {
  if (frames_received() > emitted_) emit_window(frames_received(), true);
}

void StreamingDecoder::emit_window(int64_t end, bool final) {
  const int64_t n = frames_received();
  const int64_t a = std::max<int64_t>(0, emitted_ - p_.context_frames);
  const int64_t b = final ? n : std::min(n, end + p_.lookahead_frames);
  Codes window(frames_.size());
  for (size_t k = 0; k < frames_.size(); ++k) window[k].assign(frames_[k].begin() + a, frames_[k].begin() + b);
  Tensor audio = model_.decode_audio(be_, window);  // [C, (b - a) * hop]
  const int64_t C = audio.dim(0), len = audio.dim(1), hop = len / (b - a);
  const int64_t from = (emitted_ - a) * hop, to = (end - a) * hop;
  const int64_t fade = std::min<int64_t>({p_.fade_samples, to - from, tail_.empty() ? 0 : int64_t(tail_[0].size())});
  std::vector<std::vector<float>> out(C);
  for (int64_t c = 0; c < C; ++c) {
    const float* x = audio.f32() + c * len;
    out[c].assign(x + from, x + to);
    // Cross-fade the previous window's decode of these samples into this one's.
    for (int64_t i = 0; i < fade; ++i) {
      const float w = float(i + 1) / float(fade + 1);
      out[c][i] = tail_[c][i] * (1.0f - w) + out[c][i] * w;
    }
  }
  tail_.assign(C, {});
  if (!final)
    for (int64_t c = 0; c < C; ++c) {
      const float* x = audio.f32() + c * len;
      tail_[c].assign(x + to, x + std::min(len, to + p_.fade_samples));
    }
  emitted_ = end;
  sink_(out, to - from);
}

}  // namespace mg
