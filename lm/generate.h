// MusicGen end to end: prompt -> T5 -> enc_to_dec_proj -> decoder loop over the delay pattern with
// classifier-free guidance -> codes -> EnCodec 32 kHz -> audio. One object per loaded snapshot.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codec/encodec.h"
#include "conditioning/t5.h"
#include "conditioning/tokenizer.h"
#include "lm/delay_pattern.h"
#include "lm/musicgen_config.h"
#include "lm/lora.h"
#include "lm/transformer.h"

namespace mg {

using Codes = std::vector<std::vector<int>>;  // [K][frames], delay reverted

struct GenerateParams {
  std::string prompt;             // one sequence; "" = unconditional (no CFG branch) unless a melody is given
  std::vector<std::string> prompts;  // several sequences in one batch (overrides `prompt` when set)
  int takes = 1;                  // sequences per prompt; take i uses seed + its sequence index
  Tensor chroma;                  // melody models: one-hot (or soft) chroma [frames, 12], host f32;
                                  // undefined: no melody (the reference's one-hot bin 0)
  // Melody models, long generation: the chroma for the window starting at `offset_s` (audiocraft
  // re-slices the reference audio per window). Unset: `chroma` for every window.
  std::function<Tensor(double offset_s)> chroma_for_window;
  Codes audio_prompt;             // continuation: codes [K][P] every sequence starts from
  bool keep_prompt = true;        // the returned codes start with the prompt, as audiocraft's do
  double duration_s = 10.0;       // total, prompt included
  float guidance_scale = 3.0f;    // 1: no CFG (one row per sequence)
  SamplerParams sampler;
  uint64_t seed = 0;
  double max_window_s = 30.0;     // longer durations use audiocraft's sliding window...
  double extend_stride_s = 18.0;  // ... advancing by this much, the rest prompting the next window
  // Single-column decode steps run as one recording replayed per step (Backend::record: a CUDA
  // graph on the GPU, the same ops re-run on the CPU). false: op by op (for debugging and timing).
  bool record_steps = true;
  // Called after each decoder step with (done, total); returning false aborts (mg::Error "aborted").
  std::function<bool(int64_t, int64_t)> progress;
  // Tests and tools: the guided logits [K, vocab] of sequence 0 at every step before sampling.
  std::function<void(int64_t step, const float* logits, int K, int vocab)> on_logits;
  // Streaming: every frame of every sequence once it is final, in order (frame index counts from
  // the start of the returned codes). Prompt frames come first when keep_prompt.
  std::function<void(int seq, int64_t frame, const std::vector<int>& codes)> on_frame;
};

// Read-only once loaded (weights, tokenizer, codec): the compute methods take the Backend to run
// on, so several sessions, each with its own CPU backend (thread pool, KV caches, buffers), share
// one model from different threads. On the CPU the weights are host tensors any CPU backend reads;
// a CUDA model's sessions share its backend (and must be serialised by the caller: api/ does it
// with a mutex in the model). The overloads without a Backend run on the load backend, for
// one-thread use (tests, tools).
class MusicGen {
 public:
  // `path`: a Hugging Face MusicGen snapshot folder (config.json, model.safetensors[.index.json],
  // spiece.model).
  // weight_dtype: the decoder's projection/FFN/head weights in f32 (as stored), f16, bf16, q8_0 or
  // q4_0 (a quantized snapshot, musicgen-cli quantize, loads only with its own scheme).
  // lora (optional): a LoRA adapter merged into the decoder's weights at load, in f32 before any
  // conversion or quantization (lm/lora.h), with its scale times lora_scale (0: the base model).
  static std::unique_ptr<MusicGen> load(Backend& be, const std::string& path, DType weight_dtype = DType::F32,
                                        const LoraAdapter* lora = nullptr, float lora_scale = 1.0f);

  const MusicgenConfig& config() const { return cfg_; }
  int sample_rate() const { return cfg_.audio_encoder.sampling_rate; }
  int channels() const { return cfg_.decoder.audio_channels; }
  double max_duration_s() const;  // what one window of the decoder's positions allows

  std::vector<int> tokenize(const std::string& prompt) const { return tokenizer_->encode(prompt); }
  // T5 hidden states [T, d_model] and the projected text [T, D] the decoder attends to.
  Tensor text_hidden_states(Backend& be, const std::vector<int>& ids) const;
  // Several prompts' hidden states in one encoder pass, each the same bits as alone (t5_encode_batch).
  std::vector<Tensor> text_hidden_states(Backend& be, const std::vector<std::vector<int>>& prompts) const;
  Tensor project_text(Backend& be, const Tensor& hidden) const;
  // The conditioning rows for a prompt: {cond, null} with CFG, {cond} without, {null} if unconditional.
  std::vector<Tensor> condition_rows(Backend& be, const std::string& prompt, bool cfg) const;
  // Melody models: the chroma prefix [chroma_length, D] (projected, tiled/truncated as HF does);
  // an undefined chroma gives the null melody (one-hot bin 0).
  Tensor chroma_prefix(Backend& be, const Tensor& chroma) const;

