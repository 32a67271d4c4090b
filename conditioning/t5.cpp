#include "conditioning/t5.h"

#include <algorithm>
#include <cmath>

namespace mg {

namespace {

// Upper bounds far above t5-base/large (d_model 768/1024, 12/24 layers, 32 buckets, distance 128).
constexpr int kMaxSize = 65536;
constexpr int kMaxLayers = 1024;
constexpr int kMaxVocab = 1 << 20;

}  // namespace

T5Config t5_config_from_json(const JsonConfig& j) {
  T5Config c;
  c.vocab_size = j.req_in<int>("vocab_size", 1, kMaxVocab);
  c.d_model = j.req_in<int>("d_model", 1, kMaxSize);
  c.d_kv = j.req_in<int>("d_kv", 1, kMaxSize);
  c.d_ff = j.req_in<int>("d_ff", 1, 4 * kMaxSize);
  c.num_layers = j.req_in<int>("num_layers", 1, kMaxLayers);
  c.num_heads = j.req_in<int>("num_heads", 1, kMaxSize / c.d_kv);  // heads x d_kv: the attention width
  // The bucket function needs a quarter of the buckets >= 1 and a distance beyond them (a log of it).
  c.relative_attention_num_buckets = j.opt_in<int>("relative_attention_num_buckets", 32, 4, 1024);
  c.relative_attention_max_distance =
      j.opt_in<int>("relative_attention_max_distance", 128, c.relative_attention_num_buckets / 4 + 1, kMaxVocab);
  c.layer_norm_epsilon = j.opt_in<double>("layer_norm_epsilon", 1e-6, 0.0, 1.0);
  c.feed_forward_proj = j.opt<std::string>("feed_forward_proj", "relu");
  c.eos_token_id = j.opt_in<int>("eos_token_id", 1, 0, c.vocab_size - 1);
  MG_CHECK(c.feed_forward_proj == "relu", "text encoder in ", j.source(), ": feed_forward_proj '",
           c.feed_forward_proj, "' is not supported (MusicGen's t5-base uses 'relu')");
  return c;
}

int t5_relative_position_bucket(int64_t rel, int num_buckets, int max_distance) {
  // Bidirectional: half the buckets for keys after the query. Within a half, exact buckets for
  // |rel| < max_exact, then logarithmic ones, computed in float32 like torch does (truncated).
  num_buckets /= 2;
  int bucket = rel > 0 ? num_buckets : 0;
  const int64_t n = rel < 0 ? -rel : rel;
  const int max_exact = num_buckets / 2;
  if (n < max_exact) return bucket + int(n);
  const float scaled = std::log(float(n) / float(max_exact)) / float(std::log(double(max_distance) / max_exact)) *
                       float(num_buckets - max_exact);
  const int large = max_exact + int(scaled);
  return bucket + std::min(large, num_buckets - 1);
}

namespace {

// [T, H*dh] <-> [H, T, dh] with the two-dim transposes the backend has.
Tensor split_heads(Backend& be, const Tensor& x, int H) {
  const int64_t T = x.dim(0), dh = x.dim(1) / H;
  return be.transpose(be.transpose(x).reshape({H, dh, T}));
}
Tensor merge_heads(Backend& be, const Tensor& x) {
  const int64_t H = x.dim(0), T = x.dim(1), dh = x.dim(2);
  return be.transpose(be.transpose(x).reshape({H * dh, T}));
}

}  // namespace

T5Encoder load_t5_encoder(Backend& be, const WeightStore& w, const T5Config& cfg) {
  T5Encoder e;
  e.cfg = cfg;
  const int64_t d = cfg.d_model, inner = int64_t(cfg.num_heads) * cfg.d_kv;
  // shared.weight and encoder.embed_tokens.weight are tied; a file may keep either name.
  const std::string emb = w.has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
  e.embed = be.upload(w.get(emb, {cfg.vocab_size, d}).as_f32());
  // A prompt reads a few rows of the 32k-row table: once the load has checked it, its pages need not
  // stay resident (the rows a prompt uses are read from the file again).
  w.release(emb);
  Tensor rb = w.get("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                    {cfg.relative_attention_num_buckets, cfg.num_heads});
  e.rel_bias = rb.as_f32().clone();  // host copy: the bias table is built on the host
  for (int i = 0; i < cfg.num_layers; ++i) {
    const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
    T5Block b;
    b.ln_attn = be.upload(w.get(p + "0.layer_norm.weight", {d}).as_f32());
    b.q = be.upload(w.get(p + "0.SelfAttention.q.weight", {inner, d}));
    b.k = be.upload(w.get(p + "0.SelfAttention.k.weight", {inner, d}));
    b.v = be.upload(w.get(p + "0.SelfAttention.v.weight", {inner, d}));
    b.o = be.upload(w.get(p + "0.SelfAttention.o.weight", {d, inner}));
    b.ln_ff = be.upload(w.get(p + "1.layer_norm.weight", {d}).as_f32());
    b.wi = be.upload(w.get(p + "1.DenseReluDense.wi.weight", {cfg.d_ff, d}));
    b.wo = be.upload(w.get(p + "1.DenseReluDense.wo.weight", {d, cfg.d_ff}));
    e.blocks.push_back(std::move(b));
  }
  e.final_ln = be.upload(w.get("encoder.final_layer_norm.weight", {d}).as_f32());
  return e;
}

namespace {

// position_bias[h, i, j] = rel_bias[bucket(j - i), h] for T tokens, computed once and shared by
// every block.
Tensor position_bias(Backend& be, const T5Encoder& e, int64_t T) {
  const T5Config& c = e.cfg;
  const int64_t H = c.num_heads;
  Tensor bias = Tensor::empty(DType::F32, {H, T, T});
  const float* rb = e.rel_bias.f32();
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) {
      const int b = t5_relative_position_bucket(j - i, c.relative_attention_num_buckets,
                                                c.relative_attention_max_distance);
      for (int64_t h = 0; h < H; ++h) bias.f32()[(h * T + i) * T + j] = rb[b * H + h];
    }
  return be.upload(bias);
}

// The prompts of one group: their tokens' rows one after another in every tensor of the pass.
struct PromptGroup {
  std::vector<int64_t> first, length;  // each prompt's rows
  std::vector<Tensor> bias;            // each prompt's position bias
  int64_t rows = 0;
};

// x[rows] w^T for a group: one prompt's rows in one call (as t5_encode always did); several
// prompts' rows in calls of at most kT5RowsPerCall rows, which may cut across prompts (each row
// gets the bits it gets alone, see t5_encode_batch).
Tensor group_linear(Backend& be, const PromptGroup& g, const Tensor& x, const Tensor& w) {
  const int64_t M = x.dim(0);
  if (g.first.size() == 1 || M <= kT5RowsPerCall) return be.linear(x, w, nullptr);
  Tensor y = be.alloc(DType::F32, {M, w.dim(0)});
  for (int64_t m0 = 0; m0 < M; m0 += kT5RowsPerCall)
    be.copy_rows(y, m0, be.linear(x.slice0(m0, std::min(kT5RowsPerCall, M - m0)), w, nullptr));
  return y;
}

// Self-attention of each prompt of the group over its own tokens; q, k, v: [rows, H*dh].
Tensor group_attention(Backend& be, const PromptGroup& g, const Tensor& q, const Tensor& k, const Tensor& v, int H) {
  Tensor out;
  if (g.first.size() > 1) out = be.alloc(DType::F32, {g.rows, q.dim(1)});
  for (size_t i = 0; i < g.first.size(); ++i) {
    const int64_t r0 = g.first[i], T = g.length[i];
    Tensor qh = split_heads(be, q.slice0(r0, T), H), kh = split_heads(be, k.slice0(r0, T), H);
    Tensor vh = split_heads(be, v.slice0(r0, T), H);
    Tensor p = be.softmax(be.add(be.matmul(qh, kh, /*trans_b=*/true, 1.0f), g.bias[i]));  // no 1/sqrt(d)
    Tensor a = merge_heads(be, be.matmul(p, vh, false));
    if (g.first.size() == 1) return a;
    be.copy_rows(out, r0, a);
  }
  return out;
}

// The whole encoder over one group of prompts: x [rows, d_model] -> last_hidden_state.
Tensor encode_group(Backend& be, const T5Encoder& e, const PromptGroup& g, Tensor x) {
  const int H = e.cfg.num_heads;
  const float eps = float(e.cfg.layer_norm_epsilon);
  for (const T5Block& b : e.blocks) {
    Tensor n = be.rms_norm(x, b.ln_attn, eps);
    Tensor att = group_attention(be, g, group_linear(be, g, n, b.q), group_linear(be, g, n, b.k),
                                 group_linear(be, g, n, b.v), H);
    x = be.add(x, group_linear(be, g, att, b.o));
    n = be.rms_norm(x, b.ln_ff, eps);
    x = be.add(x, group_linear(be, g, be.relu(group_linear(be, g, n, b.wi)), b.wo));
  }
  return be.rms_norm(x, e.final_ln, eps);
}

Tensor embed_tokens(Backend& be, const T5Encoder& e, const std::vector<int>& ids) {
  const int64_t T = int64_t(ids.size());
  MG_CHECK(T > 0, "T5 encoder: no tokens");
  Tensor id = Tensor::empty(DType::I32, {T});
  for (int64_t i = 0; i < T; ++i) id.ptr<int32_t>()[i] = ids[i];
  return be.embedding(e.embed, be.upload(id));
}

}  // namespace

Tensor t5_encode(Backend& be, const T5Encoder& e, const std::vector<int>& ids) {
  PromptGroup g;
  g.rows = int64_t(ids.size());
  g.first = {0};
  g.length = {g.rows};
  Tensor x = embed_tokens(be, e, ids);
  g.bias = {position_bias(be, e, g.rows)};
  return encode_group(be, e, g, x);
}

std::vector<Tensor> t5_encode_batch(Backend& be, const T5Encoder& e, const std::vector<std::vector<int>>& prompts) {
  std::vector<Tensor> out(prompts.size());
  const bool share = be.device() == Device::CPU;
  size_t i = 0;
  while (i < prompts.size()) {
    // A group: consecutive short prompts, or one prompt alone.
    size_t end = i + 1;
    int64_t rows = int64_t(prompts[i].size());
    auto is_short = [&](size_t p) { return share && int64_t(prompts[p].size()) <= kT5RowsPerCall; };
    if (is_short(i))
      while (end < prompts.size() && is_short(end)) rows += int64_t(prompts[end++].size());
    if (end == i + 1) {
      out[i] = t5_encode(be, e, prompts[i]);
      i = end;
      continue;
    }
    PromptGroup g;
    g.rows = rows;
    Tensor x = be.alloc(DType::F32, {rows, int64_t(e.cfg.d_model)});
    for (size_t p = i; p < end; ++p) {
      g.first.push_back(g.length.empty() ? 0 : g.first.back() + g.length.back());
      g.length.push_back(int64_t(prompts[p].size()));
      g.bias.push_back(position_bias(be, e, g.length.back()));
      be.copy_rows(x, g.first.back(), embed_tokens(be, e, prompts[p]));
    }
    Tensor h = encode_group(be, e, g, x);
    for (size_t p = i; p < end; ++p) {
      Tensor own = be.alloc(DType::F32, {g.length[p - i], h.dim(1)});
      be.copy_rows(own, 0, h.slice0(g.first[p - i], g.length[p - i]));
      out[p] = own;
    }
    i = end;
  }
  return out;
}

}  // namespace mg
