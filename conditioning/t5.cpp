#include "conditioning/t5.h"

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

Tensor t5_encode(Backend& be, const T5Encoder& e, const std::vector<int>& ids) {
  const T5Config& c = e.cfg;
  const int64_t T = int64_t(ids.size()), H = c.num_heads;
  MG_CHECK(T > 0, "T5 encoder: no tokens");
  Tensor id = Tensor::empty(DType::I32, {T});
  for (int64_t i = 0; i < T; ++i) id.ptr<int32_t>()[i] = ids[i];
  Tensor x = be.embedding(e.embed, be.upload(id));

  // position_bias[h, i, j] = rel_bias[bucket(j - i), h], computed once and shared by every block.
  Tensor bias = Tensor::empty(DType::F32, {H, T, T});
  const float* rb = e.rel_bias.f32();
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) {
      const int b = t5_relative_position_bucket(j - i, c.relative_attention_num_buckets,
                                                c.relative_attention_max_distance);
      for (int64_t h = 0; h < H; ++h) bias.f32()[(h * T + i) * T + j] = rb[b * H + h];
    }
  Tensor dbias = be.upload(bias);

  const float eps = float(c.layer_norm_epsilon);
  for (const T5Block& b : e.blocks) {
    Tensor n = be.rms_norm(x, b.ln_attn, eps);
    Tensor q = split_heads(be, be.linear(n, b.q, nullptr), int(H));
    Tensor k = split_heads(be, be.linear(n, b.k, nullptr), int(H));
    Tensor v = split_heads(be, be.linear(n, b.v, nullptr), int(H));
    Tensor p = be.softmax(be.add(be.matmul(q, k, /*trans_b=*/true, 1.0f), dbias));  // no 1/sqrt(d)
    x = be.add(x, be.linear(merge_heads(be, be.matmul(p, v, false)), b.o, nullptr));
    n = be.rms_norm(x, b.ln_ff, eps);
    x = be.add(x, be.linear(be.relu(be.linear(n, b.wi, nullptr)), b.wo, nullptr));
  }
  return be.rms_norm(x, e.final_ln, eps);
}

}  // namespace mg