  // Codes of sequence 0 (see generate_batch). Audio [channels, frames * hop] (untrimmed, as audiocraft).
  Codes generate_codes(Backend& be, const GenerateParams& p) const;
  // Every sequence: prompts x takes, in that order. All run as one batch (rows share each weight read).
  std::vector<Codes> generate_batch(Backend& be, const GenerateParams& p) const;
  // The same for explicit conditioning rows of a cross-attention model: {cond, null} runs CFG with
  // p.guidance_scale, {row} runs without (one sequence; p.prompt and p.chroma are ignored).
  Codes generate_codes_from_rows(Backend& be, const std::vector<Tensor>& rows, const GenerateParams& p) const;
  int64_t frames_for(double duration_s) const;  // int(duration * frame_rate), checked against the window
  Tensor decode_audio(Backend& be, const Codes& codes) const;
  // Continuation: audio [channels, samples] at the model's rate -> prompt codes [K][frames].
  Codes encode_audio(Backend& be, const Tensor& audio) const;

  // The same on the load backend (one thread at a time).
  Tensor text_hidden_states(const std::vector<int>& ids) const { return text_hidden_states(be_, ids); }
  Tensor project_text(const Tensor& hidden) const { return project_text(be_, hidden); }
  std::vector<Tensor> condition_rows(const std::string& prompt, bool cfg) const { return condition_rows(be_, prompt, cfg); }
  Tensor chroma_prefix(const Tensor& chroma) const { return chroma_prefix(be_, chroma); }
  Codes generate_codes(const GenerateParams& p) const { return generate_codes(be_, p); }
  std::vector<Codes> generate_batch(const GenerateParams& p) const { return generate_batch(be_, p); }
  Codes generate_codes_from_rows(const std::vector<Tensor>& rows, const GenerateParams& p) const {
    return generate_codes_from_rows(be_, rows, p);
  }
  Tensor decode_audio(const Codes& codes) const { return decode_audio(be_, codes); }
  Codes encode_audio(const Tensor& audio) const { return encode_audio(be_, audio); }

  Backend& backend() const { return be_; }  // the load backend
  const EncodecModel& codec() const { return *codec_; }
  const MusicgenDecoder& decoder() const { return decoder_; }

  // One sequence stepped from outside, one decode step at a time, so that a scheduler can run
  // many independent requests in one shared step (continuous batching: lm/sequence_stepper.h).
  class SequenceStepper;

 private:
  MusicGen(Backend& be) : be_(be) {}
  // The generation loop (lm/generate_loop.cpp).
  struct Batch;   // per-sequence conditioning, seeds and progress
  struct Window;  // one window's delay patterns, decoder state and streaming position
  std::vector<Codes> generate_all(Batch& b) const;
  // kv_block: the previous window's KV block in (taken over when it fits), this window's out.
  std::vector<Codes> generate_window(Batch& b, const std::vector<Codes>& prompts, int64_t frames, double offset_s,
                                     int64_t global_base, Tensor& kv_block) const;
  // reuse: an earlier state's KV block to take over when it fits (decoder_start).
  DecoderState start_decoder(const Batch& b, int64_t columns, double offset_s, Tensor reuse = Tensor()) const;
  std::vector<Tensor> melody_prefixes(const Batch& b, double offset_s) const;
  void run_window_recorded(Batch& b, Window& w) const;
  void run_window_eager(Batch& b, Window& w) const;
  Tensor eager_step(const Batch& b, Window& w, int64_t from, int64_t to, Tensor* guided) const;
  void finish_step(Batch& b, Window& w, int64_t column, const Tensor& tokens, const Tensor& guided) const;
  void stream_final_frames(const Batch& b, Window& w, int64_t column) const;
  Backend& be_;  // the backend the weights were loaded with
  MusicgenConfig cfg_;
  std::unique_ptr<T5Tokenizer> tokenizer_;
  T5Encoder t5_;
  Tensor proj_w_, proj_b_;   // enc_to_dec_proj (undefined when the widths already match)
  Tensor chroma_w_, chroma_b_;  // audio_enc_to_dec_proj of melody models
  MusicgenDecoder decoder_;
  std::unique_ptr<EncodecModel> codec_;
};

}  // namespace mg
