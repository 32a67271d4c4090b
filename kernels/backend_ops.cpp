// The public Backend ops: each checks its contract (kernels/op_checks.h) against this backend's
// device, then runs the backend's implementation. Nothing else belongs here: what an op does lives
// in its *_impl (kernels/cpu/, kernels/cuda/, and the host defaults of backend_fallbacks.cpp and
// backend_recording.cpp).
#include "kernels/op_checks.h"
#include "kernels/ops.h"

namespace mg {

// ---- dense algebra ----

Tensor Backend::linear(const Tensor& x, const Tensor& w, const Tensor* b) {
  return linear_impl(x, w, b, check_linear(device(), x, w, b));
}
Tensor Backend::linear_fused(const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse) {
  return linear_fused_impl(x, w, b, fuse, check_linear(device(), x, w, b, fuse));
}
Tensor Backend::matmul(const Tensor& a, const Tensor& b, bool trans_b, float alpha) {
  return matmul_impl(a, b, trans_b, alpha, check_matmul(device(), a, b, trans_b));
}

// ---- elementwise ----

Tensor Backend::add(const Tensor& a, const Tensor& b) {
  check_binary(device(), a, b, "add");
  return add_impl(a, b);
}
Tensor Backend::mul(const Tensor& a, const Tensor& b) {
  check_binary(device(), a, b, "mul");
  return mul_impl(a, b);
}
Tensor Backend::scale(const Tensor& a, float s) {
  check_unary(device(), a, "scale");
  return scale_impl(a, s);
}
Tensor Backend::elu(const Tensor& x, float alpha) {
  check_unary(device(), x, "elu");
  return elu_impl(x, alpha);
}
Tensor Backend::gelu(const Tensor& x) {
  check_unary(device(), x, "gelu");
  return gelu_impl(x);
}
Tensor Backend::relu(const Tensor& x) {
  check_unary(device(), x, "relu");
  return relu_impl(x);
}
Tensor Backend::cast(const Tensor& x, DType to) {
  check_cast(device(), x, to);
  return cast_impl(x, to);
}

// ---- normalisation and softmax ----

Tensor Backend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps) {
  check_layer_norm(device(), x, gamma, beta);
  return layer_norm_impl(x, gamma, beta, eps);
}
Tensor Backend::rms_norm(const Tensor& x, const Tensor& gamma, float eps) {
  check_rms_norm(device(), x, gamma);
  return rms_norm_impl(x, gamma, eps);
}
Tensor Backend::group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps) {
  check_group_norm(device(), x, groups, gamma, beta);
  return group_norm_impl(x, groups, gamma, beta, eps);
}
Tensor Backend::softmax(const Tensor& x) {
  check_softmax(device(), x);
  return softmax_impl(x);
}

// ---- convolutions and layout ----

Tensor Backend::conv1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                       const Conv1dFusion& fuse) {
  return conv1d_impl(x, w, b, stride, dilation, fuse, check_conv1d(device(), x, w, b, stride, dilation, fuse));
}
Tensor Backend::conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                                 const ConvTranspose1dFusion& fuse) {
  return conv_transpose1d_impl(x, w, b, stride, fuse, check_conv_transpose1d(device(), x, w, b, stride, fuse));
}
Tensor Backend::pad1d(const Tensor& x, int left, int right, PadMode mode, float value) {
  return pad1d_impl(x, left, right, mode, value, check_pad1d(device(), x, left, right, mode));
}
Tensor Backend::transpose(const Tensor& x) { return transpose_impl(x, check_transpose(device(), x)); }
Tensor Backend::narrow_last(const Tensor& x, int64_t start, int64_t len) {
  return narrow_last_impl(x, start, len, check_narrow_last(device(), x, start, len));
}

// ---- embeddings and search ----

Tensor Backend::embedding(const Tensor& table, const Tensor& ids) {
  return embedding_impl(table, ids, check_embedding(device(), table, ids));
}
Tensor Backend::embedding_sum(const std::vector<const Tensor*>& tables, const Tensor& ids) {
  return embedding_sum_impl(tables, ids, check_embedding_sum(device(), tables, ids));
}
Tensor Backend::vq_nearest(const Tensor& x, const Tensor& embed) {
  check_vq_nearest(device(), x, embed);
  return vq_nearest_impl(x, embed);
}

// ---- attention and the KV cache ----

