// The MusicGen decoder (HF MusicgenDecoder + lm_heads): summed codebook embeddings, sinusoidal
// positions (cos block then sin block), pre-LayerNorm layers with causal self-attention over a KV
// cache, cross-attention to the projected text, exact-GELU FFN, a final LayerNorm and one head per
// codebook. Rows of a step are independent sequences (the CFG pair, or several takes).
#pragma once

#include <vector>

#include "lm/musicgen_config.h"
#include "kernels/ops.h"
#include "weights/safetensors.h"

namespace mg {

// q|k|v (and the cross-attention k|v) are concatenated at load along the output dim so that one
// GEMM computes them all: qkv [3D, D] gives [q | k | v] columns, ckv [2D, D] gives [k | v].
struct DecoderLayer {
  Tensor sa_ln_w, sa_ln_b, qkv, o;         // self-attention
  Tensor ca_ln_w, ca_ln_b, cq, ckv, co;    // cross-attention (absent in melody models)
  Tensor ff_ln_w, ff_ln_b, fc1, fc2;
};

struct MusicgenDecoder {
  MusicgenDecoderConfig cfg;
  bool cross_attention = true;  // false for melody models: the condition is a prefix instead
  std::vector<Tensor> embed;   // K x [vocab + 1, D]
  std::vector<DecoderLayer> layers;
  Tensor ln_w, ln_b;
  Tensor heads;                // the K heads stacked: [K * vocab, D], one GEMM gives [rows, K, vocab]
  Tensor positions;            // [max_positions, D], recomputed as HF does (not read from the file)
  // The self-attention KV caches: f16 when the weights are half (it halves what attention reads
  // per step, ~0.3 GB per step late in a 30 s musicgen-small window), f32 with f32 weights (parity).
  DType kv_dtype = DType::F32;
};

// `weights` is seen from the snapshot root ("decoder.model.decoder.*", "decoder.lm_heads.*").
// cross_attention=false loads a melody decoder (no encoder_attn weights). weight_dtype: f32, f16,
// bf16, q8_0 or q4_0 for the projection/FFN/head weights (quantized ones are converted at load, or
// taken as stored when the snapshot holds them in that scheme).
MusicgenDecoder load_musicgen_decoder(Backend& be, const WeightStore& weights, const MusicgenDecoderConfig& cfg,
                                      bool cross_attention = true, DType weight_dtype = DType::F32);

// HF MusicgenSinusoidalPositionalEmbedding.get_embedding in float32: [n, dim].
Tensor sinusoidal_positions(int64_t n, int64_t dim);

// Rows [row0, row0 + rows) whose texts have the same length T: one batched cross-attention.
// null_text: rows without text (CFG's null rows), whose keys and values are all zero. Their
// attention output is then exactly +0.0 for any finite query (scores +-0, weights e^0 / sum > 0,
// times +0 values, summed from +0), so the step writes zeros there instead of attending.
struct CrossAttentionRun {
  int row0 = 0, rows = 0;
  int64_t T = 0;
  bool null_text = false;
};

// Per-generation state: one KV cache per layer holding every row, and the cross-attention
// keys/values of every row (null rows all zero: their cross-attention output is exactly zero).
// Every layer's K and V caches are views of one block (kv_block, decoder_kv_bytes), so that a
// server can hand a finished request's block, pages already mapped, to the next request as a whole
// (decoder_start's `reuse`).
struct DecoderState {
  int rows = 0;
  int64_t capacity = 0;       // positions the caches hold
  int64_t length = 0;         // positions filled so far
  Tensor kv_block;            // what k_cache and v_cache are views of (may be larger than they need)
  std::vector<Tensor> k_cache, v_cache;   // [layer] -> [rows, capacity, D] in the decoder's kv_dtype
  std::vector<Tensor> cross_k, cross_v;   // [layer] -> [rows, T_text max, D] (cross-attention models)
  std::vector<CrossAttentionRun> cross_runs;
};

// Bytes of the block that holds a DecoderState's KV caches: K and V of every layer, `rows` rows of
// `capacity` positions in the decoder's kv_dtype.
size_t decoder_kv_bytes(const MusicgenDecoder& dec, int rows, int64_t capacity);

// Layer `layer`'s cross-attention of st's rows (queries cq[st.rows, S, D]) into out[N, D], row r's
// column s at out_row0 + r * S + s: appends one attention_rows_batch job per run with text to
// `jobs` (the caller runs them, with other states' jobs in the same call) and copies zeros into the
// rows of null runs. The decode step and the server's shared step both go through here, so a row
// has the same bits in either.
void add_cross_attention(Backend& be, const DecoderState& st, size_t layer, const Tensor& cq, Tensor& out,
                         int64_t out_row0, std::vector<AttentionRowsJob>& jobs);

// text[r]: the projected, masked text of row r ([T_text, D] on the device), or an undefined tensor
// for a null (unconditional) row: its cross-attention output is exactly zero, as in the references.
// reuse: a kv_block of an earlier state, taken as this state's block when it is on this backend's
// device, of the kv_dtype and at least decoder_kv_bytes large (its old contents are never read:
// attention reads only the positions written since); otherwise a new block is allocated.
DecoderState decoder_start(Backend& be, const MusicgenDecoder& dec, const std::vector<Tensor>& text,
                           int64_t capacity, Tensor reuse = Tensor());

// Runs a prefix of embeddings through the decoder (melody models: [chroma || text] per row,
// prefix[r] is [P, D] on the device, all rows the same P). Fills the caches, advances length by P.
void decoder_prefill(Backend& be, const MusicgenDecoder& dec, DecoderState& state, const std::vector<Tensor>& prefix);

// Runs S new columns for every row: codes[r][k][s] (host, values 0..vocab) -> logits of the LAST
// column of each row, [rows, K, vocab] (host f32); all_logits (optional) gets every column's,
// [rows, S, K, vocab]. Advances state.length by S.
Tensor decoder_step(Backend& be, const MusicgenDecoder& dec, DecoderState& state,
                    const std::vector<std::vector<std::vector<int>>>& codes, Tensor* all_logits = nullptr);

// The same step without host round trips: ids[K, rows * S] (i32 on the device; column r * S + s
// is row r's column s) -> logits of the last column of each row, [rows, K, vocab] on the device;
// all_logits (optional) gets [rows, S, K, vocab] on the device.
Tensor decoder_step_device(Backend& be, const MusicgenDecoder& dec, DecoderState& state, const Tensor& ids,
                           Tensor* all_logits = nullptr);

// A decode step whose inputs live in device memory (what a recorded step replays, see
// Backend::record): one new column per row at position *pos (i32 [1]), keys = pos + 1 (i32 [1]),
// row_positions (i32 [rows], every entry pos: the rows of the positional-embedding lookup), ids
// (i32 [K, rows], the column's codes).
struct StepAt {
  Tensor ids, row_positions, pos, keys;
};

// decoder_step_device for one column per row with the position read from the device: logits
// [rows, K, vocab] on the device. Leaves state.length alone (the host code of a recorded step
// runs once): the caller advances it by one per replay. The host position st.length still bounds
// the call (st.length + 1 <= capacity) and must equal *at.pos.
Tensor decoder_step_at(Backend& be, const MusicgenDecoder& dec, DecoderState& state, const StepAt& at);

}  // namespace mg
