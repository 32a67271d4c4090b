#include "lm/generate.h"

#include <algorithm>
#include <cmath>

#include "lm/delay_pattern.h"
#include "lm/quantize_snapshot.h"

namespace mg {

std::unique_ptr<MusicGen> MusicGen::load(Backend& be, const std::string& path, DType weight_dtype,
                                         const LoraAdapter* lora, float lora_scale) {
  MG_CHECK(weight_dtype == DType::F32 || weight_dtype == DType::F16 || weight_dtype == DType::BF16 ||
               dtype_is_quantized(weight_dtype),
           "decoder weights can be f32, f16, bf16, q8_0 or q4_0, not ", dtype_name(weight_dtype));
  std::unique_ptr<MusicGen> m(new MusicGen(be));
  m->cfg_ = load_musicgen_config(path);
  WeightStore w = WeightStore::open(path);
  // A quantized snapshot (musicgen-cli quantize) loads only with its own scheme: it has no f32
  // weights to convert from.
  DType stored = DType::F32;
  for (const std::string& name : w.names())
    if (is_quantizable_decoder_weight(name) && dtype_is_quantized(w.get(name).dtype)) stored = w.get(name).dtype;
  MG_CHECK(!dtype_is_quantized(stored) || stored == weight_dtype, "model ", path, " is a quantized snapshot (",
           dtype_name(stored), " decoder weights): load it with weights ", stored == DType::Q8_0 ? "q8" : "q4",
           " (musicgen-cli --weights ", stored == DType::Q8_0 ? "q8" : "q4", "), not as ", dtype_name(weight_dtype));
  m->tokenizer_ = T5Tokenizer::load(path, m->cfg_.text_encoder.eos_token_id);
  m->t5_ = load_t5_encoder(be, w.with_prefix("text_encoder."), m->cfg_.text_encoder);
  if (w.has("enc_to_dec_proj.weight")) {
    const int64_t D = m->cfg_.decoder.hidden_size, E = m->cfg_.text_encoder.d_model;
    m->proj_w_ = be.upload(w.get("enc_to_dec_proj.weight", {D, E}));
    Tensor b = w.get("enc_to_dec_proj.bias", {D});
    m->proj_b_ = be.upload(b.as_f32());
  } else {
    MG_CHECK(m->cfg_.text_encoder.d_model == m->cfg_.decoder.hidden_size, "checkpoint ", w.source(),
             " has no enc_to_dec_proj but the text width ", m->cfg_.text_encoder.d_model, " differs from the decoder's ",
             m->cfg_.decoder.hidden_size);
  }
  if (m->cfg_.melody) {
    const int64_t D = m->cfg_.decoder.hidden_size;
    m->chroma_w_ = be.upload(w.get("audio_enc_to_dec_proj.weight", {D, m->cfg_.num_chroma}));
    Tensor b = w.get("audio_enc_to_dec_proj.bias", {D});
    m->chroma_b_ = be.upload(b.as_f32());
  }
  // The adapter is merged into the f32 weights the decoder load then concatenates and converts.
  const WeightStore decoder_weights =
      lora ? merge_lora_into(w, *lora, lora_scale, m->cfg_.decoder, /*cross_attention=*/!m->cfg_.melody) : w;
  m->decoder_ =
      load_musicgen_decoder(be, decoder_weights, m->cfg_.decoder, /*cross_attention=*/!m->cfg_.melody, weight_dtype);
  m->codec_ = EncodecModel::load(be, m->cfg_.audio_encoder, w.with_prefix("audio_encoder."));
  return m;
}

double MusicGen::max_duration_s() const {
  // MusicGen was trained on 30 s crops (audiocraft's max_duration); the position table may allow
  // a little more (frames + max_delay columns must fit), never less for released models.
  const int64_t frames = cfg_.decoder.max_position_embeddings - cfg_.max_delay();
  return std::min(30.0, double(frames) / cfg_.frame_rate());
}

Tensor MusicGen::text_hidden_states(Backend& be, const std::vector<int>& ids) const { return t5_encode(be, t5_, ids); }
std::vector<Tensor> MusicGen::text_hidden_states(Backend& be, const std::vector<std::vector<int>>& prompts) const {
  return t5_encode_batch(be, t5_, prompts);
}

Tensor MusicGen::project_text(Backend& be, const Tensor& hidden) const {
  return proj_w_.defined() ? be.linear(hidden, proj_w_, &proj_b_) : hidden;
}

std::vector<Tensor> MusicGen::condition_rows(Backend& be, const std::string& prompt, bool cfg) const {
  // An empty prompt is the null condition (audiocraft masks "" to zeros): one null row, no CFG.
  if (prompt.empty()) return {Tensor()};
  Tensor text = project_text(be, text_hidden_states(be, tokenize(prompt)));
  if (!cfg) return {text};
  return {text, Tensor()};  // cond rows first, null rows second, as both references batch them
}

Tensor MusicGen::chroma_prefix(Backend& be, const Tensor& chroma) const {
  const int64_t C = cfg_.num_chroma, L = cfg_.chroma_length;
  Tensor c = chroma;
  if (!c.defined()) {  // no melody: one frame of one-hot bin 0 (HF's null_audio_hidden_states)
    c = Tensor::zeros(DType::F32, {1, C});
    c.f32()[0] = 1.0f;
  }
  MG_CHECK(c.ndim() == 2 && c.dim(1) == C && c.dim(0) >= 1 && c.dtype == DType::F32, "chroma must be [frames, ", C,
           "] f32, got ", shape_str(c.shape));
  // Project, then tile (repeat ceil(L/T) times) and cut to L frames, as HF does after projecting.
  Tensor proj = be.download(be.linear(be.upload(c), chroma_w_, &chroma_b_));
  const int64_t T = proj.dim(0), D = proj.dim(1);
  Tensor out = Tensor::empty(DType::F32, {L, D});
  for (int64_t i = 0; i < L; ++i) std::copy(proj.f32() + (i % T) * D, proj.f32() + (i % T + 1) * D, out.f32() + i * D);
  return be.upload(out);
}

Tensor MusicGen::decode_audio(Backend& be, const Codes& codes) const {
  const int K = int(codes.size()), C = channels();
  MG_CHECK(K == cfg_.decoder.num_codebooks && !codes[0].empty(), "decode_audio: expected ", cfg_.decoder.num_codebooks,
           " codebooks of frames");
  const int64_t T = int64_t(codes[0].size()), per = K / C;
  Tensor out;
  for (int ch = 0; ch < C; ++ch) {
    // Stereo codebooks are interleaved [L0, R0, L1, R1, ...]: channel ch takes k = C*j + ch.
    Tensor c = Tensor::empty(DType::I64, {per, T});
    for (int64_t j = 0; j < per; ++j)
      for (int64_t t = 0; t < T; ++t) c.ptr<int64_t>()[j * T + t] = codes[C * j + ch][t];
    // EncodecModel::decode runs long code sequences in windows, so memory stays bounded by the
    // output buffer (audiocraft does not trim: T * hop samples).
    EncodedAudio e;
    e.length = T * cfg_.audio_encoder.hop_length();
    e.num_codebooks = int(per);
    e.segments = {c};
    Tensor y = codec_->decode(be, e);  // [1, T*hop]
    if (!out.defined()) out = Tensor::empty(DType::F32, {C, y.numel()});
    std::copy(y.f32(), y.f32() + y.numel(), out.f32() + ch * y.numel());
  }
  return out;
}

}  // namespace mg

