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
#include "lm/sampler.h"
#include "lm/transformer.h"

namespace mg {

struct GenerateParams {
  std::string prompt;             // empty: unconditional (no CFG branch) unless a melody is given
  Tensor chroma;                  // melody models: one-hot (or soft) chroma [frames, 12], host f32;
                                  // undefined: no melody (the reference's one-hot bin 0)
  double duration_s = 10.0;
  float guidance_scale = 3.0f;    // <= 1: no CFG (one row)
  SamplerParams sampler;
  uint64_t seed = 0;
  // Called after each decoder step with (done, total); returning false aborts (mg::Error "aborted").
  std::function<bool(int64_t, int64_t)> progress;
  // Optional, for tests and tools: sees the guided logits [K, vocab] of every step before sampling.
  std::function<void(int64_t step, const float* logits, int K, int vocab)> on_logits;
};

class MusicGen {
 public:
  // `path`: a Hugging Face MusicGen snapshot folder (config.json, model.safetensors[.index.json],
  // spiece.model).
  // weight_dtype: the decoder's projection/FFN/head weights in f32 (as stored), f16 or bf16.
  static std::unique_ptr<MusicGen> load(Backend& be, const std::string& path, DType weight_dtype = DType::F32);

  const MusicgenConfig& config() const { return cfg_; }
  int sample_rate() const { return cfg_.audio_encoder.sampling_rate; }
  int channels() const { return cfg_.decoder.audio_channels; }
  double max_duration_s() const;  // what one window of the decoder's positions allows

  std::vector<int> tokenize(const std::string& prompt) const { return tokenizer_->encode(prompt); }
  // T5 hidden states [T, d_model] and the projected text [T, D] the decoder attends to.
  Tensor text_hidden_states(const std::vector<int>& ids) const;
  Tensor project_text(const Tensor& hidden) const;
  // The conditioning rows for a prompt: {cond, null} with CFG, {cond} without, {null} if unconditional.
  std::vector<Tensor> condition_rows(const std::string& prompt, bool cfg) const;
  // Melody models: the chroma prefix [chroma_length, D] (projected, tiled/truncated as HF does);
  // an undefined chroma gives the null melody (one-hot bin 0).
  Tensor chroma_prefix(const Tensor& chroma) const;

  // Codes [K][frames] (delay reverted). Audio [channels, frames * hop] (untrimmed, as audiocraft).
  std::vector<std::vector<int>> generate_codes(const GenerateParams& p) const;
  // The same for explicit conditioning rows of a cross-attention model: {cond, null} runs CFG with
  // p.guidance_scale, {row} runs without. (p.prompt and p.chroma are ignored.)
  std::vector<std::vector<int>> generate_codes_from_rows(const std::vector<Tensor>& rows,
                                                         const GenerateParams& p) const;
  int64_t frames_for(double duration_s) const;  // int(duration * frame_rate), checked
  Tensor decode_audio(const std::vector<std::vector<int>>& codes) const;

  Backend& backend() const { return be_; }
  const MusicgenDecoder& decoder() const { return decoder_; }

 private:
  MusicGen(Backend& be) : be_(be) {}
  std::vector<std::vector<int>> run(DecoderState& st, DelayPattern& pattern, bool cfg, const GenerateParams& p) const;
  Backend& be_;
  MusicgenConfig cfg_;
  std::unique_ptr<T5Tokenizer> tokenizer_;
  T5Encoder t5_;
  Tensor proj_w_, proj_b_;   // enc_to_dec_proj (undefined when the widths already match)
  Tensor chroma_w_, chroma_b_;  // audio_enc_to_dec_proj of melody models
  MusicgenDecoder decoder_;
  std::unique_ptr<EncodecModel> codec_;
};

}  // namespace mg
