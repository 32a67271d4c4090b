#include "lm/transformer.h"

#include <algorithm>
#include <cmath>

#include "kernels/host_buffer_cache.h"
#include "kernels/quant.h"

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

// Whether `t` shares bytes with one of `parts` (the CPU backend keeps a quantized snapshot's weight
// as the memory-mapped view itself where it does not repack it: its AVX2 and portable paths).
bool aliases_any(const Tensor& t, const std::vector<Tensor>& parts) {
  if (t.device != Device::CPU) return false;
  const char* p = static_cast<const char*>(t.data);
  for (const Tensor& s : parts) {
    const char* b = static_cast<const char*>(s.data);
    if (p < b + s.nbytes() && b < p + t.nbytes()) return true;
  }
  return false;
}

}  // namespace

MusicgenDecoder load_musicgen_decoder(Backend& be, const WeightStore& w, const MusicgenDecoderConfig& cfg,
                                      bool cross_attention, DType weight_dtype) {
  MusicgenDecoder d;
  d.cfg = cfg;
  d.cross_attention = cross_attention;
  // Projection and head weights in the dtype asked for (f16/bf16 halve the bytes a step reads,
  // q8_0/q4_0 quarter or eighth them; accumulation stays f32). Norms, embeddings and positions stay f32.
  // q8_0/q4_0: quantized on the host at load (kernels/quant.h), or taken as stored from a quantized
  // snapshot (MusicGen::load has checked that its scheme is the one asked for). A weight whose rows
  // are not whole 32-value blocks (hidden sizes that are not multiples of 32, as in the tiny test
  // models) stays as stored, here and in a quantized snapshot alike.
  auto convert = [&](Tensor t) {
    if (dtype_is_quantized(weight_dtype) || dtype_is_quantized(t.dtype)) {
      MG_CHECK(t.dtype == weight_dtype || !dtype_is_quantized(t.dtype), "decoder: weights stored as ",
               dtype_name(t.dtype), " cannot be loaded as ", dtype_name(weight_dtype), " (load a quantized snapshot with its own scheme)");
      const bool whole_blocks = t.cols() % kQuantBlock == 0;
      // upload_linear_weight: the CPU backend repacks q8_0/q4_0 for its AVX-512 kernels, in place
      // when t is the only reference (stacked or quantized here: moved in), else into a copy (a
      // mapped snapshot's weight, whose pages are then released below like a converted weight's).
      return be.upload_linear_weight(t.dtype == weight_dtype || !whole_blocks ? std::move(t) : quantize(t, weight_dtype));
    }
    Tensor u = be.upload(t);
    // Already in the dtype asked for: on the CPU still the mapped file's view (or a stacked
    // temporary), which the backend may place too (CPU: a copy in 2 MiB pages).
    if (u.dtype == weight_dtype) return u.device == Device::CPU ? be.upload_linear_weight(std::move(u)) : u;
    Tensor c = be.cast(u, weight_dtype);  // a new buffer: the backend may place it (CPU: 2 MiB pages)
    return c.device == Device::CPU ? be.upload_linear_weight(std::move(c)) : c;
  };
  // The weights `names` (each of shape `each`, stacked by rows when several) as the decoder keeps
  // them. When that is a new buffer (converted, stacked or on a device), the source bytes are
  // released as soon as it is made, so a converting load of an f32 snapshot peaks near the size of
  // the converted decoder rather than the file's.
  auto lin = [&](const std::vector<std::string>& names, const Shape& each) {
    std::vector<Tensor> parts;
    for (const std::string& n : names) parts.push_back(w.get(n, each));
    // Every part already in the dtype asked for, and that dtype not quantized.
    const bool as_stored = !dtype_is_quantized(weight_dtype) &&
                           std::all_of(parts.begin(), parts.end(), [&](const Tensor& t) { return t.dtype == weight_dtype; });
    // Parts kept as stored are stacked by the backend, straight where it keeps weights (CPU: 2 MiB
    // pages, with no stacked temporary in between); the others are stacked, then converted.
    Tensor out = parts.size() == 1 ? convert(parts[0])
                 : as_stored       ? be.upload_linear_weight_rows(parts)
                                   : convert(concat_rows(parts));
    if (!aliases_any(out, parts))
      for (const std::string& n : names) w.release(n);
    return out;
  };
  const int64_t D = cfg.hidden_size, F = cfg.ffn_dim, V = cfg.vocab_size;
  const std::string p = "decoder.model.decoder.";
  // load_musicgen_config bounds these; a config made in code must not reach concat_rows({}).
  MG_CHECK(cfg.num_codebooks >= 1 && cfg.num_hidden_layers >= 1, "decoder: num_codebooks ", cfg.num_codebooks,
           " and num_hidden_layers ", cfg.num_hidden_layers, " must be at least 1");
  std::vector<std::string> heads;
  for (int k = 0; k < cfg.num_codebooks; ++k) {
    const std::string embed = p + "embed_tokens." + std::to_string(k) + ".weight";
    d.embed.push_back(be.upload(w.get(embed, {V + 1, D}).as_f32()));
    w.release(embed);  // a step reads one row per codebook: the rest need not stay resident
    heads.push_back("decoder.lm_heads." + std::to_string(k) + ".weight");
  }
  d.heads = lin(heads, {V, D});
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string q = p + "layers." + std::to_string(l) + ".";
    auto proj = [&](const std::string& name) { return q + name + ".weight"; };
    DecoderLayer L;
    L.sa_ln_w = be.upload(w.get(q + "self_attn_layer_norm.weight", {D}).as_f32());
    L.sa_ln_b = be.upload(w.get(q + "self_attn_layer_norm.bias", {D}).as_f32());
    L.qkv = lin({proj("self_attn.q_proj"), proj("self_attn.k_proj"), proj("self_attn.v_proj")}, {D, D});
    L.o = lin({proj("self_attn.out_proj")}, {D, D});
    if (cross_attention) {
      L.ca_ln_w = be.upload(w.get(q + "encoder_attn_layer_norm.weight", {D}).as_f32());
      L.ca_ln_b = be.upload(w.get(q + "encoder_attn_layer_norm.bias", {D}).as_f32());
      L.cq = lin({proj("encoder_attn.q_proj")}, {D, D});
      L.ckv = lin({proj("encoder_attn.k_proj"), proj("encoder_attn.v_proj")}, {D, D});
      L.co = lin({proj("encoder_attn.out_proj")}, {D, D});
    }
    L.ff_ln_w = be.upload(w.get(q + "final_layer_norm.weight", {D}).as_f32());
    L.ff_ln_b = be.upload(w.get(q + "final_layer_norm.bias", {D}).as_f32());
    L.fc1 = lin({q + "fc1.weight"}, {F, D});
    L.fc2 = lin({q + "fc2.weight"}, {D, F});
    d.layers.push_back(std::move(L));
  }
  d.ln_w = be.upload(w.get(p + "layer_norm.weight", {D}).as_f32());
  d.ln_b = be.upload(w.get(p + "layer_norm.bias", {D}).as_f32());
  d.positions = be.upload(sinusoidal_positions(cfg.max_position_embeddings, D));
  d.kv_dtype = weight_dtype == DType::F32 ? DType::F32 : DType::F16;
  // A converting load's freed temporaries (stacked, then cast or quantized) can stay resident in
  // glibc's heap: hand their pages back once the decoder is complete (kernels/host_buffer_cache.h).
  trim_host_heap();
  return d;
}

