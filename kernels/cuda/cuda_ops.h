// Launchers of the CUDA kernels, llm.c style: plain functions over device pointers and a stream,
// one file kernels/cuda/<op>.cu each. They check launch errors (mg::Error) but not shapes: the
// backend (cuda_backend.cu) validates tensors against the contract of kernels/ops.h first.
// Every launcher is a no-op for empty work. Sizes are int64_t; cuBLAS calls check that their
// dimensions fit in int.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/ops.h"  // SamplerParams, PadMode
#include "kernels/tensor.h"

namespace mg {
namespace cuda {

// ---- linear.cu: y[M, N] = gelu?(x[M, K] . w[N, K]^T (+ b[N])) (+ residual[M, N]); w f32/f16/bf16,
// b f32/f16/bf16 or null, residual f32 or null (not aliasing y).
void linear(cublasHandle_t h, cudaStream_t s, const float* x, const void* w, DType wdt, const void* b,
            DType bdt, float* y, int64_t M, int64_t N, int64_t K, bool gelu = false, const float* residual = nullptr);
// y[M, N] += b[N] (b in f32/f16/bf16).
void add_row_bias(cudaStream_t s, float* y, const void* b, DType bdt, int64_t M, int64_t N);

// ---- matmul.cu: c[i] = alpha * a[i] . (trans_b ? b[i]^T : b[i]) for i < batch, row-major,
// a[M, K], b[K, N] or [N, K], c[M, N]; a stride of 0 broadcasts one matrix over the batch.
void matmul(cublasHandle_t h, const float* a, int64_t stride_a, const float* b, int64_t stride_b,
            float* c, int64_t batch, int64_t M, int64_t N, int64_t K, bool trans_b, float alpha);

// ---- elementwise.cu ----
enum class BinaryOp { Add, Mul };
// out[i] = a[i] op b[i % nb]  (b's shape is a suffix of a's: broadcast over the leading dims).
void binary(cudaStream_t s, BinaryOp op, const float* a, const float* b, float* out, int64_t n, int64_t nb);
enum class UnaryOp { Scale, Elu, Gelu, Relu };
// Scale: x * p; Elu: x > 0 ? x : p * (exp(x) - 1); Gelu: exact erf form; Relu: max(x, 0).
void unary(cudaStream_t s, UnaryOp op, const float* x, float* out, int64_t n, float p);
// Between f32/f16/bf16, or i32 <-> i64 (same dtype: a copy). An i64 value outside the i32 range
// sets *overflow_flag (device int, may be null) to `tag` unless it is already non-zero.
void cast(cudaStream_t s, const void* x, DType from, void* out, DType to, int64_t n, int* overflow_flag = nullptr,
          int tag = 1);

// ---- norm.cu (one block per row, f32 statistics) ----
void layer_norm(cudaStream_t s, const float* x, const float* gamma, const float* beta, float* y,
                int64_t rows, int64_t D, float eps);
void rms_norm(cudaStream_t s, const float* x, const float* gamma, float* y, int64_t rows, int64_t D,
              float eps);
// x[B, C, T]: statistics per (batch, group) over (C / groups) * T values.
void group_norm(cudaStream_t s, const float* x, const float* gamma, const float* beta, float* y,
                int64_t B, int64_t C, int64_t T, int64_t groups, float eps);

// ---- softmax.cu: over the last dim; a row of all -inf gives zeros.
void softmax(cudaStream_t s, const float* x, float* y, int64_t rows, int64_t D);

// ---- conv.cu (im2col / col2im around cuBLAS sgemm). `scratch` has at least
// conv*_scratch_floats(...) floats.
int64_t conv1d_scratch_floats(int64_t Cin, int64_t K, int stride, int64_t Tout);
void conv1d(cublasHandle_t h, cudaStream_t s, const float* x, const float* w, const float* b, float* y,
            float* scratch, int64_t B, int64_t Cin, int64_t T, int64_t Cout, int64_t K, int stride,
            int dilation, int64_t Tout);
int64_t conv_transpose1d_scratch_floats(int64_t Cout, int64_t K, int64_t T);
void conv_transpose1d(cublasHandle_t h, cudaStream_t s, const float* x, const float* w, const float* b,
                      float* y, float* scratch, int64_t B, int64_t Cin, int64_t T, int64_t Cout, int64_t K,
                      int stride, int64_t Tout);

// ---- layout.cu ----
// x[rows, T] -> y[rows, left + T + right] (PadMode: kernels/ops.h).
void pad1d(cudaStream_t s, const float* x, float* y, int64_t rows, int64_t T, int64_t left, int64_t right,
           PadMode kind, float value);
// x[batch, A, B] -> y[batch, B, A] for elements of elem_size 2, 4 or 8 bytes.
void transpose(cudaStream_t s, const void* x, void* y, int64_t batch, int64_t A, int64_t B, int elem_size);
// y[rows, len] = x[rows, start : start + len] of x[rows, T], elements of 2, 4 or 8 bytes.
void narrow_last(cudaStream_t s, const void* x, void* y, int64_t rows, int64_t T, int64_t start, int64_t len,
                 int elem_size);

// ---- vq.cu: ids[n] = argmax_j -((|x_n|^2 - 2 x_n.e_j) + |e_j|^2), first j on ties; x[N, D],
// embed[V, D] f32, ids i64. `scratch` has at least vq_nearest_scratch_floats(N, V) floats.
int64_t vq_nearest_scratch_floats(int64_t N, int64_t V);
void vq_nearest(cublasHandle_t h, cudaStream_t s, const float* x, const float* embed, int64_t* ids, float* scratch,
                int64_t N, int64_t V, int64_t D);

// ---- attention.cu: S queries q[S, H*dh] over the first T rows of k/v[>= T, H*dh] -> out[S, H*dh];
// query i sits at position T - S + i and, when causal, sees keys 0 .. T - S + i. Split over the
// keys in chunks (flash-decoding); `scratch` has attention_scratch_floats(...) floats (0: may be null).
constexpr int kMaxAttentionHeadDim = 256;
int64_t attention_chunks(int64_t T);
int64_t attention_scratch_floats(int64_t S, int heads, int64_t dh, int64_t T);
// `batch` independent problems (Backend::attention_rows; attention is one), q/out advancing by
// S*q_stride / S*H*dh floats, k/v by kv_rows*H*dh, scratch by attention_scratch_floats(...) per problem.
// q_stride: floats from one query row to the next (0: heads * dh; wider for a fused q|k|v row).
// keys_dev non-null (a recorded step): the key count is min(*keys_dev, T), read when the kernels
// run; T then only sizes the launch (chunks past the keys do nothing).
// k/v are f32, or f16 (kv_dtype: a half KV cache).
// counters (may be null): kAttentionCounters zeroed device unsigneds; with them the chunks are
// merged by the last chunk block of each (row, head) instead of a second kernel, and the counters
// are left zeroed again. Launches that share them must not overlap (one stream).
constexpr int64_t kAttentionCounters = 1 << 16;
void attention_batched(cudaStream_t s, const float* q, const void* k, const void* v, float* out, float* scratch,
                       int64_t batch, int64_t kv_rows, int64_t S, int64_t T, int heads, int64_t dh, float scale,
                       bool causal, const int32_t* keys_dev = nullptr, DType kv_dtype = DType::F32,
                       int64_t q_stride = 0, unsigned* counters = nullptr);

// ---- kv_cache.cu: cache[r, pos + s, :] = src[r * S + s, col0 : col0 + D]; cache[R, cap, D] f32 or
// f16 (cache_dtype; rounded to nearest even), src[R * S, W] f32. pos_dev non-null: pos is *pos_dev
// (device i32), read when the kernel runs. cache2 non-null: a second cache of the same shape and
// dtype gets columns col0 + D .. col0 + 2D in the same launch (a layer's K and V).
void write_kv(cudaStream_t s, void* cache, const float* src, int64_t R, int64_t S, int64_t cap, int64_t D, int64_t W,
              int64_t pos, int64_t col0, const int32_t* pos_dev = nullptr, DType cache_dtype = DType::F32,
              void* cache2 = nullptr);

// ---- sample.cu: Backend::sample_tokens (kernels/cpu/sample.h is the reference). `seeds` is a
// HOST array of B seeds (they travel as a kernel parameter); logits[R, K, V], ids[B, K] i32,
// guided (null: not written) [B, K, V]. seeds_dev / step_dev non-null (a recorded step): the
// seeds and the step number are read from the device instead (`seeds` may then be null).
constexpr int kMaxSampleSequences = 64;
constexpr int kMaxSampleVocab = 2048;
void sample_tokens(cudaStream_t s, const float* logits, float* guided, int32_t* ids, const uint64_t* seeds, int B,
                   int K, int V, bool cfg, float guidance_scale, const SamplerParams& p, int64_t step,
                   const uint64_t* seeds_dev = nullptr, const int32_t* step_dev = nullptr);

// ---- delay_pattern.cu: Backend::delay_pattern_step_at. pattern[B, K, C], tokens[B, K], ids[K, R],
// counters[n_counters], all i32 on the device; *column is read before the counters are advanced.
void delay_pattern_step(cudaStream_t s, int32_t* pattern, const int32_t* tokens, const int32_t* column, int32_t* ids,
                        int32_t* counters, int B, int K, int64_t C, int R, int n_counters);

// ---- embedding.cu: out[n, :] = sum_k table_k[ids[k, n], :] for k < K (K = 1: plain embedding).
// `tables` / `vocab` are HOST arrays of K device pointers and sizes (K <= kMaxEmbeddingTables:
// they travel as a kernel parameter); tables are f32/f16/bf16, ids i32/i64 [K, N]. An id outside
// [0, vocab_k) contributes nothing and sets *bad_flag (device int, may be null) to `tag` unless it
// is already non-zero: the caller checks it (kernels/cuda/pending_checks.h).
constexpr int kMaxEmbeddingTables = 32;
void embedding_sum(cudaStream_t s, const void* const* tables, const int64_t* vocab, DType table_dtype,
                   int K, const void* ids, DType id_dtype, float* out, int64_t N, int64_t D, int* bad_flag, int tag);

// ---- chroma.cu: Backend::chroma, declared in cuda_sequence_ops.h (it keeps cuFFT plans in the
// device state). n_chroma <= kMaxChroma (a frame's raw values live in registers).
constexpr int kMaxChroma = 24;

// ---- lstm.cu: one time step. gates_x[4H] = x_t . W_ih^T + b_ih + b_hh (precomputed);
// h_prev[H] (null: zero state, the first step of a sequence that starts from nothing), c[H] is
// updated in place, h_out[H] written.
void lstm_step(cudaStream_t s, const float* gates_x, const float* w_hh, const float* h_prev, float* c,
               float* h_out, int64_t H);

}  // namespace cuda
}  // namespace mg