namespace mg {

Codes MusicGen::encode_audio(Backend& be, const Tensor& audio) const {
  const int C = channels();
  MG_CHECK(audio.ndim() == 2 && audio.dim(0) == C && audio.dim(1) >= 1, "prompt audio must be [", C,
           ", samples] at ", sample_rate(), " Hz, got ", shape_str(audio.shape));
  const int64_t L = audio.dim(1);
  const int K = cfg_.decoder.num_codebooks, per = K / C;
  Codes codes(K);
  for (int ch = 0; ch < C; ++ch) {
    // Stereo models encode each channel with the mono codec and interleave [L0, R0, L1, R1, ...].
    Tensor mono = Tensor::empty(DType::F32, {1, L});
    std::copy(audio.f32() + ch * L, audio.f32() + (ch + 1) * L, mono.f32());
    EncodedAudio e = codec_->encode(be, mono, cfg_.audio_encoder.target_bandwidths.back());
    MG_CHECK(e.segments.size() == 1 && e.num_codebooks == per, "prompt encode: expected one segment of ", per,
             " codebooks");
    const Tensor& c = e.segments[0];
    const int64_t T = c.dim(1);
    for (int j = 0; j < per; ++j) codes[C * j + ch].assign(c.ptr<int64_t>() + j * T, c.ptr<int64_t>() + (j + 1) * T);
  }
  return codes;
}

}  // namespace mg
