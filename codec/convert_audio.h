// audiocraft's convert_audio (audiocraft/data/audio_utils.py): resample with julius first, then
// change the channel count. The order matters for parity: averaging to mono after resampling
// rounds differently from averaging first.
#pragma once

#include <memory>
#include <vector>

#include "codec/audio_file.h"
#include "codec/resample.h"

namespace mg {

// convert_audio_channels: same count = unchanged; to mono = mean over channels; mono -> N = copies;
// N -> M < N = the first M channels. Any other request (e.g. stereo -> 5.1) is an mg::Error, as
// audiocraft raises.
AudioBuffer convert_audio_channels(const AudioBuffer& in, int to_channels);

// convert_audio(wav, in.sample_rate, to_rate, to_channels): every channel through one
// Resampler(in.sample_rate, to_rate) (the kernels are built once), then convert_audio_channels.
AudioBuffer convert_audio(const AudioBuffer& in, int to_rate, int to_channels);

// convert_audio over a signal that arrives in blocks (StreamResampler per channel, then
// convert_audio_channels on each block): the same samples as convert_audio on the whole signal.
class AudioConverter {
 public:
  // Refuses an impossible channel request (as convert_audio) before any sample.
  AudioConverter(int from_rate, int from_channels, int to_rate, int to_channels);
  // The converted samples that are final after `block` (possibly none).
  AudioBuffer push(const AudioBuffer& block);
  // The rest, once the input has ended.
  AudioBuffer finish();

 private:
  AudioBuffer mix(std::vector<std::vector<float>> resampled) const;
  int to_rate_, to_channels_;
  std::vector<StreamResampler> resamplers_;
};

}  // namespace mg
