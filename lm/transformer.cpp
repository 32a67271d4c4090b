#include "lm/transformer.h"

#include <cmath>

namespace mg {

Tensor sinusoidal_positions(int64_t n, int64_t dim) {
  // emb = log(10000) / (half - 1) in double; inv[i] = exp(float(i) * float(-emb)); phase = float(p) * inv[i];
  // cat([cos, sin]) - the float32 recipe of HF's get_embedding.
  const int64_t half = dim / 2;
  const double e = std::log(10000.0) / double(half - 1);
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i) inv[i] = std::exp(float(i) * float(-e));
  Tensor t = Tensor::zeros(DType::F32, {n, dim});
  for (int64_t p = 0; p < n; ++p) {
    float* row = t.f32() + p * dim;
    for (int64_t i = 0; i < half; ++i) {
      const float ph = float(p) * inv[i];
      row[i] = std::cos(ph);
      row[half + i] = std::sin(ph);
    }
  }
  return t;
}

namespace {

Tensor f32_on(Backend& be, const Tensor& t) {
  return be.upload(t.dtype == DType::F32 ? t : Tensor::from_vector(t.to_vector(), t.shape));
}

}  // namespace

MusicgenDecoder load_musicgen_decoder(Backend& be, const WeightStore& w, const MusicgenDecoderConfig& cfg,
                                      bool cross_attention, DType weight_dtype) {
  MusicgenDecoder d;
  d.cfg = cfg;
  d.cross_attention = cross_attention;
  // Projection and head weights in the dtype asked for (f16/bf16 halve the bytes a step reads;
  // accumulation stays f32). Norms, embeddings and positions stay f32.
  auto lin = [&](const Tensor& t) {
    Tensor u = be.upload(t);
    return u.dtype == weight_dtype ? u : be.cast(u, weight_dtype);
  };
  const int64_t D = cfg.hidden_size, F = cfg.ffn_dim, V = cfg.vocab_size;
  const std::string p = "decoder.model.decoder.";
  for (int k = 0; k < cfg.num_codebooks; ++k) {
    d.embed.push_back(f32_on(be, w.get(p + "embed_tokens." + std::to_string(k) + ".weight", {V + 1, D})));
    d.heads.push_back(lin(w.get("decoder.lm_heads." + std::to_string(k) + ".weight", {V, D})));
  }
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string q = p + "layers." + std::to_string(l) + ".";
    DecoderLayer L;
    L.sa_ln_w = f32_on(be, w.get(q + "self_attn_layer_norm.weight", {D}));
    L.sa_ln_b = f32_on(be, w.get(q + "self_attn_layer_norm.bias", {D}));
    L.q = lin(w.get(q + "self_attn.q_proj.weight", {D, D}));
    L.k = lin(w.get(q + "self_attn.k_proj.weight", {D, D}));
    L.v = lin(w.get(q + "self_attn.v_proj.weight", {D, D}));
    L.o = lin(w.get(q + "self_attn.out_proj.weight", {D, D}));
    if (cross_attention) {
      L.ca_ln_w = f32_on(be, w.get(q + "encoder_attn_layer_norm.weight", {D}));
      L.ca_ln_b = f32_on(be, w.get(q + "encoder_attn_layer_norm.bias", {D}));
      L.cq = lin(w.get(q + "encoder_attn.q_proj.weight", {D, D}));
      L.ck = lin(w.get(q + "encoder_attn.k_proj.weight", {D, D}));
      L.cv = lin(w.get(q + "encoder_attn.v_proj.weight", {D, D}));
      L.co = lin(w.get(q + "encoder_attn.out_proj.weight", {D, D}));
    }
    L.ff_ln_w = f32_on(be, w.get(q + "final_layer_norm.weight", {D}));
    L.ff_ln_b = f32_on(be, w.get(q + "final_layer_norm.bias", {D}));
    L.fc1 = lin(w.get(q + "fc1.weight", {F, D}));
    L.fc2 = lin(w.get(q + "fc2.weight", {D, F}));
    d.layers.push_back(std::move(L));
  }
  d.ln_w = f32_on(be, w.get(p + "layer_norm.weight", {D}));
  d.ln_b = f32_on(be, w.get(p + "layer_norm.bias", {D}));
  d.positions = be.upload(sinusoidal_positions(cfg.max_position_embeddings, D));
  return d;
}

