// The EnCodec model: SEANet encoder -> RVQ codes -> SEANet decoder, with the 48 kHz model's
// segmenting (1 s windows, 1% overlap, per-segment RMS scale, linear overlap-add). Loaded from a
// Hugging Face snapshot folder (an EnCodec one, or the audio_encoder of a MusicGen one).
#pragma once

#include <atomic>
#include <functional>
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

// Columns [a, b) of a host [C, T] tensor, as a new [C, b - a] tensor (any dtype): the windows of
// the whole-tensor and the block-by-block EnCodec passes (codec/encodec.cpp, encodec_stream.cpp).
Tensor slice_cols(const Tensor& x, int64_t a, int64_t b);

// Streaming: long files go through encode_stream / decode_stream in bounded memory.
// The next block of audio at the model's rate and channels: host f32 [C, n], n >= 1; an undefined
// Tensor at the end.
using AudioBlockSource = std::function<Tensor()>;
// Codes as they are made: host i64 [nq, n] for the next n frames of segment `segment`, and that
// segment's scale (0 unless the model normalises). A model that does not segment has one segment,
// given in consecutive blocks; a segmenting model gives each segment whole, in order.
using CodeBlockSink = std::function<void(int64_t segment, const Tensor& codes, float scale)>;
// The next `frames` code frames of the current segment, host i64 [nq, frames]; at the first frames
// of a segment of a normalising model it sets *scale. Asked for whole segments, in order, when the
// model segments; for consecutive blocks of the one segment when it does not.
using CodeBlockSource = std::function<Tensor(int64_t frames, float* scale)>;
// Decoded audio in consecutive blocks, host f32 [C, n].
using AudioBlockSink = std::function<void(const Tensor& audio)>;

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
  // MUSICGEN_TEST_ENCODEC_WINDOW_FRAMES=N in the environment sets the default (a test hook).
  // A model-wide setting (atomic: each encode/decode reads it once, at its start); tests and
  // benchmarks set it before they share the model.
  void set_window_frames(int64_t frames);
  int64_t window_frames() const { return window_frames_.load(std::memory_order_relaxed); }

  // encode() and decode() block by block (codec/encodec_stream.cpp): the same windows, LSTM chunks
  // and segments as the whole-tensor calls, so the same codes and samples, while memory stays
  // bounded by the window, whatever the length. encode_stream returns the audio length (samples
  // per channel); the length given to decode_stream trims the output as decode() does.
  int64_t encode_stream(Backend& be, const AudioBlockSource& in, double kbps, const CodeBlockSink& out) const;
  void decode_stream(Backend& be, const CodeBlockSource& in, int64_t length, const AudioBlockSink& out) const;

  // The building blocks, for MusicGen and for tests (one segment, no normalisation, no trimming).
  Tensor encode_embeddings(Backend& be, const Tensor& x) const;   // [1, C, L] -> [1, dim, ceil(L/hop)]
  Tensor decode_segment(Backend& be, const Tensor& codes) const;  // host [K, T] -> device [1, C, T*hop]
  Tensor encode_embeddings(const Tensor& x) const { return encode_embeddings(be_, x); }
  Tensor decode_segment(const Tensor& codes) const { return decode_segment(be_, codes); }
  Backend& load_backend() const { return be_; }

 private:
  friend class EncodecDecodeStream;
  EncodecModel(Backend& be, const EncodecConfig& cfg);
  int64_t encode_windowed(Backend& be, const AudioBlockSource& in, int nq, const CodeBlockSink& out) const;
  int64_t encode_segments(Backend& be, const AudioBlockSource& in, int nq, const CodeBlockSink& out) const;
  // T code frames (ceil(length / hop) for an .ecdc; decode() passes those it was given).
  void decode_windowed(Backend& be, const CodeBlockSource& in, int64_t T, int64_t length,
                       const AudioBlockSink& out) const;
  void decode_segments(Backend& be, const CodeBlockSource& in, int64_t length, const AudioBlockSink& out) const;
  Backend& be_;  // the backend the weights were loaded with
  std::atomic<int64_t> window_frames_{0};
  EncodecConfig cfg_;
  Seanet encoder_, decoder_;
  Rvq rvq_;
};

// Window sizes of a pushed decode, in code frames: the first window, then each next one twice the
// last, up to the largest. Audio comes out window by window; each window also decodes the decoder's
// receptive field on both sides (a few frames), so small windows start early and large ones cost
// less. The LSTM windows (frames through the first layers and the LSTM at a time) bound how late
// the first audio window starts: it waits for its right margin to be through the LSTM.
struct DecodeStreamWindows {
  int64_t first_window = 25, max_window = 100;  // 0.5 s, then 1 s, then 2 s at 50 Hz
  int64_t first_lstm = 10, max_lstm = 50;
};

// decode() with the codes pushed as they are made (a generation's frames), for models that do not
// segment (24 kHz, 32 kHz; the 48 kHz model is refused): the same pipeline as decode_stream
// (codec/encodec_stream.cpp), with its state machine driven by push() instead of pulling. A window
// runs as soon as the frames pushed reach its receptive field, so audio comes out while codes still
// arrive; finish() decodes the rest. The audio is every frame's hop samples (no trimming, as
// MusicGen decodes) and equals decode() of all the codes up to float summation order.
// Runs on `be`; the model must outlive it. After an error the stream is unusable.
class EncodecDecodeStream {
 public:
  EncodecDecodeStream(const EncodecModel& model, Backend& be, AudioBlockSink out,
                      const DecodeStreamWindows& windows = {});
  ~EncodecDecodeStream();
  EncodecDecodeStream(const EncodecDecodeStream&) = delete;
  EncodecDecodeStream& operator=(const EncodecDecodeStream&) = delete;

  void push(const Tensor& codes);  // host i64 [codebooks, n]: the next n frames (the same codebooks each time)
  void finish();                   // decodes and emits what is left; nothing may be pushed after it
  int64_t frames_pushed() const;
  // Frames pushed before the first audio comes out (on a stream longer than that): the first
  // window, its right margin and the LSTM windows that cover them.
  int64_t first_audio_after_frames() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// encodec's _linear_overlap_add, one frame at a time: frame i ([C, n_i], n_i <= the first frame's
// length) starts at i * stride; samples before the next frame's start are final once a frame is in.
class OverlapAdd {
 public:
  OverlapAdd(int64_t channels, int64_t first_frame_len, int64_t stride);
  void add(const Tensor& frame, int64_t index);   // frames in order
  // The final samples [emitted so far, upto) as [C, n] (n may be 0); upto <= the end of the frames added.
  Tensor take(int64_t upto);
  int64_t end() const { return base_ + int64_t(sum_w_.size()); }

 private:
  int64_t stride_, base_ = 0;                   // base_: the first sample not taken yet
  std::vector<std::vector<float>> acc_;         // per channel, samples [base_, end())
  std::vector<float> sum_w_, weight_;
};

// encodec's _linear_overlap_add: frames[i] ([C, n_i]) start at i*stride; triangle weights from a
// float32 linspace, the last (shorter) frame taking the left part of the full-length triangle.
Tensor linear_overlap_add(const std::vector<Tensor>& frames, int64_t stride);
// Divides a host segment [1, C, n] by its RMS scale in place and returns the scale: sqrt(mean over
// time of mono^2) + 1e-8, mono = the channels' mean (HF's EncodecModel for normalising models:
// the epsilon is added after the sqrt).
float normalize_segment(Tensor& seg);

}  // namespace mg
