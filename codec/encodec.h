// The EnCodec model: SEANet encoder -> RVQ codes -> SEANet decoder, with the 48 kHz model's
// segmenting (1 s windows, 1% overlap, per-segment RMS scale, linear overlap-add). Loaded from a
// Hugging Face snapshot folder (an EnCodec one, or the audio_encoder of a MusicGen one).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "codec/encodec_config.h"
#include "codec/rvq.h"
#include "codec/seanet.h"

namespace mg {

// What encode() produces: codes per segment (one segment unless the model segments), the
// per-segment scales of a normalising model, and the audio length to trim the decode to.
struct EncodedAudio {
  int64_t length = 0;             // samples per channel of the encoded audio
  int num_codebooks = 0;
  std::vector<Tensor> segments;   // host i64 [num_codebooks, T_i]
  std::vector<float> scales;      // one per segment when the model normalises, else empty
};

// Read-only once loaded: the weights live where the load backend put them (host tensors on the
// CPU, which any CPU backend reads; device memory on CUDA). The compute methods take the Backend
// to run on, so that several sessions, each with its own CPU backend (thread pool), share one
// model from different threads. The overloads without a Backend run on the load backend: for
// one-thread use (tests, tools), like any use of that one backend.
class EncodecModel {
 public:
  // `path`: a snapshot folder (config.json + model.safetensors[.index.json]) of an EnCodec model, or
  // of a MusicGen model (its "audio_encoder" config and "audio_encoder." weights are used).
  static std::unique_ptr<EncodecModel> load(Backend& be, const std::string& path);
  static std::unique_ptr<EncodecModel> load(Backend& be, const EncodecConfig& cfg, const WeightStore& weights);

  const EncodecConfig& config() const { return cfg_; }
  int sample_rate() const { return cfg_.sampling_rate; }
  int channels() const { return cfg_.audio_channels; }
  // Codebooks used at `kbps` (must be one of config().target_bandwidths; error lists them).
  int num_codebooks_for_bandwidth(double kbps) const;

  // audio[channels, L] (host f32, at the model's rate) -> codes, computed on `be`.
  EncodedAudio encode(Backend& be, const Tensor& audio, double kbps) const;
  EncodedAudio encode(const Tensor& audio, double kbps) const { return encode(be_, audio, kbps); }
  // codes -> audio[channels, length] (host f32), trimmed to `length` as encodec's decompress does.
  Tensor decode(Backend& be, const EncodedAudio& codes) const;
  Tensor decode(const EncodedAudio& codes) const { return decode(be_, codes); }

  // Memory stays bounded on long input: a model without segments (24 kHz, 32 kHz) runs its
  // convolutions over windows of this many code frames (extended on both sides by the layers'
  // receptive field, so every kept output is computed from exactly the inputs the whole-file pass
  // uses), and its LSTM over chunks of this many frames with the state carried over. The result is
  // the whole-file result up to float rounding (a GEMM may sum in another order for another width;
  // the head of codec/encodec.cpp says where). Default: 5 s of frames.
  // Inputs no longer than one window take exactly the whole-file path.
  // A model-wide setting (atomic: each encode/decode reads it once, at its start); tests and
  // benchmarks set it before they share the model.
  void set_window_frames(int64_t frames);
  int64_t window_frames() const { return window_frames_.load(std::memory_order_relaxed); }

  // The building blocks, for MusicGen and for tests (one segment, no normalisation, no trimming).
  Tensor encode_embeddings(Backend& be, const Tensor& x) const;   // [1, C, L] -> [1, dim, ceil(L/hop)]
  Tensor decode_segment(Backend& be, const Tensor& codes) const;  // host [K, T] -> device [1, C, T*hop]
  Tensor encode_embeddings(const Tensor& x) const { return encode_embeddings(be_, x); }
  Tensor decode_segment(const Tensor& codes) const { return decode_segment(be_, codes); }
  Backend& load_backend() const { return be_; }

 private:
  EncodecModel(Backend& be, const EncodecConfig& cfg);
  Tensor encode_windowed(Backend& be, const Tensor& audio, int nq) const;           // [C, L] -> codes [nq, T]
  Tensor decode_windowed(Backend& be, const Tensor& codes, int64_t length) const;  // -> [C, length]
  Backend& be_;  // the backend the weights were loaded with
  std::atomic<int64_t> window_frames_{0};
  EncodecConfig cfg_;
  Seanet encoder_, decoder_;
  Rvq rvq_;
};

// encodec's _linear_overlap_add: frames[i] ([C, n_i]) start at i*stride; triangle weights from a
// float32 linspace, the last (shorter) frame taking the left part of the full-length triangle.
Tensor linear_overlap_add(const std::vector<Tensor>& frames, int64_t stride);
// Divides a host segment [1, C, n] by its RMS scale in place and returns the scale: sqrt(mean over
// time of mono^2) + 1e-8, mono = the channels' mean (HF's EncodecModel for normalising models:
// the epsilon is added after the sqrt).
float normalize_segment(Tensor& seg);

}  // namespace mg
