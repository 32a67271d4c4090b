#include "codec/convert_audio.h"

#include "codec/resample.h"
#include "kernels/common.h"

namespace mg {

AudioBuffer convert_audio_channels(const AudioBuffer& in, int to_channels) {
  const int from = in.num_channels();
  MG_CHECK(from > 0, "convert_audio: the input has no channels");
  MG_CHECK(to_channels > 0, "convert_audio: the channel count must be positive, got ", to_channels);
  if (from == to_channels) return in;

  AudioBuffer out;
  out.sample_rate = in.sample_rate;
  const size_t frames = size_t(in.num_frames());
  if (to_channels == 1) {
    // torch's mean over the channel dim: a float32 sum in channel order, then one division.
    std::vector<float> mono(frames);
    const float count = static_cast<float>(from);
    for (size_t i = 0; i < frames; ++i) {
      float s = 0.0f;
      for (int c = 0; c < from; ++c) s += in.channels[size_t(c)][i];
      mono[i] = s / count;
    }
    out.channels.push_back(std::move(mono));
  } else if (from == 1) {
    out.channels.assign(size_t(to_channels), in.channels[0]);
  } else {
    MG_CHECK(from > to_channels, "convert_audio: cannot make ", to_channels, " channels from ", from,
             " (only mono can be spread to more channels)");
    out.channels.assign(in.channels.begin(), in.channels.begin() + to_channels);
  }
  return out;
}

AudioBuffer convert_audio(const AudioBuffer& in, int to_rate, int to_channels) {
  check_audio_buffer(in, "convert_audio: the input");
  MG_CHECK(to_rate > 0, "convert_audio: the target sample rate must be positive, got ", to_rate);
  MG_CHECK(to_channels > 0, "convert_audio: the channel count must be positive, got ", to_channels);
  // Fail on an impossible channel request before spending time on resampling.
  MG_CHECK(to_channels == 1 || in.num_channels() == 1 || in.num_channels() >= to_channels,
           "convert_audio: cannot make ", to_channels, " channels from ", in.num_channels(),
           " (only mono can be spread to more channels)");

  AudioBuffer resampled;
  resampled.sample_rate = to_rate;
  const Resampler resampler(in.sample_rate, to_rate);
  for (const auto& ch : in.channels) resampled.channels.push_back(resampler.resample(ch));
  return convert_audio_channels(resampled, to_channels);
}

AudioConverter::AudioConverter(int from_rate, int from_channels, int to_rate, int to_channels)
    : to_rate_(to_rate), to_channels_(to_channels) {
  MG_CHECK(from_rate > 0 && from_channels > 0, "convert_audio: the input needs a positive rate and channels, got ",
           from_rate, " Hz, ", from_channels, " channels");
  MG_CHECK(to_rate > 0, "convert_audio: the target sample rate must be positive, got ", to_rate);
  MG_CHECK(to_channels > 0, "convert_audio: the channel count must be positive, got ", to_channels);
  MG_CHECK(to_channels == 1 || from_channels == 1 || from_channels >= to_channels, "convert_audio: cannot make ",
           to_channels, " channels from ", from_channels, " (only mono can be spread to more channels)");
  const auto r = std::make_shared<const Resampler>(from_rate, to_rate);
  for (int c = 0; c < from_channels; ++c) resamplers_.emplace_back(r);
}

AudioBuffer AudioConverter::mix(std::vector<std::vector<float>> resampled) const {
  AudioBuffer b;
  b.sample_rate = to_rate_;
  b.channels = std::move(resampled);
  if (b.num_frames() == 0) {
    b.channels.assign(size_t(to_channels_), {});
    return b;
  }
  return convert_audio_channels(b, to_channels_);
}

AudioBuffer AudioConverter::push(const AudioBuffer& block) {
  MG_CHECK(block.num_channels() == int(resamplers_.size()), "convert_audio: a block of ", block.num_channels(),
           " channels in a ", resamplers_.size(), "-channel stream");
  std::vector<std::vector<float>> out;
  for (size_t c = 0; c < resamplers_.size(); ++c)
    out.push_back(resamplers_[c].push(block.channels[c].data(), int64_t(block.channels[c].size())));
  return mix(std::move(out));
}

AudioBuffer AudioConverter::finish() {
  std::vector<std::vector<float>> out;
  for (auto& r : resamplers_) out.push_back(r.finish());
  return mix(std::move(out));
}

}  // namespace mg