Tensor Backend::attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                          bool causal) {
  check_attention(device(), q, k, v, T, heads, causal);
  return attention_impl(q, k, v, T, heads, scale, causal);
}
void Backend::copy_rows(Tensor& dst, int64_t row0, const Tensor& src) {
  check_copy_rows(device(), dst, row0, src);
  copy_rows_impl(dst, row0, src);
}
Tensor Backend::attention_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                               bool causal) {
  check_attention_rows(device(), q, k, v, T, heads, causal);
  return attention_rows_impl(q, k, v, T, heads, scale, causal);
}
void Backend::attention_rows_batch(Tensor& out, const std::vector<AttentionRowsJob>& jobs, int heads, float scale,
                                   bool causal) {
  check_on_device(out, device(), "attention_rows_batch", "out");
  MG_CHECK(out.dtype == DType::F32 && out.ndim() == 2, "attention_rows_batch: out must be f32 [rows, H*dh], got ",
           dtype_name(out.dtype), " ", shape_str(out.shape));
  for (size_t j = 0; j < jobs.size(); ++j) {
    const AttentionRowsJob& a = jobs[j];
    check_attention_rows(device(), a.q, a.k, a.v, a.T, heads, causal);
    MG_CHECK(a.k.dim(2) == out.dim(1) && a.out_row0 >= 0 && a.out_row0 + a.q.dim(0) * a.q.dim(1) <= out.dim(0),
             "attention_rows_batch: job ", j, "'s ", a.q.dim(0) * a.q.dim(1), " rows of ", a.k.dim(2),
             " values at row ", a.out_row0, " do not fit out ", shape_str(out.shape));
  }
  attention_rows_batch_impl(out, jobs, heads, scale, causal);
}
void Backend::write_kv(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0) {
  check_write_kv(device(), cache, pos, src, col0);
  write_kv_impl(cache, pos, src, col0);
}

// ---- sampling ----

Tensor Backend::sample_tokens(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                              const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided) {
  check_sample_tokens(device(), logits, cfg, int64_t(seeds.size()), p);
  return sample_tokens_impl(logits, cfg, guidance_scale, p, seeds, step, guided);
}

// ---- the recorded decode step ----

void Backend::upload_into(Tensor& dst, const Tensor& host) {
  check_upload_into(device(), dst, host);
  upload_into_impl(dst, host);
}
void Backend::write_kv_at(Tensor& cache, const Tensor& pos, const Tensor& src, int64_t col0) {
  check_write_kv_at(device(), cache, pos, src, col0);
  write_kv_at_impl(cache, pos, src, col0);
}
void Backend::write_kv_pair_at(Tensor& k_cache, Tensor& v_cache, const Tensor& pos, const Tensor& src,
                               int64_t col0) {
  check_write_kv_pair_at(device(), k_cache, v_cache, pos, src, col0);
  write_kv_pair_at_impl(k_cache, v_cache, pos, src, col0);
}
Tensor Backend::attention_rows_at(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keys,
                                  int64_t max_keys, int heads, float scale, bool causal) {
  check_attention_rows_at(device(), q, k, v, keys, max_keys, heads, causal);
  return attention_rows_at_impl(q, k, v, keys, max_keys, heads, scale, causal);
}
Tensor Backend::sample_tokens_at(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                                 const Tensor& seeds, const Tensor& step, Tensor* guided) {
  check_sample_tokens_at(device(), logits, cfg, p, seeds, step);
  return sample_tokens_at_impl(logits, cfg, guidance_scale, p, seeds, step, guided);
}
void Backend::delay_pattern_step_at(Tensor& pattern, const Tensor& tokens, const Tensor& column, Tensor& ids,
                                    Tensor& counters) {
  check_delay_pattern_step_at(device(), pattern, tokens, column, ids, counters);
  delay_pattern_step_at_impl(pattern, tokens, column, ids, counters);
}

// ---- recurrent and chroma ----

Tensor Backend::lstm(const Tensor& x, const LstmLayerWeights& w, Tensor* h, Tensor* c) {
  check_lstm(device(), x, w, h, c);
  return lstm_impl(x, w, h, c);
}
Tensor Backend::chroma(const Tensor& signal, const Tensor& window, float window_norm, const Tensor& filters, int hop,
                       float eps, Tensor* argmax) {
  const Shape out = check_chroma(device(), signal, window, filters, hop);
  return chroma_impl(signal, window, window_norm, filters, hop, eps, argmax, out);
}

}  // namespace mg