DecoderState decoder_start(Backend& be, const MusicgenDecoder& dec, const std::vector<Tensor>& text,
                           int64_t capacity) {
  MG_CHECK(!text.empty(), "decoder_start: no rows");
  MG_CHECK(capacity <= dec.cfg.max_position_embeddings, "generation needs ", capacity,
           " positions, the decoder has ", dec.cfg.max_position_embeddings, " (30 s of audio at most per window)");
  DecoderState s;
  s.rows = int(text.size());
  s.capacity = capacity;
  const int64_t D = dec.cfg.hidden_size;
  for (const DecoderLayer& L : dec.layers) {
    std::vector<Tensor> kc, vc, ck, cv;
    for (int r = 0; r < s.rows; ++r) {
      kc.push_back(be.alloc(DType::F32, {capacity, D}));
      vc.push_back(be.alloc(DType::F32, {capacity, D}));
      const bool cross = dec.cross_attention && text[r].defined();
      ck.push_back(cross ? be.linear(text[r], L.ck, nullptr) : Tensor());
      cv.push_back(cross ? be.linear(text[r], L.cv, nullptr) : Tensor());
    }
    s.k_cache.push_back(std::move(kc));
    s.v_cache.push_back(std::move(vc));
    s.cross_k.push_back(std::move(ck));
    s.cross_v.push_back(std::move(cv));
  }
  return s;
}

namespace {

// The layer stack over new input embeddings x[R*S, D] (S columns per row, positions not yet
// added): appends to the KV caches and returns the final-normed hidden states [R*S, D].
Tensor decoder_layers(Backend& be, const MusicgenDecoder& dec, DecoderState& st, Tensor x, int64_t S) {
  const int R = st.rows, H = dec.cfg.num_attention_heads;
  const int64_t D = dec.cfg.hidden_size;
  MG_CHECK(S >= 1 && st.length + S <= st.capacity, "decoder: ", S, " columns after ", st.length,
           " exceed the cache of ", st.capacity, " positions");
  x = be.add(x.reshape({R, S, D}), dec.positions.slice0(st.length, S)).reshape({R * S, D});
  const float scale = 1.0f / std::sqrt(float(D / H));
  const int64_t T = st.length + S;
  for (size_t l = 0; l < dec.layers.size(); ++l) {
    const DecoderLayer& L = dec.layers[l];
    Tensor h = be.layer_norm(x, L.sa_ln_w, &L.sa_ln_b, 1e-5f);
    Tensor q = be.linear(h, L.q, nullptr), k = be.linear(h, L.k, nullptr), v = be.linear(h, L.v, nullptr);
    Tensor att = be.alloc(DType::F32, {R * S, D});
    for (int r = 0; r < R; ++r) {
      be.copy_rows(st.k_cache[l][r], st.length, k.slice0(r * S, S));
      be.copy_rows(st.v_cache[l][r], st.length, v.slice0(r * S, S));
      be.copy_rows(att, r * S, be.attention(q.slice0(r * S, S), st.k_cache[l][r], st.v_cache[l][r], T, H, scale, true));
    }
    x = be.add(x, be.linear(att, L.o, nullptr));

    if (dec.cross_attention) {
      h = be.layer_norm(x, L.ca_ln_w, &L.ca_ln_b, 1e-5f);
      q = be.linear(h, L.cq, nullptr);
      Tensor cross = be.alloc(DType::F32, {R * S, D});
      for (int r = 0; r < R; ++r) {
        const Tensor& ck = st.cross_k[l][r];
        Tensor qr = q.slice0(r * S, S);
        // A null row attends to all-zero keys and values: its output is exactly zero.
        be.copy_rows(cross, r * S, ck.defined() ? be.attention(qr, ck, st.cross_v[l][r], ck.dim(0), H, scale, false)
                                                : be.scale(qr, 0.0f));
      }
      x = be.add(x, be.linear(cross, L.co, nullptr));
    }

    h = be.layer_norm(x, L.ff_ln_w, &L.ff_ln_b, 1e-5f);
    x = be.add(x, be.linear(be.gelu(be.linear(h, L.fc1, nullptr)), L.fc2, nullptr));
  }
  st.length += S;
  return be.layer_norm(x, dec.ln_w, &dec.ln_b, 1e-5f);
}

}  // namespace

