#include "lm/generate.h"

#include <algorithm>
#include <cmath>

#include "lm/delay_pattern.h"

namespace mg {

std::unique_ptr<MusicGen> MusicGen::load(Backend& be, const std::string& path, DType weight_dtype) {
  MG_CHECK(weight_dtype == DType::F32 || weight_dtype == DType::F16 || weight_dtype == DType::BF16,
           "decoder weights can be f32, f16 or bf16, not ", dtype_name(weight_dtype));
  std::unique_ptr<MusicGen> m(new MusicGen(be));
  m->cfg_ = load_musicgen_config(path);
  WeightStore w = WeightStore::open(path);
  m->tokenizer_ = T5Tokenizer::load(path, m->cfg_.text_encoder.eos_token_id);
  m->t5_ = load_t5_encoder(be, w.with_prefix("text_encoder."), m->cfg_.text_encoder);
  if (w.has("enc_to_dec_proj.weight")) {
    const int64_t D = m->cfg_.decoder.hidden_size, E = m->cfg_.text_encoder.d_model;
    m->proj_w_ = be.upload(w.get("enc_to_dec_proj.weight", {D, E}));
    Tensor b = w.get("enc_to_dec_proj.bias", {D});
    m->proj_b_ = be.upload(b.dtype == DType::F32 ? b : Tensor::from_vector(b.to_vector(), b.shape));
  } else {
    MG_CHECK(m->cfg_.text_encoder.d_model == m->cfg_.decoder.hidden_size, "checkpoint ", w.source(),
             " has no enc_to_dec_proj but the text width ", m->cfg_.text_encoder.d_model, " differs from the decoder's ",
             m->cfg_.decoder.hidden_size);
  }
  if (m->cfg_.melody) {
    const int64_t D = m->cfg_.decoder.hidden_size;
    m->chroma_w_ = be.upload(w.get("audio_enc_to_dec_proj.weight", {D, m->cfg_.num_chroma}));
    Tensor b = w.get("audio_enc_to_dec_proj.bias", {D});
    m->chroma_b_ = be.upload(b.dtype == DType::F32 ? b : Tensor::from_vector(b.to_vector(), b.shape));
  }
  m->decoder_ = load_musicgen_decoder(be, w, m->cfg_.decoder, /*cross_attention=*/!m->cfg_.melody, weight_dtype);
  m->codec_ = EncodecModel::load(be, m->cfg_.audio_encoder, w.with_prefix("audio_encoder."));
  return m;
}

double MusicGen::max_duration_s() const {
  // MusicGen was trained on 30 s crops (audiocraft's max_duration); the position table may allow
  // a little more (frames + max_delay columns must fit), never less for released models.
  const int64_t frames = cfg_.decoder.max_position_embeddings - cfg_.max_delay();
  return std::min(30.0, double(frames) / cfg_.frame_rate());
}

Tensor MusicGen::text_hidden_states(const std::vector<int>& ids) const { return t5_encode(be_, t5_, ids); }

Tensor MusicGen::project_text(const Tensor& hidden) const {
  return proj_w_.defined() ? be_.linear(hidden, proj_w_, &proj_b_) : hidden;
}

std::vector<Tensor> MusicGen::condition_rows(const std::string& prompt, bool cfg) const {
  // An empty prompt is the null condition (audiocraft masks "" to zeros): one null row, no CFG.
  if (prompt.empty()) return {Tensor()};
  Tensor text = project_text(text_hidden_states(tokenize(prompt)));
  if (!cfg) return {text};
  return {text, Tensor()};  // cond rows first, null rows second, as both references batch them
}

Tensor MusicGen::chroma_prefix(const Tensor& chroma) const {
  const int64_t C = cfg_.num_chroma, L = cfg_.chroma_length;
  Tensor c = chroma;
  if (!c.defined()) {  // no melody: one frame of one-hot bin 0 (HF's null_audio_hidden_states)
    c = Tensor::zeros(DType::F32, {1, C});
    c.f32()[0] = 1.0f;
  }
  MG_CHECK(c.ndim() == 2 && c.dim(1) == C && c.dim(0) >= 1 && c.dtype == DType::F32, "chroma must be [frames, ", C,
           "] f32, got ", shape_str(c.shape));
  // Project, then tile (repeat ceil(L/T) times) and cut to L frames, as HF does after projecting.
  Tensor proj = be_.download(be_.linear(be_.upload(c), chroma_w_, &chroma_b_));
  const int64_t T = proj.dim(0), D = proj.dim(1);
  Tensor out = Tensor::empty(DType::F32, {L, D});
  for (int64_t i = 0; i < L; ++i) std::copy(proj.f32() + (i % T) * D, proj.f32() + (i % T + 1) * D, out.f32() + i * D);
  return be_.upload(out);
}

int64_t MusicGen::frames_for(double duration_s) const {
  MG_CHECK(duration_s > 0, "duration must be positive, got ", duration_s, " s");
  MG_CHECK(duration_s <= max_duration_s() + 1e-9, "duration ", duration_s, " s is longer than this model's ",
           max_duration_s(), " s window");
  const int64_t frames = int64_t(duration_s * cfg_.frame_rate());
  MG_CHECK(frames >= 1, "duration ", duration_s, " s is shorter than one frame (", 1.0 / cfg_.frame_rate(), " s)");
  return frames;
}

std::vector<std::vector<int>> MusicGen::generate_codes(const GenerateParams& p) const {
  const int64_t frames = frames_for(p.duration_s);
  if (!cfg_.melody) {
    const bool cfg = !p.prompt.empty() && p.guidance_scale != 1.0f;
    return generate_codes_from_rows(condition_rows(p.prompt, cfg), p);
  }
  // Melody: each row is prefixed with [chroma (chroma_length) || projected text]; the null row has
  // the null melody and zero text of the same length (HF zeroes it through the attention mask).
  MG_CHECK(!p.chroma.defined() || p.chroma.dim(-1) == cfg_.num_chroma, "melody chroma must have ", cfg_.num_chroma,
           " bins per frame");
  const bool cfg = (!p.prompt.empty() || p.chroma.defined()) && p.guidance_scale != 1.0f;
  Tensor text = p.prompt.empty() ? Tensor() : project_text(text_hidden_states(tokenize(p.prompt)));
  auto prefix = [&](const Tensor& chroma, bool null_text) {
    Tensor c = chroma_prefix(chroma);
    if (!text.defined()) return c;
    Tensor t = null_text ? be_.scale(text, 0.0f) : text;
    Tensor both = be_.alloc(DType::F32, {c.dim(0) + t.dim(0), c.dim(1)});
    be_.copy_rows(both, 0, c);
    be_.copy_rows(both, c.dim(0), t);
    return both;
  };
  std::vector<Tensor> prefixes = {prefix(p.chroma, false)};
  if (cfg) prefixes.push_back(prefix(Tensor(), true));
  DelayPattern pattern(cfg_.delays(), frames, cfg_.decoder.bos_token_id);
  DecoderState st = decoder_start(be_, decoder_, std::vector<Tensor>(prefixes.size()),
                                  prefixes[0].dim(0) + pattern.columns() - 1);
  decoder_prefill(be_, decoder_, st, prefixes);
  return run(st, pattern, cfg, p);
}

std::vector<std::vector<int>> MusicGen::generate_codes_from_rows(const std::vector<Tensor>& rows,
                                                                 const GenerateParams& p) const {
  MG_CHECK(!cfg_.melody, "generate_codes_from_rows is for cross-attention models");
  MG_CHECK(rows.size() == 1 || rows.size() == 2, "generation takes 1 row (no CFG) or 2 (cond, null), got ", rows.size());
  DelayPattern pattern(cfg_.delays(), frames_for(p.duration_s), cfg_.decoder.bos_token_id);
  DecoderState st = decoder_start(be_, decoder_, rows, pattern.columns() - 1);
  return run(st, pattern, rows.size() == 2, p);
}

std::vector<std::vector<int>> MusicGen::run(DecoderState& st, DelayPattern& pattern, bool cfg,
                                            const GenerateParams& p) const {
  const int K = cfg_.decoder.num_codebooks, V = cfg_.decoder.vocab_size;
  const int64_t calls = pattern.columns() - 1;
  Sampler sampler(p.sampler, p.seed);
  std::vector<float> guided(size_t(K) * V);
  for (int64_t s = 0; s < calls; ++s) {
    std::vector<std::vector<std::vector<int>>> col(st.rows, std::vector<std::vector<int>>(K));
    const std::vector<int> c = pattern.column(s);
    for (int r = 0; r < st.rows; ++r)
      for (int k = 0; k < K; ++k) col[r][k] = {c[k]};
    Tensor logits = decoder_step(be_, decoder_, st, col);  // [rows, K, V]
    // Row 0 holds the conditional logits; with CFG they become uncond + scale * (cond - uncond).
    if (cfg) apply_cfg(logits.f32(), logits.f32() + int64_t(K) * V, p.guidance_scale, guided.data(), int64_t(K) * V);
    const float* l = cfg ? guided.data() : logits.f32();
    if (p.on_logits) p.on_logits(s, l, K, V);
    std::vector<int> tokens(K);
    for (int k = 0; k < K; ++k) tokens[k] = sampler.sample(l + int64_t(k) * V, V);
    pattern.fill(s + 1, tokens);
    if (p.progress && !p.progress(s + 1, calls)) throw Error("generation aborted by the caller");
  }
  return pattern.revert();
}

Tensor MusicGen::decode_audio(const std::vector<std::vector<int>>& codes) const {
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
    Tensor y = be_.download(codec_->decode_segment(c));  // [1, 1, T*hop]
    if (!out.defined()) out = Tensor::empty(DType::F32, {C, y.numel()});
    std::copy(y.f32(), y.f32() + y.numel(), out.f32() + ch * y.numel());
  }
  return out;
}

}  // namespace mg
