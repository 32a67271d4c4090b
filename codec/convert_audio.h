// audiocraft's convert_audio (audiocraft/data/audio_utils.py): resample with julius first, then
// change the channel count. The order matters for parity: averaging to mono after resampling
// rounds differently from averaging first.
#pragma once

#include "codec/audio_file.h"

namespace mg {

// convert_audio_channels: same count = unchanged; to mono = mean over channels; mono -> N = copies;
// N -> M < N = the first M channels. Any other request (e.g. stereo -> 5.1) is an mg::Error, as
// audiocraft raises.
AudioBuffer convert_audio_channels(const AudioBuffer& in, int to_channels);

// convert_audio(wav, in.sample_rate, to_rate, to_channels): every channel through one
// Resampler(in.sample_rate, to_rate) (the kernels are built once), then convert_audio_channels.
AudioBuffer convert_audio(const AudioBuffer& in, int to_rate, int to_channels);

}  // namespace mg