size_t decoder_kv_bytes(const MusicgenDecoder& dec, int rows, int64_t capacity) {
  return 2 * dec.layers.size() * size_t(rows) * size_t(capacity) * size_t(dec.cfg.hidden_size) *
         dtype_size(dec.kv_dtype);
}

DecoderState decoder_start(Backend& be, const MusicgenDecoder& dec, const std::vector<Tensor>& text,
                           int64_t capacity, Tensor reuse) {
  MG_CHECK(!text.empty(), "decoder_start: no rows");
  MG_CHECK(capacity <= dec.cfg.max_position_embeddings, "generation needs ", capacity,
           " positions, the decoder has ", dec.cfg.max_position_embeddings, " (30 s of audio at most per window)");
  DecoderState s;
  s.rows = int(text.size());
  s.capacity = capacity;
  const int R = s.rows;
  const int64_t D = dec.cfg.hidden_size;
  const int64_t L = int64_t(dec.layers.size());
  const Shape shape = {2 * L, R, capacity, D};  // layer l: K at 2l, V at 2l + 1
  const int64_t values = 2 * L * R * capacity * D;
  const bool fits = reuse.defined() && reuse.device == be.device() && reuse.dtype == dec.kv_dtype &&
                    reuse.numel() >= values;
  s.kv_block = fits ? std::move(reuse) : be.alloc(dec.kv_dtype, shape);
  const Tensor block = s.kv_block.reshape({-1}).slice0(0, values).reshape(shape);
  for (int64_t l = 0; l < L; ++l) {
    s.k_cache.push_back(block.slice0(2 * l, 1).reshape({R, capacity, D}));
    s.v_cache.push_back(block.slice0(2 * l + 1, 1).reshape({R, capacity, D}));
  }
  if (!dec.cross_attention) return s;

  // Rows with the same text length attend together; null rows (undefined text: all-zero keys and
  // values, exactly zero output) form runs of their own, which a step fills with zeros.
  int64_t t_max = 1;
  for (const Tensor& t : text)
    if (t.defined()) t_max = std::max(t_max, t.dim(0));
  for (int r = 0; r < R; ++r) {
    const bool null_text = !text[r].defined();
    const int64_t T = null_text ? t_max : text[r].dim(0);
    if (!s.cross_runs.empty() && s.cross_runs.back().T == T && s.cross_runs.back().null_text == null_text)
      ++s.cross_runs.back().rows;
    else
      s.cross_runs.push_back({r, 1, T, null_text});
  }
  for (const DecoderLayer& L : dec.layers) {
    // Fresh zeros for each (the CPU backend's upload hands the host tensor itself back).
    Tensor ck = be.upload(Tensor::zeros(DType::F32, {R, t_max, D}));
    Tensor cv = be.upload(Tensor::zeros(DType::F32, {R, t_max, D}));
    for (int r = 0; r < R; ++r) {
      if (!text[r].defined()) continue;
      Tensor kv = be.linear(text[r], L.ckv, nullptr);  // [T_r, 2D]
      Tensor kr = ck.slice0(r, 1), vr = cv.slice0(r, 1);
      be.write_kv(kr, 0, kv, 0);
      be.write_kv(vr, 0, kv, D);
    }
    s.cross_k.push_back(ck);
    s.cross_v.push_back(cv);
  }
  return s;
}

