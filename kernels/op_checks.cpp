#include "kernels/op_checks.h"

#include <algorithm>

namespace mg {

// ---- one tensor argument ----

bool is_float_dtype(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
bool is_id_dtype(DType t) { return t == DType::I32 || t == DType::I64; }

void check_on_device(const Tensor& t, Device dev, const char* op, const char* arg) {
  // An empty device tensor may have no memory behind it: only its shape matters.
  MG_CHECK(t.defined() || (t.numel() == 0 && !t.shape.empty()), op, " ", arg, ": tensor is undefined");
  MG_CHECK(t.device == dev, op, " ", arg, ": expected a ", device_name(dev), " tensor (this backend's device), got a ",
           device_name(t.device), " one ", shape_str(t.shape), dev == Device::CUDA ? " (upload it first)" : "");
}

void check_dtype(const Tensor& t, Device dev, DType dt, const char* op, const char* arg) {
  check_on_device(t, dev, op, arg);
  MG_CHECK(t.dtype == dt, op, " ", arg, ": expected dtype ", dtype_name(dt), ", got ", dtype_name(t.dtype), " ",
           shape_str(t.shape));
}

void check_float(const Tensor& t, Device dev, const char* op, const char* arg) {
  check_on_device(t, dev, op, arg);
  MG_CHECK(is_float_dtype(t.dtype), op, " ", arg, ": expected f32, f16 or bf16, got ", dtype_name(t.dtype), " ",
           shape_str(t.shape));
}

void check_ids(const Tensor& t, Device dev, const char* op, const char* arg) {
  check_on_device(t, dev, op, arg);
  MG_CHECK(is_id_dtype(t.dtype), op, " ", arg, ": expected i32 or i64 ids, got ", dtype_name(t.dtype), " ",
           shape_str(t.shape));
}

void check_device_scalar(const Tensor& t, Device dev, const char* op, const char* arg) {
  check_on_device(t, dev, op, arg);
  MG_CHECK(t.dtype == DType::I32 && t.numel() == 1, op, " ", arg, ": must be an i32 [1] tensor, got ",
           dtype_name(t.dtype), " ", shape_str(t.shape));
}

namespace {

// gamma / beta / bias: f32 [n], n taken from `of` (named in the message).
void check_vector(const Tensor& t, Device dev, int64_t n, const char* op, const char* arg, const char* of_name,
                  const Tensor& of) {
  check_dtype(t, dev, DType::F32, op, arg);
  MG_CHECK(t.ndim() == 1 && t.numel() == n, op, " ", arg, " ", shape_str(t.shape), " does not match ", of_name, " ",
           shape_str(of.shape), " (want [", n, "])");
}

// [B, C, T] or [C, T] (B = 1).
void check_channels_by_time(const Tensor& x, const char* op) {
  MG_CHECK(x.ndim() == 2 || x.ndim() == 3, op, ": x must be [B, C, T] or [C, T], got ", shape_str(x.shape));
}

Shape with_channels_and_length(const Tensor& x, int64_t channels, int64_t length) {
  Shape s = x.shape;
  s[s.size() - 2] = channels;
  s.back() = length;
  return s;
}

}  // namespace

// ---- dense algebra ----

Shape check_linear(Device dev, const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse) {
  check_dtype(x, dev, DType::F32, "linear", "x");
  if (dtype_is_quantized(w.dtype)) check_on_device(w, dev, "linear", "w");  // q8_0/q4_0 weights
  else check_float(w, dev, "linear", "w");
  MG_CHECK(x.ndim() >= 1 && w.ndim() == 2 && x.cols() == w.dim(1), "linear: x ", shape_str(x.shape),
           " does not match w ", shape_str(w.shape), " (expected x[..., K], w[N, K])");
  if (b) check_vector(*b, dev, w.dim(0), "linear", "bias", "w", w);
  Shape out = x.shape;
  out.back() = w.dim(0);
  if (fuse.residual) {
    check_dtype(*fuse.residual, dev, DType::F32, "linear", "residual");
    MG_CHECK(fuse.residual->numel() == x.rows() * w.dim(0), "linear: residual ", shape_str(fuse.residual->shape),
             " does not match the output ", shape_str(out));
  }
  return out;
}

Shape check_matmul(Device dev, const Tensor& a, const Tensor& b, bool trans_b) {
  check_dtype(a, dev, DType::F32, "matmul", "a");
  check_dtype(b, dev, DType::F32, "matmul", "b");
  MG_CHECK(a.ndim() >= 2 && b.ndim() >= 2, "matmul: a ", shape_str(a.shape), " and b ", shape_str(b.shape),
           " must both have at least 2 dims");
  const int64_t k = a.dim(-1), bk = trans_b ? b.dim(-1) : b.dim(-2), n = trans_b ? b.dim(-2) : b.dim(-1);
  // Leading (batch) dims must match, except that a 2-D b (a weight) is shared by every batch.
  const bool batch_ok =
      b.ndim() == 2 || (a.ndim() == b.ndim() && std::equal(a.shape.begin(), a.shape.end() - 2, b.shape.begin()));
  MG_CHECK(bk == k && batch_ok, "matmul: a ", shape_str(a.shape), " and b ", shape_str(b.shape),
           trans_b ? " (trans_b)" : "", " do not match");
  Shape out = a.shape;
  out.back() = n;
  return out;
}

// ---- elementwise ----

void check_binary(Device dev, const Tensor& a, const Tensor& b, const char* op) {
  check_dtype(a, dev, DType::F32, op, "a");
  check_dtype(b, dev, DType::F32, op, "b");
  Shape bs = b.shape;
  while (!bs.empty() && bs.front() == 1) bs.erase(bs.begin());  // leading 1s do not change the layout
  const bool suffix = bs.size() <= a.shape.size() && std::equal(bs.begin(), bs.end(), a.shape.end() - bs.size());
  MG_CHECK(suffix, op, ": b ", shape_str(b.shape), " is neither a's shape ", shape_str(a.shape),
           " nor a suffix of it");
}

void check_unary(Device dev, const Tensor& x, const char* op) { check_dtype(x, dev, DType::F32, op, "x"); }

void check_cast(Device dev, const Tensor& x, DType to) {
  check_on_device(x, dev, "cast", "x");
  const DType from = x.dtype;
  MG_CHECK(from == to || (is_float_dtype(from) && is_float_dtype(to)) || (is_id_dtype(from) && is_id_dtype(to)),
           "cast: ", dtype_name(from), " -> ", dtype_name(to), " is not supported (tensor ", shape_str(x.shape),
           "; float <-> float or i32 <-> i64 only)");
}

// ---- normalisation and softmax ----

void check_layer_norm(Device dev, const Tensor& x, const Tensor& gamma, const Tensor* beta) {
  check_dtype(x, dev, DType::F32, "layer_norm", "x");
  MG_CHECK(x.ndim() >= 1, "layer_norm: x must have at least one dim, got ", shape_str(x.shape));
  check_vector(gamma, dev, x.cols(), "layer_norm", "gamma", "x", x);
  if (beta) check_vector(*beta, dev, x.cols(), "layer_norm", "beta", "x", x);
}

void check_rms_norm(Device dev, const Tensor& x, const Tensor& gamma) {
  check_dtype(x, dev, DType::F32, "rms_norm", "x");
  MG_CHECK(x.ndim() >= 1, "rms_norm: x must have at least one dim, got ", shape_str(x.shape));
  check_vector(gamma, dev, x.cols(), "rms_norm", "gamma", "x", x);
}

void check_group_norm(Device dev, const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta) {
  check_dtype(x, dev, DType::F32, "group_norm", "x");
  check_channels_by_time(x, "group_norm");
  const int64_t c = x.dim(-2);
  MG_CHECK(groups > 0 && c % groups == 0, "group_norm: ", c, " channels of x ", shape_str(x.shape),
           " do not split into ", groups, " groups");
  check_vector(gamma, dev, c, "group_norm", "gamma", "x", x);
  check_vector(beta, dev, c, "group_norm", "beta", "x", x);
}

void check_softmax(Device dev, const Tensor& x) {
  check_dtype(x, dev, DType::F32, "softmax", "x");
  MG_CHECK(x.ndim() >= 1, "softmax: x must have at least one dim, got ", shape_str(x.shape));
}

// ---- convolutions and layout ----

namespace {

// The padding rules pad1d and conv1d's fused padding share (torch.nn.functional.pad's): no negative
// amounts, reflect shorter than the input, replicate needs a sample to copy.
void check_padding(const Tensor& x, int64_t t, int left, int right, PadMode mode, const char* op) {
  MG_CHECK(left >= 0 && right >= 0, op, ": negative padding (", left, ", ", right, ") of x ", shape_str(x.shape));
  if (mode == PadMode::Reflect)
    MG_CHECK(left < t && right < t, op, ": reflect padding (", left, ", ", right,
             ") must be smaller than the input length ", t, " of x ", shape_str(x.shape));
  if (mode == PadMode::Replicate)
    MG_CHECK(t > 0 || (left == 0 && right == 0), op, ": replicate padding of an empty x ", shape_str(x.shape));
}

}  // namespace

Shape check_conv1d(Device dev, const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                   const Conv1dFusion& f) {
  check_dtype(x, dev, DType::F32, "conv1d", "x");
  check_dtype(w, dev, DType::F32, "conv1d", "w");
  check_channels_by_time(x, "conv1d");
  MG_CHECK(w.ndim() == 3 && w.dim(1) == x.dim(-2), "conv1d: w ", shape_str(w.shape), " does not match x ",
           shape_str(x.shape), " (want w[Cout, Cin, K] with Cin = x's channels)");
  MG_CHECK(stride >= 1 && dilation >= 1, "conv1d: stride ", stride, " and dilation ", dilation, " must be >= 1");
  const int64_t t = x.dim(-1), k = w.dim(2);
  check_padding(x, t, f.pad_left, f.pad_right, f.pad_mode, "conv1d");
  const int64_t span = int64_t(dilation) * (k - 1) + 1, tp = t + f.pad_left + f.pad_right;
  MG_CHECK(k >= 1 && tp >= span, "conv1d: input length ", tp, " of x ", shape_str(x.shape), " (padded by ",
           f.pad_left, " + ", f.pad_right, ") is shorter than the kernel span ", span, " (w ", shape_str(w.shape),
           ", dilation ", dilation, ")");
  if (b) check_vector(*b, dev, w.dim(0), "conv1d", "bias", "w", w);
  const Shape out = with_channels_and_length(x, w.dim(0), (tp - span) / stride + 1);
  if (f.residual) {
    check_dtype(*f.residual, dev, DType::F32, "conv1d", "residual");
    MG_CHECK(f.residual->shape == out, "conv1d: residual ", shape_str(f.residual->shape),
             " does not match the output ", shape_str(out));
  }
  return out;
}

Shape check_conv_transpose1d(Device dev, const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                             const ConvTranspose1dFusion& f) {
  check_dtype(x, dev, DType::F32, "conv_transpose1d", "x");
  check_dtype(w, dev, DType::F32, "conv_transpose1d", "w");
  check_channels_by_time(x, "conv_transpose1d");
  MG_CHECK(w.ndim() == 3 && w.dim(0) == x.dim(-2), "conv_transpose1d: w ", shape_str(w.shape), " does not match x ",
           shape_str(x.shape), " (want w[Cin, Cout, K] with Cin = x's channels)");
  MG_CHECK(stride >= 1, "conv_transpose1d: stride ", stride, " must be >= 1");
  const int64_t t = x.dim(-1), k = w.dim(2);
  MG_CHECK(k >= 1 && t >= 1, "conv_transpose1d: empty kernel or input (x ", shape_str(x.shape), ", w ",
           shape_str(w.shape), ")");
  const int64_t full = (t - 1) * stride + k;
  MG_CHECK(f.trim_left >= 0 && f.trim_right >= 0 && f.trim_left + f.trim_right <= full, "conv_transpose1d: trim (",
           f.trim_left, ", ", f.trim_right, ") of an output of length ", full, " (x ", shape_str(x.shape), ", w ",
           shape_str(w.shape), ")");
  if (b) check_vector(*b, dev, w.dim(1), "conv_transpose1d", "bias", "w", w);
  return with_channels_and_length(x, w.dim(1), full - f.trim_left - f.trim_right);
}

Shape check_pad1d(Device dev, const Tensor& x, int left, int right, PadMode mode) {
  check_dtype(x, dev, DType::F32, "pad1d", "x");
  MG_CHECK(x.ndim() >= 1, "pad1d: x must have at least one dim, got ", shape_str(x.shape));
  const int64_t t = x.cols();
  check_padding(x, t, left, right, mode, "pad1d");
  Shape out = x.shape;
  out.back() = t + left + right;
  return out;
}

Shape check_transpose(Device dev, const Tensor& x) {
  check_on_device(x, dev, "transpose", "x");
  MG_CHECK(x.ndim() >= 2, "transpose: x must have at least 2 dims, got ", shape_str(x.shape));
  Shape out = x.shape;
  std::swap(out[out.size() - 1], out[out.size() - 2]);
  return out;
}

Shape check_narrow_last(Device dev, const Tensor& x, int64_t start, int64_t len) {
  check_on_device(x, dev, "narrow_last", "x");
  MG_CHECK(x.ndim() >= 1 && start >= 0 && len >= 0 && start + len <= x.cols(), "narrow_last(", start, ", ", len,
           ") out of range for shape ", shape_str(x.shape));
  Shape out = x.shape;
  out.back() = len;
  return out;
}

// ---- embeddings and search ----

Shape check_embedding(Device dev, const Tensor& table, const Tensor& ids) {
  check_float(table, dev, "embedding", "table");
  MG_CHECK(table.ndim() == 2, "embedding: table must be [V, D], got ", shape_str(table.shape));
  check_ids(ids, dev, "embedding", "ids");
  MG_CHECK(ids.ndim() <= 3, "embedding: ids ", shape_str(ids.shape), " has more than 3 dims");
  Shape out = ids.shape;
  out.push_back(table.dim(1));
  return out;
}

Shape check_embedding_sum(Device dev, const std::vector<const Tensor*>& tables, const Tensor& ids) {
  check_ids(ids, dev, "embedding_sum", "ids");
  const int64_t k = int64_t(tables.size());
  MG_CHECK(k >= 1, "embedding_sum: no tables given");
  MG_CHECK(ids.ndim() == 2 && ids.dim(0) == k, "embedding_sum: ids ", shape_str(ids.shape),
           " must be [K, N] with K = ", k, " tables");
  for (int64_t t = 0; t < k; ++t) {
    MG_CHECK(tables[t] != nullptr, "embedding_sum: table ", t, " is null");
    check_float(*tables[t], dev, "embedding_sum", "table");
    MG_CHECK(tables[t]->ndim() == 2 && tables[t]->dim(1) == tables[0]->dim(1), "embedding_sum: table ", t, " ",
             shape_str(tables[t]->shape), " is not a [V, D] table as wide as table 0 ", shape_str(tables[0]->shape));
  }
  return {ids.dim(1), tables[0]->dim(1)};
}

void check_vq_nearest(Device dev, const Tensor& x, const Tensor& embed) {
  check_dtype(x, dev, DType::F32, "vq_nearest", "x");
  check_dtype(embed, dev, DType::F32, "vq_nearest", "embed");
  MG_CHECK(x.ndim() == 2 && embed.ndim() == 2 && x.dim(1) == embed.dim(1) && embed.dim(0) >= 1,
           "vq_nearest: expected x[N, D] and embed[V >= 1, D], got ", shape_str(x.shape), " and ",
           shape_str(embed.shape));
}

// ---- attention and the KV cache ----

namespace {

// q f32, k/v both f32 or both f16 (a half KV cache).
void check_qkv_dtypes(Device dev, const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
  check_dtype(q, dev, DType::F32, op, "q");
  MG_CHECK((k.dtype == DType::F32 || k.dtype == DType::F16) && v.dtype == k.dtype, op,
           ": k and v must both be f32 or f16, got ", dtype_name(k.dtype), " and ", dtype_name(v.dtype));
  check_on_device(k, dev, op, "k");
  check_on_device(v, dev, op, "v");
}

// The key count against the queries and the rows k/v hold.
void check_key_count(int64_t T, int64_t S, bool causal, int64_t k_rows, int64_t v_rows, const char* op) {
  MG_CHECK(T >= S || !causal, op, ": ", S, " causal queries need at least as many keys, got ", T);
  MG_CHECK(T <= k_rows && T <= v_rows && T >= 1, op, ": T = ", T, " keys but k/v hold ", k_rows, "/", v_rows);
}

}  // namespace

void check_attention(Device dev, const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads,
                     bool causal) {
  check_qkv_dtypes(dev, q, k, v, "attention");
  MG_CHECK(q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2 && q.dim(1) >= k.dim(1) && k.dim(1) == v.dim(1) &&
               heads > 0 && k.dim(1) % heads == 0,
           "attention: expected q[S, >= H*dh], k/v[T, H*dh] with H = ", heads, ", got ", shape_str(q.shape), ", ",
           shape_str(k.shape), ", ", shape_str(v.shape));
  check_key_count(T, q.dim(0), causal, k.dim(0), v.dim(0), "attention");
}

void check_attention_rows(Device dev, const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads,
                          bool causal) {
  check_qkv_dtypes(dev, q, k, v, "attention_rows");
  MG_CHECK(q.ndim() == 3 && k.ndim() == 3 && v.ndim() == 3 && k.dim(0) == q.dim(0) && v.dim(0) == q.dim(0) &&
               q.dim(2) >= k.dim(2) && k.dim(2) == v.dim(2) && heads > 0 && k.dim(2) % heads == 0,
           "attention_rows: expected q[R, S, >= H*dh], k/v[R, T, H*dh] with H = ", heads, ", got ",
           shape_str(q.shape), ", ", shape_str(k.shape), ", ", shape_str(v.shape));
  check_key_count(T, q.dim(1), causal, k.dim(1), v.dim(1), "attention_rows");
}

void check_copy_rows(Device dev, const Tensor& dst, int64_t row0, const Tensor& src) {
  check_on_device(dst, dev, "copy_rows", "dst");
  check_on_device(src, dev, "copy_rows", "src");
  MG_CHECK(dst.dtype == src.dtype && dst.ndim() >= 1 && src.ndim() >= 1 && row0 >= 0 &&
               row0 + src.dim(0) <= dst.dim(0) &&
               src.numel() == src.dim(0) * (dst.numel() / std::max<int64_t>(1, dst.dim(0))),
           "copy_rows: cannot put ", dtype_name(src.dtype), " ", shape_str(src.shape), " at row ", row0, " of ",
           dtype_name(dst.dtype), " ", shape_str(dst.shape));
}

namespace {

// cache[R, cap, D] (src's dtype, or f16/bf16 from f32 src), src[R * S, W] with col0 + D <= W.
void check_kv_layout(Device dev, const Tensor& cache, const Tensor& src, int64_t col0, const char* op) {
  check_on_device(cache, dev, op, "cache");
  check_on_device(src, dev, op, "src");
  const bool narrowing = src.dtype == DType::F32 && (cache.dtype == DType::F16 || cache.dtype == DType::BF16);
  MG_CHECK(cache.ndim() == 3 && src.ndim() == 2 && (cache.dtype == src.dtype || narrowing) && cache.dim(0) >= 1 &&
               src.dim(0) % cache.dim(0) == 0 && col0 >= 0 && col0 + cache.dim(2) <= src.dim(1),
           op, ": cannot put columns ", col0, ".. of ", dtype_name(src.dtype), " ", shape_str(src.shape),
           " into the ", dtype_name(cache.dtype), " cache ", shape_str(cache.shape));
}

}  // namespace

void check_write_kv(Device dev, const Tensor& cache, int64_t pos, const Tensor& src, int64_t col0) {
  check_kv_layout(dev, cache, src, col0, "write_kv");
  const int64_t S = src.dim(0) / cache.dim(0);
  MG_CHECK(pos >= 0 && pos + S <= cache.dim(1), "write_kv: positions ", pos, "..", pos + S, " exceed the cache of ",
           cache.dim(1));
}

void check_write_kv_at(Device dev, const Tensor& cache, const Tensor& pos, const Tensor& src, int64_t col0) {
  check_device_scalar(pos, dev, "write_kv_at", "pos");
  check_kv_layout(dev, cache, src, col0, "write_kv_at");
}

void check_write_kv_pair_at(Device dev, const Tensor& k_cache, const Tensor& v_cache, const Tensor& pos,
                            const Tensor& src, int64_t col0) {
  check_device_scalar(pos, dev, "write_kv_pair_at", "pos");
  check_on_device(v_cache, dev, "write_kv_pair_at", "v_cache");
  MG_CHECK(k_cache.shape == v_cache.shape && k_cache.dtype == v_cache.dtype && k_cache.ndim() == 3,
           "write_kv_pair_at: the caches ", shape_str(k_cache.shape), " and ", shape_str(v_cache.shape), " differ");
  check_kv_layout(dev, k_cache, src, col0, "write_kv_pair_at");
  check_kv_layout(dev, v_cache, src, col0 + k_cache.dim(2), "write_kv_pair_at");
}

void check_attention_rows_at(Device dev, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keys,
                             int64_t max_keys, int heads, bool causal) {
  check_device_scalar(keys, dev, "attention_rows_at", "keys");
  // The causal rule needs the key count, which only the device knows: checked against max_keys.
  check_attention_rows(dev, q, k, v, max_keys, heads, causal);
}

void check_upload_into(Device dev, const Tensor& dst, const Tensor& host) {
  MG_CHECK(host.device == Device::CPU, "upload_into: the source ", shape_str(host.shape), " is on the ",
           device_name(host.device), ", not the host");
  check_on_device(dst, dev, "upload_into", "dst");
  MG_CHECK(dst.dtype == host.dtype && dst.numel() == host.numel(), "upload_into: cannot copy ",
           dtype_name(host.dtype), " ", shape_str(host.shape), " into ", dtype_name(dst.dtype), " ",
           shape_str(dst.shape));
}

// ---- sampling and the delay pattern ----

void check_sampler_params(const SamplerParams& p, const char* op) {
  const bool top_k_decides = !p.greedy && p.temperature > 0.0f && p.top_p <= 0.0f;
  MG_CHECK(!top_k_decides || p.top_k >= 0, op, ": top_k ", p.top_k, " must be >= 0");
}

void check_sample_tokens(Device dev, const Tensor& logits, bool cfg, int64_t B, const SamplerParams& p,
                         const char* op) {
  check_dtype(logits, dev, DType::F32, op, "logits");
  MG_CHECK(logits.ndim() == 3 && B >= 1 && logits.dim(0) == (cfg ? 2 * B : B), op, ": expected f32 logits[",
           cfg ? 2 * B : B, ", K, V] for ", B, " sequences", cfg ? " with CFG" : "", ", got ",
           dtype_name(logits.dtype), " ", shape_str(logits.shape));
  check_sampler_params(p, op);
}

void check_sample_tokens_at(Device dev, const Tensor& logits, bool cfg, const SamplerParams& p, const Tensor& seeds,
                            const Tensor& step) {
  check_dtype(seeds, dev, DType::I64, "sample_tokens_at", "seeds");
  MG_CHECK(seeds.ndim() == 1, "sample_tokens_at: seeds must be i64 [B], got ", shape_str(seeds.shape));
  check_device_scalar(step, dev, "sample_tokens_at", "step");
  check_sample_tokens(dev, logits, cfg, seeds.numel(), p, "sample_tokens_at");
}

void check_delay_pattern_step_at(Device dev, const Tensor& pattern, const Tensor& tokens, const Tensor& column,
                                 const Tensor& ids, const Tensor& counters) {
  const char* op = "delay_pattern_step_at";
  check_dtype(pattern, dev, DType::I32, op, "pattern");
  check_dtype(tokens, dev, DType::I32, op, "tokens");
  check_dtype(ids, dev, DType::I32, op, "ids");
  check_dtype(counters, dev, DType::I32, op, "counters");
  check_device_scalar(column, dev, op, "column");
  MG_CHECK(pattern.ndim() == 3 && tokens.ndim() == 2 && tokens.dim(0) == pattern.dim(0) &&
               tokens.dim(1) == pattern.dim(1) && ids.ndim() == 2 && ids.dim(0) == pattern.dim(1) &&
               pattern.dim(0) >= 1 && ids.dim(1) % pattern.dim(0) == 0,
           op, ": expected i32 pattern[B, K, C], tokens[B, K], ids[K, R = B or 2B], counters; got ",
           shape_str(pattern.shape), ", ", shape_str(tokens.shape), ", ", shape_str(ids.shape));
}

// ---- recurrent ----

void check_lstm(Device dev, const Tensor& x, const LstmLayerWeights& w, const Tensor* h, const Tensor* c) {
  check_dtype(x, dev, DType::F32, "lstm", "x");
  check_float(w.w_ih, dev, "lstm", "w_ih");
  check_float(w.w_hh, dev, "lstm", "w_hh");
  check_float(w.b_ih, dev, "lstm", "b_ih");
  check_float(w.b_hh, dev, "lstm", "b_hh");
  MG_CHECK(x.ndim() == 2, "lstm: x must be [T, In], got ", shape_str(x.shape));
  MG_CHECK(w.w_hh.ndim() == 2 && w.w_hh.dim(0) == 4 * w.w_hh.dim(1), "lstm: w_hh ", shape_str(w.w_hh.shape),
           " is not [4H, H]");
  const int64_t H = w.w_hh.dim(1), g4 = 4 * H;
  MG_CHECK(w.w_ih.ndim() == 2 && w.w_ih.dim(0) == g4 && w.w_ih.dim(1) == x.dim(1), "lstm: w_ih ",
           shape_str(w.w_ih.shape), " does not match x ", shape_str(x.shape), " and w_hh ", shape_str(w.w_hh.shape),
           " (want [4H, In])");
  MG_CHECK(w.b_ih.numel() == g4 && w.b_hh.numel() == g4, "lstm: biases ", shape_str(w.b_ih.shape), " and ",
           shape_str(w.b_hh.shape), " must both be [4H] = [", g4, "]");
  // The carried state: null or undefined is the zero state.
  for (const Tensor* s : {h, c}) {
    if (s == nullptr || !s->defined()) continue;
    check_dtype(*s, dev, DType::F32, "lstm", s == h ? "h" : "c");
    MG_CHECK(s->numel() == H, "lstm ", s == h ? "h" : "c", ": state ", shape_str(s->shape), " must hold H = ", H,
             " values");
  }
}

// ---- MusicGen-melody's chroma ----

Shape check_chroma(Device dev, const Tensor& signal, const Tensor& window, const Tensor& filters, int hop) {
  check_dtype(signal, dev, DType::F32, "chroma", "signal");
  check_dtype(window, dev, DType::F32, "chroma", "window");
  check_dtype(filters, dev, DType::F32, "chroma", "filters");
  const int64_t n_fft = window.numel();
  MG_CHECK(window.ndim() == 1 && n_fft >= 2 && n_fft % 2 == 0 && hop >= 1, "chroma: window ",
           shape_str(window.shape), " must hold an even n_fft >= 2 samples, hop ", hop, " must be >= 1");
  MG_CHECK(signal.ndim() == 1 && signal.numel() >= n_fft, "chroma: signal ", shape_str(signal.shape),
           " must hold at least n_fft = ", n_fft, " samples");
  MG_CHECK(filters.ndim() == 2 && filters.dim(0) >= 1 && filters.dim(1) == n_fft / 2 + 1, "chroma: filters ",
           shape_str(filters.shape), " must be [n_chroma, n_fft / 2 + 1 = ", n_fft / 2 + 1, "]");
  return {1 + signal.numel() / hop, filters.dim(0)};
}

}  // namespace mg
