#include "lm/generate.h"

#include <algorithm>
#include <cmath>

#include "lm/delay_pattern.h"

namespace mg {

std::unique_ptr<MusicGen> MusicGen::load(Backend& be, const std::string& path) {
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
  m->decoder_ = load_musicgen_decoder(be, w, m->cfg_.decoder);
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

std::vector<std::vector<int>> MusicGen::generate_codes(const GenerateParams& p) const {
  MG_CHECK(p.duration_s > 0, "duration must be positive, got ", p.duration_s, " s");
  MG_CHECK(p.duration_s <= max_duration_s() + 1e-9, "duration ", p.duration_s, " s is longer than this model's ",
           max_duration_s(), " s window");
  const int64_t frames = int64_t(p.duration_s * cfg_.frame_rate());
  MG_CHECK(frames >= 1, "duration ", p.duration_s, " s is shorter than one frame (", 1.0 / cfg_.frame_rate(), " s)");
  const bool cfg = !p.prompt.empty() && p.guidance_scale != 1.0f;
  std::vector<Tensor> rows = condition_rows(p.prompt, cfg);
  const int K = cfg_.decoder.num_codebooks, V = cfg_.decoder.vocab_size;
  DelayPattern pattern(cfg_.delays(), frames, cfg_.decoder.bos_token_id);
  const int64_t calls = pattern.columns() - 1;
  DecoderState st = decoder_start(be_, decoder_, rows, calls);
  Sampler sampler(p.sampler, p.seed);
  std::vector<float> guided(size_t(K) * V);
  for (int64_t s = 0; s < calls; ++s) {
    std::vector<std::vector<std::vector<int>>> col(rows.size(), std::vector<std::vector<int>>(K));
    const std::vector<int> c = pattern.column(s);
    for (size_t r = 0; r < rows.size(); ++r)
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
