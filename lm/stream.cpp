#include "lm/stream.h"

#include <algorithm>

namespace mg {

StreamingDecoder::StreamingDecoder(const MusicGen& model, Backend& be, Sink sink, const StreamParams& params)
    : channels_(model.channels()),
      per_channel_(model.config().decoder.num_codebooks / model.channels()),
      sink_(std::move(sink)),
      pending_(size_t(model.channels())) {
  for (int ch = 0; ch < channels_; ++ch)
    decoders_.push_back(std::make_unique<EncodecDecodeStream>(
        model.codec(), be,
        [this, ch](const Tensor& y) {  // [1, n] for this channel
          pending_[size_t(ch)].insert(pending_[size_t(ch)].end(), y.f32(), y.f32() + y.numel());
        },
        params));
}

StreamingDecoder::~StreamingDecoder() = default;

void StreamingDecoder::push(const std::vector<int>& frame) {
  MG_CHECK(int64_t(frame.size()) == int64_t(channels_) * per_channel_, "streaming: a frame has ", frame.size(),
           " codes, expected ", channels_ * per_channel_);
  for (int ch = 0; ch < channels_; ++ch) {
    Tensor c = Tensor::empty(DType::I64, {per_channel_, 1});
    for (int64_t j = 0; j < per_channel_; ++j) c.ptr<int64_t>()[j] = frame[size_t(channels_ * j + ch)];
    decoders_[size_t(ch)]->push(c);
  }
  emit_ready();
}

void StreamingDecoder::finish() {
  if (frames_received() == 0) return;
  for (auto& d : decoders_) d->finish();
  emit_ready();
}

int64_t StreamingDecoder::first_audio_after_frames() const { return decoders_[0]->first_audio_after_frames(); }

// The channels decode in step (same windows), so each has the same samples pending after a push;
// the minimum is emitted all the same.
void StreamingDecoder::emit_ready() {
  size_t n = pending_[0].size();
  for (const auto& p : pending_) n = std::min(n, p.size());
  if (n == 0) return;
  std::vector<std::vector<float>> out(pending_.size());
  for (size_t c = 0; c < pending_.size(); ++c) {
    out[c].assign(pending_[c].begin(), pending_[c].begin() + ptrdiff_t(n));
    pending_[c].erase(pending_[c].begin(), pending_[c].begin() + ptrdiff_t(n));
  }
  sink_(out, int64_t(n));
}

}  // namespace mg