void add_cross_attention(Backend& be, const DecoderState& st, size_t layer, const Tensor& cq, Tensor& out,
                         int64_t out_row0, std::vector<AttentionRowsJob>& jobs) {
  const int64_t S = cq.dim(1), D = cq.dim(2), t_max = st.cross_k[layer].dim(1);
  for (const CrossAttentionRun& run : st.cross_runs) {
    if (run.null_text && S <= t_max) {
      // The zeros: a null row's own keys, S of its t_max all-zero rows.
      for (int r = run.row0; r < run.row0 + run.rows; ++r)
        be.copy_rows(out, out_row0 + r * S, st.cross_k[layer].slice0(r, 1).reshape({t_max, D}).slice0(0, S));
      continue;
    }
    jobs.push_back({cq.slice0(run.row0, run.rows), st.cross_k[layer].slice0(run.row0, run.rows),
                    st.cross_v[layer].slice0(run.row0, run.rows), run.T, out_row0 + run.row0 * S});
  }
}

namespace {

// The layer stack over new input embeddings x[R*S, D] (S columns per row, positions not yet
// added): writes the new positions into the KV caches and returns the final-normed hidden states
// [R*S, D]. The position comes from the host (st.length, at == nullptr) or, for a recorded step,
// from the device (`at`, S = 1); either way the caller advances st.length.
Tensor decoder_layers(Backend& be, const MusicgenDecoder& dec, DecoderState& st, Tensor x, int64_t S,
                      const StepAt* at) {
  const int R = st.rows, H = dec.cfg.num_attention_heads;
  const int64_t D = dec.cfg.hidden_size;
  MG_CHECK(S >= 1 && st.length + S <= st.capacity, "decoder: ", S, " columns after ", st.length,
           " exceed the cache of ", st.capacity, " positions");
  if (at) {
    MG_CHECK(S == 1, "decoder: a recorded step runs one column per row, got ", S);
    x = be.add(x, be.embedding(dec.positions, at->row_positions));  // positions[pos] for every row
  } else {
    x = be.add(x.reshape({R, S, D}), dec.positions.slice0(st.length, S)).reshape({R * S, D});
  }
  const float scale = 1.0f / std::sqrt(float(D / H));
  const int64_t T = st.length + S;
  // x + linear(...) as one op (a GPU fuses the add, and the FFN's GELU, into the GEMV's epilogue).
  auto residual = [](const Tensor& r) {
    LinearFusion f;
    f.residual = &r;
    return f;
  };
  for (size_t l = 0; l < dec.layers.size(); ++l) {
    const DecoderLayer& L = dec.layers[l];
    Tensor h = be.layer_norm(x, L.sa_ln_w, &L.sa_ln_b, 1e-5f);
    Tensor qkv = be.linear(h, L.qkv, nullptr);  // [R*S, 3D]
    Tensor q = qkv.reshape({R, S, 3 * D});  // attention reads the q columns in place
    Tensor att;
    if (at) {
      be.write_kv_pair_at(st.k_cache[l], st.v_cache[l], at->pos, qkv, D);
      att = be.attention_rows_at(q, st.k_cache[l], st.v_cache[l], at->keys, st.capacity, H, scale, true);
    } else {
      be.write_kv(st.k_cache[l], st.length, qkv, D);
      be.write_kv(st.v_cache[l], st.length, qkv, 2 * D);
      att = be.attention_rows(q, st.k_cache[l], st.v_cache[l], T, H, scale, true);
    }
    x = be.linear_fused(att.reshape({R * S, D}), L.o, nullptr, residual(x));

    if (dec.cross_attention) {
      h = be.layer_norm(x, L.ca_ln_w, &L.ca_ln_b, 1e-5f);
      Tensor cq = be.linear(h, L.cq, nullptr).reshape({R, S, D});
      Tensor cross;
      if (st.cross_runs.size() == 1 && !st.cross_runs[0].null_text) {
        cross = be.attention_rows(cq, st.cross_k[l], st.cross_v[l], st.cross_runs[0].T, H, scale, false);
      } else {
        cross = be.alloc(DType::F32, {R * S, D});
        std::vector<AttentionRowsJob> jobs;
        add_cross_attention(be, st, l, cq, cross, 0, jobs);
        if (!jobs.empty()) be.attention_rows_batch(cross, jobs, H, scale, false);
      }
      x = be.linear_fused(cross.reshape({R * S, D}), L.co, nullptr, residual(x));
    }

    h = be.layer_norm(x, L.ff_ln_w, &L.ff_ln_b, 1e-5f);
    LinearFusion gelu;
    gelu.gelu = true;
    x = be.linear_fused(be.linear_fused(h, L.fc1, nullptr, gelu), L.fc2, nullptr, residual(x));
  }
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
  decoder_layers(be, dec, st, x, P, nullptr);
  st.length += P;
}

Tensor decoder_step_device(Backend& be, const MusicgenDecoder& dec, DecoderState& st, const Tensor& ids,
                           Tensor* all_logits) {
  const int R = st.rows, K = dec.cfg.num_codebooks;
  const int64_t D = dec.cfg.hidden_size, V = dec.cfg.vocab_size;
  MG_CHECK(ids.ndim() == 2 && ids.dim(0) == K && ids.dim(1) % R == 0 && ids.dim(1) >= R,
           "decoder_step: ids ", shape_str(ids.shape), " must be [", K, ", ", R, " rows x columns]");
  const int64_t S = ids.dim(1) / R;
  std::vector<const Tensor*> tables;
  for (const Tensor& t : dec.embed) tables.push_back(&t);
  Tensor x = decoder_layers(be, dec, st, be.embedding_sum(tables, ids), S, nullptr);
  st.length += S;

  // The stacked heads on the last column of each row: [R, K*V] is [R, K, V].
  Tensor last = x;
  if (S > 1) {
    last = be.alloc(DType::F32, {R, D});
    for (int r = 0; r < R; ++r) be.copy_rows(last, r, x.slice0(r * S + S - 1, 1));
  }
  if (all_logits) *all_logits = be.linear(x, dec.heads, nullptr).reshape({R, S, K, V});
  return be.linear(last, dec.heads, nullptr).reshape({R, K, V});
}

Tensor decoder_step_at(Backend& be, const MusicgenDecoder& dec, DecoderState& st, const StepAt& at) {
  const int R = st.rows, K = dec.cfg.num_codebooks;
  const int64_t V = dec.cfg.vocab_size;
  MG_CHECK(at.ids.ndim() == 2 && at.ids.dim(0) == K && at.ids.dim(1) == R && at.row_positions.numel() == R,
           "decoder_step_at: ids ", shape_str(at.ids.shape), " must be [", K, ", ", R, "] and row_positions [", R,
           "], got ", shape_str(at.row_positions.shape));
  std::vector<const Tensor*> tables;
  for (const Tensor& t : dec.embed) tables.push_back(&t);
  Tensor x = decoder_layers(be, dec, st, be.embedding_sum(tables, at.ids), 1, &at);
  return be.linear(x, dec.heads, nullptr).reshape({R, K, V});
}

Tensor decoder_step(Backend& be, const MusicgenDecoder& dec, DecoderState& st,
                    const std::vector<std::vector<std::vector<int>>>& codes, Tensor* all_logits) {
  const int R = st.rows, K = dec.cfg.num_codebooks;
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
  Tensor all;
  Tensor out = be.download(decoder_step_device(be, dec, st, be.upload(ids), all_logits ? &all : nullptr));
  if (all_logits) *all_logits = be.download(all);
  return out;
}

}  // namespace mg
