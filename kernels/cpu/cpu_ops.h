// The CPU reference ops: free functions over CPU tensors, one small family per .cpp file in this
// folder. CpuBackend (cpu_backend.cpp) is a thin shell over these, and the CUDA backend's tests
// call them directly as the reference, so each is usable on its own with a default Exec.
//
// They take inputs that meet the op's contract (kernels/ops.h), which the public Backend methods
// check once for every backend (kernels/op_checks.h); only what the data itself can break (an id
// outside its table, an i64 that does not fit in i32) is checked here, while reading it. Tests
// of the contract go through a Backend.
#pragma once

#include <vector>

#include "kernels/ops.h"
#include "kernels/cpu/threadpool.h"

namespace mg::cpu {

// True when this processor has AVX2, FMA and F16C (checked once at run time).
bool cpu_has_avx2();
// True when this processor has AVX-512F (checked once at run time).
bool cpu_has_avx512();

// How an op may run: on which pool (null: the calling thread only) and whether hand-written AVX2
// paths may be used. allow_simd = false forces the portable loops, so tests can check both paths
// on any machine; allow_avx512 = false keeps the ops that have an AVX-512 path (lstm) on AVX2.
// OpenBLAS itself always runs single-threaded; work is split over the pool in
// pieces fixed by the shapes alone, so results are bit-identical for any thread count.
// The LSTM's recurrent weights W_hh as its AVX-512 kernel reads them: f32 (exact, the default) or,
// opted into with MUSICGEN_LSTM_WEIGHTS=f16|bf16 (lstm_weights_from_env), rounded to 16 bits to
// halve the bytes each step reads (EnCodec codes then agree with f32 mostly, not exactly:
// docs/PERFORMANCE.md). Other paths always read f32.
enum class LstmWeights { F32, F16, Bf16 };

struct Exec {
  ThreadPool* pool = nullptr;
  bool allow_simd = true;
  bool allow_avx512 = true;
  LstmWeights lstm_weights = LstmWeights::F32;

  int threads() const { return pool ? pool->size() : 1; }
  bool simd() const { return allow_simd && cpu_has_avx2(); }
};

// ---- dense algebra (linear.cpp, matmul.cpp) ----
Tensor linear(const Tensor& x, const Tensor& w, const Tensor* b, const Exec& ex = {});
// linear with a Q8_0/Q4_0 weight on a given kernel path (linear_quant.cpp); linear() calls it on
// kernel_path_for(ex) (kernels/cpu/cpu_features.h).
enum class KernelPath;
Tensor linear_quantized(const Tensor& x, const Tensor& w, const Tensor* b, const Exec& ex, KernelPath path);
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_b, float alpha = 1.0f, const Exec& ex = {});

// ---- elementwise (elementwise.cpp, cast.cpp) ----
Tensor add(const Tensor& a, const Tensor& b, const Exec& ex = {});
Tensor mul(const Tensor& a, const Tensor& b, const Exec& ex = {});
Tensor scale(const Tensor& a, float s, const Exec& ex = {});
Tensor elu(const Tensor& x, float alpha = 1.0f, const Exec& ex = {});
Tensor gelu(const Tensor& x, const Exec& ex = {});
Tensor relu(const Tensor& x, const Exec& ex = {});
// In place, for a fused linear's epilogue: x = gelu(x); y = a + y (a and y of one shape).
void gelu_inplace(Tensor& x, const Exec& ex = {});
void add_inplace(const Tensor& a, Tensor& y, const Exec& ex = {});
Tensor cast(const Tensor& x, DType to, const Exec& ex = {});

// ---- normalisation and softmax (norm.cpp, softmax.cpp) ----
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps, const Exec& ex = {});
Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps, const Exec& ex = {});
Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                  const Exec& ex = {});
Tensor softmax(const Tensor& x, const Exec& ex = {});

// ---- 1-D convolutions, padding, layout (conv1d.cpp, conv_transpose1d.cpp, pad1d.cpp, transpose.cpp)
//      conv1d / conv_transpose1d do their fusion (ops.h) inside the kernel: no padded, activated or
//      untrimmed copy of anything is made.
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation, const Conv1dFusion& fuse,
              const Exec& ex = {});
inline Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation, const Exec& ex = {}) {
  return conv1d(x, w, b, stride, dilation, Conv1dFusion{}, ex);
}
Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                        const ConvTranspose1dFusion& fuse, const Exec& ex = {});
inline Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, const Exec& ex = {}) {
  return conv_transpose1d(x, w, b, stride, ConvTranspose1dFusion{}, ex);
}
Tensor pad1d(const Tensor& x, int left, int right, PadMode mode, float value = 0.0f, const Exec& ex = {});
Tensor transpose(const Tensor& x, const Exec& ex = {});

// ---- embeddings (embedding.cpp) ----
Tensor embedding(const Tensor& table, const Tensor& ids, const Exec& ex = {});
Tensor embedding_sum(const std::vector<const Tensor*>& tables, const Tensor& ids, const Exec& ex = {});
// Backend::vq_nearest (ops.h), with the products as one parallel GEMM and the argmax per row in parallel.
Tensor vq_nearest(const Tensor& x, const Tensor& embed, const Exec& ex = {});

// ---- attention over a KV cache (attention.cpp, attention_split.cpp): Backend::attention's and
//      attention_rows' contracts; AVX-512: key blocks over all heads, else (head, query) pairs ----
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale, bool causal,
                 const Exec& ex = {});
// All R rows in one pool hand-off; each row has the bits attention() gives it alone.
Tensor attention_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                      bool causal, const Exec& ex = {});
// Backend::attention_rows_batch: every job's (row, query, key block) items in one pool hand-off on
// the AVX-512 path (one hand-off per job on the others); each job has the bits of attention_rows.
void attention_rows_batch(Tensor& out, const std::vector<AttentionRowsJob>& jobs, int heads, float scale,
                          bool causal, const Exec& ex = {});

// ---- sampling (sample.cpp): Backend::sample_tokens, the (sequence, codebook) draws on the pool,
//      the bits of the host reference (kernels/cpu/sample.h) ----
Tensor sample_tokens(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                     const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided, const Exec& ex);

// ---- KV cache (kv_cache.cpp): Backend::write_kv's contract; a half cache narrowed with F16C,
//      the bits of f32_to_f16 ----
void write_kv(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0, const Exec& ex = {});

// ---- MusicGen-melody's chroma (chroma.cpp): Backend::chroma with FFTW, frame after frame ----
Tensor chroma(const Tensor& signal, const Tensor& window, float window_norm, const Tensor& filters, int hop, float eps,
              Tensor* argmax = nullptr);

// ---- recurrent (lstm.cpp): Backend::lstm's contract; h/c null or undefined = zero state ----
Tensor lstm(const Tensor& x, const LstmLayerWeights& w, Tensor* h, Tensor* c, const Exec& ex = {});
Tensor lstm(const Tensor& x, const LstmLayerWeights& w, const Exec& ex = {});  // from zero state
// MUSICGEN_LSTM_WEIGHTS: unset or "f32" -> F32, "f16", "bf16"; anything else is an mg::Error.
LstmWeights lstm_weights_from_env();

}  // namespace mg::cpu
