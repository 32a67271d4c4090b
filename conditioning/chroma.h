// MusicGen-melody's chroma condition, computed as transformers' MusicgenMelodyFeatureExtractor
// computes it (the HF port of audiocraft's ChromaExtractor): 32 kHz mono, periodic Hann window of
// n_fft = 16384, hop 4096, centred STFT with reflect padding, power spectrogram divided by the
// window's sum of squares (torchaudio normalized=True), the librosa chroma filter bank, inf-norm per
// frame (eps 1e-6), argmax one-hot. Frames run at 32000 / 4096 = 7.8125 per second and are NOT
// aligned to the 50 Hz token rate: the model reads a fixed prefix of 235 of them (30 s).
//
// Two places where references differ and what we do:
//  * Input longer than 30 s: HF truncates the SAMPLES to 960000 before the STFT (so the last frame
//    sees reflect padding); audiocraft computes on the whole signal and truncates the frames. We
//    follow HF (the parity reference); only frame 234 can differ.
//  * audiocraft separates the melody with Demucs (keeps vocals + other, drops drums and bass) before
//    the chroma; HF does not, and neither do we. Pass an already separated stem for the same effect.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/tensor.h"

namespace mg {

struct AudioBuffer;

struct ChromaParams {
  int sample_rate = 32000;
  int n_fft = 16384;             // also the window length
  int hop = 4096;
  int n_chroma = 12;
  int64_t max_samples = 960000;  // chunk_length (30 s) * sample_rate: HF truncates here
  float eps = 1e-6f;             // F.normalize(p=inf, eps)
};

// The number of frames the model's prefix holds (chroma of 30 s: 1 + 960000 / 4096).
constexpr int64_t kMelodyChromaFrames = 235;

enum class ChromaDevice { CPU, CUDA };

// Frames for `num_samples` input samples: 1 + min(max(n, n_fft), max_samples) / hop.
int64_t chroma_num_frames(int64_t num_samples, const ChromaParams& p = {});
// Frames per second: sample_rate / hop (7.8125 for the defaults).
double chroma_frame_rate(const ChromaParams& p = {});

// The samples the STFT sees: truncated to max_samples, and when shorter than n_fft zero-padded to
// exactly n_fft with pad/2 on the left and the rest on the right (the extractor's padding). Both
// the CPU and the CUDA paths start from this.
std::vector<float> chroma_prepare_input(const std::vector<float>& mono, const ChromaParams& p = {});

// Pre-argmax chroma, f32 [T, n_chroma]: each frame divided by max(its largest value, eps).
// `mono` is at p.sample_rate (32 kHz); an empty input is treated as silence (5 frames of zeros,
// as the extractor and audiocraft's null melody give). CUDA throws mg::Error when the library was
// built without CUDA or no device is present.
Tensor chroma_features(const std::vector<float>& mono, ChromaDevice device = ChromaDevice::CPU,
                       const ChromaParams& p = {});

// argmax per frame (the first maximum, as torch.argmax) -> one-hot f32 [T, n_chroma].
Tensor chroma_argmax_one_hot(const Tensor& features);

// chroma_argmax_one_hot(chroma_features(...)): what the extractor returns.
Tensor chroma_one_hot(const std::vector<float>& mono, ChromaDevice device = ChromaDevice::CPU,
                      const ChromaParams& p = {});

// The model's length rule (HF MusicgenMelody and audiocraft match_len_on_eval): T > frames keeps the
// first `frames`; T < frames tiles the whole chroma repeat(ceil(frames / T)) times, then cuts.
Tensor chroma_fit_length(const Tensor& chroma, int64_t frames = kMelodyChromaFrames);

// The "no melody" condition both references use: one frame, one-hot bin 0 (f32 [1, n_chroma]).
Tensor null_chroma(int n_chroma = 12);

// Any melody file's samples (any rate, any channels) -> 32 kHz mono as audiocraft converts it
// (julius resample, then mean over channels) -> one-hot chroma [T, 12] (not yet fitted to 235).
Tensor melody_chroma(const AudioBuffer& audio, ChromaDevice device = ChromaDevice::CPU);

}  // namespace mg