void decoder_prefill(Backend& be, const MusicgenDecoder& dec, DecoderState& st, const std::vector<Tensor>& prefix) {
  MG_CHECK(int(prefix.size()) == st.rows, "decoder_prefill: ", prefix.size(), " prefixes for ", st.rows, " rows");
  const int64_t P = prefix[0].dim(0), D = dec.cfg.hidden_size;
  Tensor x = be.alloc(DType::F32, {st.rows * P, D});
  for (int r = 0; r < st.rows; ++r) {
    MG_CHECK(prefix[r].ndim() == 2 && prefix[r].dim(0) == P && prefix[r].dim(1) == D, "decoder_prefill: row ", r,
             " prefix is ", shape_str(prefix[r].shape), ", expected [", P, ", ", D, "]");
    be.copy_rows(x, r * P, prefix[r]);
  }
  decoder_layers(be, dec, st, x, P);
}

Tensor decoder_step(Backend& be, const MusicgenDecoder& dec, DecoderState& st,
                    const std::vector<std::vector<std::vector<int>>>& codes, Tensor* all_logits) {
  const int R = st.rows, K = dec.cfg.num_codebooks;
  const int64_t D = dec.cfg.hidden_size, V = dec.cfg.vocab_size;
  MG_CHECK(int(codes.size()) == R && int(codes[0].size()) == K, "decoder_step: codes must be [", R, " rows][", K,
           " codebooks][columns]");
  const int64_t S = int64_t(codes[0][0].size());
  // ids[k, r*S + s] so that one embedding_sum gives every row's columns as [R*S, D].
  Tensor ids = Tensor::empty(DType::I32, {K, R * S});
  for (int k = 0; k < K; ++k)
    for (int r = 0; r < R; ++r) {
      MG_CHECK(int64_t(codes[r][k].size()) == S, "decoder_step: ragged columns");
      for (int64_t s = 0; s < S; ++s) ids.ptr<int32_t>()[k * R * S + r * S + s] = codes[r][k][s];
    }
  std::vector<const Tensor*> tables;
  for (const Tensor& t : dec.embed) tables.push_back(&t);
  Tensor x = decoder_layers(be, dec, st, be.embedding_sum(tables, be.upload(ids)), S);

  // Heads on the last column of each row (or every column when asked).
  Tensor last = be.alloc(DType::F32, {R, D});
  for (int r = 0; r < R; ++r) be.copy_rows(last, r, x.slice0(r * S + S - 1, 1));
  Tensor out = Tensor::empty(DType::F32, {R, K, V});
  for (int k = 0; k < K; ++k) {
    Tensor lk = be.download(be.linear(last, dec.heads[k], nullptr));  // [R, V]
    for (int r = 0; r < R; ++r) std::copy(lk.f32() + r * V, lk.f32() + (r + 1) * V, out.f32() + (r * K + k) * V);
  }
  if (all_logits) {
    *all_logits = Tensor::empty(DType::F32, {R, S, K, V});
    for (int k = 0; k < K; ++k) {
      Tensor lk = be.download(be.linear(x, dec.heads[k], nullptr));  // [R*S, V]
      for (int64_t rs = 0; rs < R * S; ++rs)
        std::copy(lk.f32() + rs * V, lk.f32() + (rs + 1) * V, all_logits->f32() + (rs * K + k) * V);
    }
  }
  return out;
}

}  // namespace mg
