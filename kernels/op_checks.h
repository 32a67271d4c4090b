// The contract of every Backend op (kernels/ops.h), written once. The public Backend methods call
// these before a backend's *_impl runs, so the CPU and CUDA implementations only ever see inputs
// that meet it and keep only what is truly theirs (a kernel's size limit, an id found out of range
// while reading). Each function throws mg::Error naming the op, the argument and the shapes, and
// returns what the op needs from the check (the output shape where it is not an input's).
//
// `dev` is the backend's device: every tensor argument must live there (host inputs of
// upload_into excepted).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/ops.h"

namespace mg {

// ---- one tensor argument `arg` of op `op` ----
// Defined (or empty) and on `dev`.
void check_on_device(const Tensor& t, Device dev, const char* op, const char* arg);
// On `dev` and of dtype `dt`.
void check_dtype(const Tensor& t, Device dev, DType dt, const char* op, const char* arg);
// On `dev` and f32, f16 or bf16.
void check_float(const Tensor& t, Device dev, const char* op, const char* arg);
// On `dev` and i32 or i64 (ids).
void check_ids(const Tensor& t, Device dev, const char* op, const char* arg);
// An i32 [1] tensor on `dev` (the position, key count, step or column of a recorded step).
void check_device_scalar(const Tensor& t, Device dev, const char* op, const char* arg);
bool is_float_dtype(DType t);
bool is_id_dtype(DType t);

// ---- dense algebra ----
// x[..., K] f32, w[N, K] f32/f16/bf16, b[N] f32, residual f32 of the output's size -> x.shape with N last.
Shape check_linear(Device dev, const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse = {});
// a[..., M, K], b[..., K, N] (or [..., N, K] transposed; a 2-D b is shared by every batch) -> [..., M, N].
Shape check_matmul(Device dev, const Tensor& a, const Tensor& b, bool trans_b);

// ---- elementwise ----
// add / mul: f32, b's shape (leading 1s dropped) equal to a's or a suffix of it.
void check_binary(Device dev, const Tensor& a, const Tensor& b, const char* op);
// scale / elu / gelu / relu: f32 x.
void check_unary(Device dev, const Tensor& x, const char* op);
// float <-> float or i32 <-> i64 (same dtype: a copy).
void check_cast(Device dev, const Tensor& x, DType to);

// ---- normalisation and softmax ----
void check_layer_norm(Device dev, const Tensor& x, const Tensor& gamma, const Tensor* beta);
void check_rms_norm(Device dev, const Tensor& x, const Tensor& gamma);
void check_group_norm(Device dev, const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta);
void check_softmax(Device dev, const Tensor& x);

// ---- convolutions and layout ----
// The fused conv1d of ops.h (padding rules as pad1d, residual shaped as the output) -> the output shape.
Shape check_conv1d(Device dev, const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                   const Conv1dFusion& fuse);
// The fused conv_transpose1d of ops.h (trim within the full output) -> the trimmed output shape.
Shape check_conv_transpose1d(Device dev, const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                             const ConvTranspose1dFusion& fuse);
Shape check_pad1d(Device dev, const Tensor& x, int left, int right, PadMode mode);
Shape check_transpose(Device dev, const Tensor& x);
Shape check_narrow_last(Device dev, const Tensor& x, int64_t start, int64_t len);

// ---- embeddings and search ----
// table[V, D] float, ids (up to 3 dims) -> ids.shape + [D]. Ids out of range are the reader's check.
Shape check_embedding(Device dev, const Tensor& table, const Tensor& ids);
// K float tables [V_k, D], ids[K, N] -> [N, D].
Shape check_embedding_sum(Device dev, const std::vector<const Tensor*>& tables, const Tensor& ids);
// x[N, D], embed[V >= 1, D], both f32.
void check_vq_nearest(Device dev, const Tensor& x, const Tensor& embed);

// ---- attention and the KV cache ----
// q[S, >= H*dh] f32, k/v[>= T, H*dh] both f32 or both f16, 1 <= T, causal needs T >= S.
void check_attention(Device dev, const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads,
                     bool causal);
// The same per row: q[R, S, >= H*dh], k/v[R, >= T, H*dh].
void check_attention_rows(Device dev, const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads,
                          bool causal);
void check_copy_rows(Device dev, const Tensor& dst, int64_t row0, const Tensor& src);
// cache[R, cap, D] (src's dtype, or f16/bf16 from f32 src), src[R * S, W] with col0 + D <= W, and
// positions pos .. pos + S within the cache.
void check_write_kv(Device dev, const Tensor& cache, int64_t pos, const Tensor& src, int64_t col0);
// The same with the position an i32 [1] on the device (its range is the reader's check).
void check_write_kv_at(Device dev, const Tensor& cache, const Tensor& pos, const Tensor& src, int64_t col0);
void check_write_kv_pair_at(Device dev, const Tensor& k_cache, const Tensor& v_cache, const Tensor& pos,
                            const Tensor& src, int64_t col0);
void check_attention_rows_at(Device dev, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keys,
                             int64_t max_keys, int heads, bool causal);
void check_upload_into(Device dev, const Tensor& dst, const Tensor& host);

// ---- sampling and the delay pattern ----
// top_k >= 0 whenever top-k decides (not greedy, temperature > 0, top-p off).
void check_sampler_params(const SamplerParams& p, const char* op);
// logits[cfg ? 2B : B, K, V] f32 for B >= 1 sequences, and the sampler parameters.
void check_sample_tokens(Device dev, const Tensor& logits, bool cfg, int64_t B, const SamplerParams& p,
                         const char* op = "sample_tokens");
// seeds i64 [B] and step i32 [1] on the device, then check_sample_tokens.
void check_sample_tokens_at(Device dev, const Tensor& logits, bool cfg, const SamplerParams& p, const Tensor& seeds,
                            const Tensor& step);
void check_delay_pattern_step_at(Device dev, const Tensor& pattern, const Tensor& tokens, const Tensor& column,
                                 const Tensor& ids, const Tensor& counters);

// ---- recurrent ----
// x[T, In] f32, w_ih[4H, In], w_hh[4H, H], biases of 4H (all float), states f32 of H when given.
void check_lstm(Device dev, const Tensor& x, const LstmLayerWeights& w, const Tensor* h, const Tensor* c);

// ---- MusicGen-melody's chroma ----
// signal f32 [n >= n_fft], window f32 [n_fft], filters f32 [n_chroma, n_fft/2 + 1], n_fft even, hop >= 1
// -> [frames, n_chroma] with frames = 1 + n / hop (centred frames over the reflect-padded signal).
Shape check_chroma(Device dev, const Tensor& signal, const Tensor& window, const Tensor& filters, int hop);

}  // namespace mg
