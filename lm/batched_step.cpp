#include "lm/batched_step.h"

#include <algorithm>
#include <cmath>

namespace mg {

Tensor linear_in_row_groups(Backend& be, const Tensor& x, const Tensor& w, const LinearFusion& fuse) {
  const int64_t M = x.dim(0);
  // Quantized weights: the kernel gives a row the same bits for any row count (linear_quant.cpp),
  // so every row goes in one call and the weights are read once per step.
  if (M <= kBatchedStepRowsPerCall || dtype_is_quantized(w.dtype)) return be.linear_fused(x, w, nullptr, fuse);
  Tensor y = be.alloc(DType::F32, {M, w.dim(0)});
  for (int64_t m0 = 0; m0 < M; m0 += kBatchedStepRowsPerCall) {
    const int64_t rows = std::min(kBatchedStepRowsPerCall, M - m0);
    LinearFusion f = fuse;
    Tensor residual;
    if (fuse.residual) {
      residual = fuse.residual->slice0(m0, rows);
      f.residual = &residual;
    }
    be.copy_rows(y, m0, be.linear_fused(x.slice0(m0, rows), w, nullptr, f));
  }
  return y;
}

namespace {

LinearFusion residual_of(const Tensor& r) {
  LinearFusion f;
  f.residual = &r;
  return f;
}

// Self-attention of each state's rows over its own cache (the new position written first), all
// states in one attention_rows_batch call (one pool hand-off per layer on the CPU, not one per state).
Tensor self_attention(Backend& be, const std::vector<DecoderState*>& states, size_t layer, const Tensor& qkv,
                      int64_t D, int H, float scale) {
  Tensor att = be.alloc(DType::F32, {qkv.dim(0), D});
  std::vector<AttentionRowsJob> jobs;
  int64_t r0 = 0;
  for (DecoderState* st : states) {
    const int R = st->rows;
    Tensor q = qkv.slice0(r0, R);  // [R, 3D]: q | k | v of the new column
    be.write_kv(st->k_cache[layer], st->length, q, D);
    be.write_kv(st->v_cache[layer], st->length, q, 2 * D);
    jobs.push_back({q.reshape({R, 1, 3 * D}), st->k_cache[layer], st->v_cache[layer], st->length + 1, r0});
    r0 += R;
  }
  be.attention_rows_batch(att, jobs, H, scale, true);
  return att;
}

// Cross-attention of each state's rows to its own text keys/values, run by run as decoder_step
// does (add_cross_attention: zeros for null rows), all states' runs in one attention_rows_batch call.
Tensor cross_attention(Backend& be, const std::vector<DecoderState*>& states, size_t layer, const Tensor& cq,
                       int64_t D, int H, float scale) {
  Tensor out = be.alloc(DType::F32, {cq.dim(0), D});
  std::vector<AttentionRowsJob> jobs;
  int64_t r0 = 0;
  for (DecoderState* st : states) {
    add_cross_attention(be, *st, layer, cq.slice0(r0, st->rows).reshape({st->rows, 1, D}), out, r0, jobs);
    r0 += st->rows;
  }
  if (!jobs.empty()) be.attention_rows_batch(out, jobs, H, scale, false);
  return out;
}

}  // namespace

Tensor decoder_step_states(Backend& be, const MusicgenDecoder& dec, const std::vector<DecoderState*>& states,
                           const Tensor& ids, const std::function<void(size_t)>& before_layer) {
  const int K = dec.cfg.num_codebooks, H = dec.cfg.num_attention_heads;
  const int64_t D = dec.cfg.hidden_size, V = dec.cfg.vocab_size;
  MG_CHECK(!states.empty(), "decoder_step_states: no states");
  int64_t rows = 0;
  for (const DecoderState* st : states) {
    MG_CHECK(st->length + 1 <= st->capacity, "decoder_step_states: a state is full (", st->length, " of ",
             st->capacity, " positions)");
    rows += st->rows;
  }
  MG_CHECK(ids.ndim() == 2 && ids.dim(0) == K && ids.dim(1) == rows, "decoder_step_states: ids ", shape_str(ids.shape),
           " must be [", K, ", ", rows, "]");

  // Each row's position: its state's length.
  Tensor positions = Tensor::empty(DType::I32, {rows});
  int64_t r = 0;
  for (const DecoderState* st : states)
    for (int i = 0; i < st->rows; ++i) positions.ptr<int32_t>()[r++] = int32_t(st->length);
  std::vector<const Tensor*> tables;
  for (const Tensor& t : dec.embed) tables.push_back(&t);
  Tensor x = be.add(be.embedding_sum(tables, ids), be.embedding(dec.positions, be.upload(positions)));

  const float scale = 1.0f / std::sqrt(float(D / H));
  for (size_t l = 0; l < dec.layers.size(); ++l) {
    if (before_layer) before_layer(l);
    const DecoderLayer& L = dec.layers[l];
    Tensor h = be.layer_norm(x, L.sa_ln_w, &L.sa_ln_b, 1e-5f);
    Tensor qkv = linear_in_row_groups(be, h, L.qkv, LinearFusion());
    Tensor att = self_attention(be, states, l, qkv, D, H, scale);
    x = linear_in_row_groups(be, att, L.o, residual_of(x));
    if (dec.cross_attention) {
      h = be.layer_norm(x, L.ca_ln_w, &L.ca_ln_b, 1e-5f);
      Tensor cq = linear_in_row_groups(be, h, L.cq, LinearFusion());
      x = linear_in_row_groups(be, cross_attention(be, states, l, cq, D, H, scale), L.co, residual_of(x));
    }
    h = be.layer_norm(x, L.ff_ln_w, &L.ff_ln_b, 1e-5f);
    LinearFusion gelu;
    gelu.gelu = true;
    x = linear_in_row_groups(be, linear_in_row_groups(be, h, L.fc1, gelu), L.fc2, residual_of(x));
  }
  x = be.layer_norm(x, dec.ln_w, &dec.ln_b, 1e-5f);
  for (DecoderState* st : states) ++st->length;
  return linear_in_row_groups(be, x, dec.heads, LinearFusion()).reshape({rows, K, V});
}

}  // namespace mg
