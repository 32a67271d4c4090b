// The backend interface: every op the models need, implemented once for the CPU (kernels/cpu/,
// always built, the reference) and once for CUDA (kernels/cuda/, built when nvcc is found).
// Model code holds a Backend& and calls these; it never touches device memory directly.
//
// Conventions for every op:
//  - Activations are f32 and contiguous. Weights given to linear() may be f32, f16 or bf16
//    (accumulation is always f32). Integer ids are i32 or i64.
//  - Inputs live on the backend's device; the result is a new tensor on the same device.
//  - Shapes, dtypes and devices are checked once for every backend (kernels/op_checks.h); a
//    mismatch throws mg::Error naming the op and both shapes.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "kernels/tensor.h"

namespace mg {

enum class PadMode { Constant, Reflect, Replicate };

// Weights of one LSTM layer in PyTorch's layout (gate order i, f, g, o).
struct LstmLayerWeights {
  Tensor w_ih;  // [4H, In]
  Tensor w_hh;  // [4H, H]
  Tensor b_ih;  // [4H]
  Tensor b_hh;  // [4H]
};

// How sample_tokens turns logits into tokens, in audiocraft's order: CFG on raw logits ->
// softmax(logits / temperature) -> top-p if > 0, else top-k if > 0, else the full distribution.
struct SamplerParams {
  bool greedy = false;        // argmax (first index on ties); also when temperature <= 0
  int top_k = 250;            // audiocraft's default
  float top_p = 0.0f;         // 0: off
  float temperature = 1.0f;
};

// What conv1d may do around the convolution itself, in this order: y = residual + conv(pad(elu(x))) + b,
// i.e. exactly add(*residual, conv1d(pad1d(elu(x, elu_alpha), pad_left, pad_right, pad_mode, pad_value), ..)).
// A constant pad value is not passed through the ELU (it pads the activated input). Reflect needs
// pad_left, pad_right < T, as pad1d.
struct Conv1dFusion {
  bool elu = false;
  float elu_alpha = 1.0f;
  int pad_left = 0, pad_right = 0;
  PadMode pad_mode = PadMode::Constant;
  float pad_value = 0.0f;
  const Tensor* residual = nullptr;  // same shape as the output; not owned

  bool plain() const { return !elu && pad_left == 0 && pad_right == 0 && residual == nullptr; }
};

// What conv_transpose1d may do around the convolution: y = narrow_last(convtr(elu(x)) + b, trim_left,
// full - trim_left - trim_right), so the untrimmed output is never materialised.
struct ConvTranspose1dFusion {
  bool elu = false;
  float elu_alpha = 1.0f;
  int trim_left = 0, trim_right = 0;

  bool plain() const { return !elu && trim_left == 0 && trim_right == 0; }
};

// What linear may do after the product, in this order: y = residual + gelu(x . w^T + b), i.e.
// exactly add(*residual, gelu(linear(x, w, b))). The decode step's FFN and residual adds: on a
// GPU each of them is one more kernel launch per layer otherwise.
struct LinearFusion {
  bool gelu = false;                 // exact (erf) GELU
  const Tensor* residual = nullptr;  // same shape as the output; not owned

  bool plain() const { return !gelu && residual == nullptr; }
};

// One problem of Backend::attention_rows_batch: attention_rows(q, k, v, T, heads, scale, causal),
// whose [R * S, H*dh] result goes to rows out_row0 .. out_row0 + R * S of the batch's output.
struct AttentionRowsJob {
  Tensor q, k, v;  // q[R, S, Wq], k/v[R, >= T, H*dh], as attention_rows takes them
  int64_t T = 0;
  int64_t out_row0 = 0;
};

class Backend;
// The fused convs as compositions of plain ops on `be` (elu, pad1d, the plain conv, add,
// narrow_last): what a backend without fused kernels runs, and the reference the CPU's fused
// kernels are tested against (kernels/backend_fallbacks.cpp).
Tensor conv1d_composed(Backend& be, const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                       const Conv1dFusion& fuse);
Tensor conv_transpose1d_composed(Backend& be, const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                                 const ConvTranspose1dFusion& fuse);
// Backend::attention on the host (download, plain loops, upload; contract checked): the default of a
// backend without an attention kernel, and the reference the CPU and CUDA kernels are tested against.
Tensor attention_on_host(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads,
                         float scale, bool causal);

// Every op is a public method that checks the op's contract (kernels/op_checks.h: shapes, dtypes,
// and that the tensors live on this backend's device) and then calls the protected *_impl of the
// same name, which is what a backend overrides. The contract is thus written once for every
// backend, and an implementation only sees inputs that meet it. The public ops are not virtual, so
// no subclass can skip the contract; a decorator (a profiler timing another backend's ops)
// overrides the *_impl and forwards to the other backend's public ops.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual const char* name() const = 0;

  // ---- memory ----
  virtual Tensor alloc(DType t, const Shape& s) = 0;        // uninitialised, on this device
  virtual Tensor upload(const Tensor& host) = 0;            // CPU backend: returns `host` itself
  virtual Tensor download(const Tensor& dev) = 0;           // to a CPU tensor
  // A host weight that only ever feeds linear() as `w`: uploaded, possibly in a layout of this
  // backend's own (the CPU backend repacks q8_0/q4_0 for its AVX-512 kernels: in place when
  // `host` is the only reference to its buffer, e.g. moved in, else into a copy, so the caller may
  // release a mapped source). Default: upload.
  virtual Tensor upload_linear_weight(Tensor host) { return upload(host); }
  // Host weights [n_i, K] of one dtype stacked by rows (a fused projection such as q|k|v), as
  // upload_linear_weight(concat_rows(parts)) gives them, where a backend may skip the stacked
  // temporary (the CPU backend copies f32/bf16/f16 parts straight into its 2 MiB pages).
  virtual Tensor upload_linear_weight_rows(const std::vector<Tensor>& parts) {
    return upload_linear_weight(concat_rows(parts));
  }
  virtual void synchronize() {}

  // ---- dense algebra ----
  // y[..., N] = x[..., K] . w[N, K]^T (+ b[N]); w may be f32/f16/bf16 (PyTorch nn.Linear layout).
  Tensor linear(const Tensor& x, const Tensor& w, const Tensor* b);
  // linear with a GELU and/or a residual add after it (LinearFusion). Default: the composition.
  Tensor linear_fused(const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse);
  // c[B, M, N] = alpha * a[B, M, K] . (trans_b ? b[B, N, K]^T : b[B, K, N]); 2-D inputs mean B = 1.
  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_b, float alpha = 1.0f);

  // ---- elementwise (b's shape must equal a's shape or a suffix of it: broadcast over leading dims)
  Tensor add(const Tensor& a, const Tensor& b);
  Tensor mul(const Tensor& a, const Tensor& b);
  Tensor scale(const Tensor& a, float s);
  Tensor elu(const Tensor& x, float alpha = 1.0f);
  Tensor gelu(const Tensor& x);             // exact erf form
  Tensor relu(const Tensor& x);
  Tensor cast(const Tensor& x, DType to);   // between f32/f16/bf16 (and i32<->i64)

  // ---- normalisation and softmax (over the last dim unless stated) ----
  Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps);
  Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps);  // T5: no mean, no bias
  // x[B, C, T]: statistics over (C/groups, T) per group, affine per channel.
  Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps);
  Tensor softmax(const Tensor& x);

  // ---- 1-D convolution family; x is [B, C, T] (a 2-D [C, T] input is taken as B = 1) ----
  // Padding, an ELU on the input, a residual add and a trim can be fused into the conv (see
  // Conv1dFusion / ConvTranspose1dFusion): on long audio each of them is a pass through memory
  // otherwise. With default fusion the ops are plain: no implicit padding, no activation.
  // w[Cout, Cin, K]; out length (Tp - dilation*(K-1) - 1) / stride + 1, Tp = T + pad_left + pad_right.
  Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                const Conv1dFusion& fuse = {});
  // w[Cin, Cout, K] (PyTorch ConvTranspose1d layout); out length (T - 1) * stride + K - trim_left - trim_right.
  Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                          const ConvTranspose1dFusion& fuse = {});
  // Pads the last dim. Reflect needs left, right < T (as torch.nn.functional.pad).
  Tensor pad1d(const Tensor& x, int left, int right, PadMode mode, float value = 0.0f);
  // Swaps the last two dims: [.., A, B] -> [.., B, A].
  Tensor transpose(const Tensor& x);

  // ---- embeddings ----
  // table[V, D], ids[N] (i32/i64) -> [N, D]. An id outside [0, V) throws: on the CPU at once, on a
  // GPU at the next download() or synchronize() (the kernel flags it; waiting per call would stall).
  Tensor embedding(const Tensor& table, const Tensor& ids);
  // out[N, D] = sum_k tables[k][ids[k, n]]; ids[K, N] (MusicGen's summed codebook embeddings).
  Tensor embedding_sum(const std::vector<const Tensor*>& tables, const Tensor& ids);

  // ---- slicing and search (default versions go through the host: see kernels/backend_fallbacks.cpp;
  //      a backend overrides them with device kernels) ----
  // x[..., T] -> x[..., start : start + len] (a copy).
  Tensor narrow_last(const Tensor& x, int64_t start, int64_t len);
  // Nearest codeword for each row: x[N, D], embed[V, D] -> ids[N] (i64), the argmax over j of
  // -(|x|^2 - 2 x.e_j + |e_j|^2) in f32 with the first index winning ties (EnCodec's RVQ encode).
  Tensor vq_nearest(const Tensor& x, const Tensor& embed);

  // Multi-head attention of S queries over the first T rows of k and v (row r = position r):
  // q[S, Wq], k/v[>= T, H*dh] -> [S, H*dh]. The queries are the first H*dh columns of q's rows
  // (Wq >= H*dh: a fused q|k|v projection is passed as it is). Query i sits at position T - S + i;
  // when causal it sees keys 0 .. T - S + i, otherwise all T. Scores are scaled by `scale` before
  // the softmax. k and v are f32, or both f16 (a half KV cache).
  Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                   bool causal);
  // dst[row0 : row0 + src.dim(0)] = src, in place along dim 0 (appending to a KV cache).
  void copy_rows(Tensor& dst, int64_t row0, const Tensor& src);

  // Attention of R independent rows at once (the decode step's CFG rows / takes): q[R, S, Wq],
  // k/v[R, >= T, H*dh] -> [R, S, H*dh]; each row exactly as attention() on its slices.
  Tensor attention_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads,
                        float scale, bool causal);
  // Several independent attention_rows problems in one call (the server's shared step: each
  // request's rows over its own cache; on the CPU one pool hand-off for all): out[N, H*dh] f32
  // receives each job's result at its out_row0. Jobs may differ in R, S, T and cache dtype; each
  // gets exactly the bits attention_rows gives it alone. Default: attention_rows and copy_rows per job.
  void attention_rows_batch(Tensor& out, const std::vector<AttentionRowsJob>& jobs, int heads, float scale,
                            bool causal);
  // Appends S new positions of R rows to a KV cache, in place: cache[r, pos + s, :] =
  // src[r * S + s, col0 : col0 + D] for cache[R, capacity, D] and src[R * S, W] (the fused
  // q|k|v projection, so K and V go straight from the GEMM output into the cache).
  void write_kv(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0);

  // ---- sampling (reference: kernels/cpu/sample.cpp) ----
  // logits[R, K, V] f32 -> ids[B, K] i32, both on this device, B = seeds.size(). With cfg, R = 2B:
  // row s is sequence s's conditional row and row B + s its null row, and the tokens are drawn
  // from null + scale * (cond - null); without, R = B. Sequence s's random numbers come from a
  // counter-based hash of (seeds[s], step, codebook): same seed and logits, same tokens on every
  // backend. guided (optional) receives the [B, K, V] logits the tokens were drawn from. A
  // negative top_k throws (when top-k decides: not greedy, temperature > 0, top-p off).
  Tensor sample_tokens(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                       const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided = nullptr);

  // ---- the decode step as one recording (host defaults: kernels/backend_recording.cpp) ----
  // Consecutive decode steps differ only in their inputs (ids, position, step number), so a backend
  // may record a step's ops once and replay the recording (CUDA: one graph launch per step instead
  // of hundreds of kernel launches). For that the numbers that change must be read from device
  // memory at fixed addresses, which the *_at variants below do; upload_into refreshes them.
  //
  // In-place host -> device copy into an existing tensor of the same dtype and element count. The
  // host tensor must stay unchanged until the next synchronize() or download().
  void upload_into(Tensor& dst, const Tensor& host);
  // write_kv at the position held by pos (i32 [1] on this device).
  void write_kv_at(Tensor& cache, const Tensor& pos, const Tensor& src, int64_t col0);
  // Both caches of a layer at once (one launch on a GPU): k_cache gets columns col0 .. col0 + D of
  // src and v_cache the next D, i.e. write_kv_at(k_cache, pos, src, col0) and
  // write_kv_at(v_cache, pos, src, col0 + D) for caches of the same shape and dtype.
  void write_kv_pair_at(Tensor& k_cache, Tensor& v_cache, const Tensor& pos, const Tensor& src, int64_t col0);
  // attention_rows over the first keys[0] positions (i32 [1] on this device); max_keys >= keys[0]
  // (at most k.dim(1)) bounds the work a recording sets up.
  Tensor attention_rows_at(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keys,
                           int64_t max_keys, int heads, float scale, bool causal);
  // sample_tokens with the seeds (i64 [B], the bits of the u64 seeds) and the step number (i32 [1])
  // on this device.
  Tensor sample_tokens_at(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                          const Tensor& seeds, const Tensor& step, Tensor* guided = nullptr);

  // The delay pattern's bookkeeping between two steps, on the device (lm/delay_pattern.h), so that
  // recorded steps follow each other with no host round trip: pattern[B, K, C] (i32, -1 where not
  // yet known), tokens[B, K] just sampled for column c = column[0]. Sets pattern[b, k, c] =
  // tokens[b, k] where it is -1, writes the next step's codes ids[K, R] = pattern[r % B, k, c]
  // (R = B, or 2B with CFG), then adds one to every element of counters (i32; it may hold column,
  // which is read before).
  void delay_pattern_step_at(Tensor& pattern, const Tensor& tokens, const Tensor& column, Tensor& ids,
                             Tensor& counters);

  // record(ops) sets up a replayable recording of what ops() does; replay() runs it. The contract
  // for ops: backend ops only (no upload/download/synchronize, no host reads of device data), no
  // shape that depends on a replay, and no host-side state changes, because a recording backend
  // runs the host code ONCE (capturing its launches) while the default re-runs ops() at every
  // replay. Tensors ops() assigns to the caller's variables hold the latest replay's results until
  // the next replay. record() itself runs nothing.
  class Recording {
   public:
    virtual ~Recording() = default;
    virtual void replay() = 0;
  };
  virtual std::unique_ptr<Recording> record(std::function<void()> ops);
  // True when record() captures launches (ops() runs once); false when replay() re-runs ops().
  virtual bool records_launches() const { return false; }

  // ---- recurrent ----
  // One LSTM layer over a sequence: x[T, In] -> h[T, H]. h and c are the carried state, [H] f32
  // tensors on this device: null or undefined starts from zero; when non-null they receive the
  // state after the last step (new tensors), so a long sequence run in chunks, passing the same
  // h and c along, gives the one-shot result. T = 0 leaves a given state as it was.
  Tensor lstm(const Tensor& x, const LstmLayerWeights& w, Tensor* h = nullptr, Tensor* c = nullptr);

  // ---- MusicGen-melody's chroma (conditioning/chroma.h prepares the inputs) ----
  // Centred STFT frames of signal[n >= n_fft] (reflect-padded by n_fft/2), each windowed by
  // window[n_fft] and transformed, power |X / window_norm|^2, filters[n_chroma, n_fft/2 + 1] applied
  // (accumulated in double), each frame divided by max(its largest |value|, eps) -> f32
  // [1 + n / hop, n_chroma]. argmax (optional) receives the first maximum of each frame, i32 [frames].
  Tensor chroma(const Tensor& signal, const Tensor& window, float window_norm, const Tensor& filters, int hop,
                float eps, Tensor* argmax = nullptr);

 protected:
  // What a backend implements, called after the contract holds. `out` is the output shape the
  // contract computed. The ops without a host version are pure (every backend brings its own);
  // the others have host defaults (kernels/backend_fallbacks.cpp, kernels/backend_recording.cpp)
  // that a device backend replaces with kernels.
  virtual Tensor linear_impl(const Tensor& x, const Tensor& w, const Tensor* b, const Shape& out) = 0;
  virtual Tensor linear_fused_impl(const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse,
                                   const Shape& out);
  virtual Tensor matmul_impl(const Tensor& a, const Tensor& b, bool trans_b, float alpha, const Shape& out) = 0;
  virtual Tensor add_impl(const Tensor& a, const Tensor& b) = 0;
  virtual Tensor mul_impl(const Tensor& a, const Tensor& b) = 0;
  virtual Tensor scale_impl(const Tensor& a, float s) = 0;
  virtual Tensor elu_impl(const Tensor& x, float alpha) = 0;
  virtual Tensor gelu_impl(const Tensor& x) = 0;
  virtual Tensor relu_impl(const Tensor& x) = 0;
  virtual Tensor cast_impl(const Tensor& x, DType to) = 0;
  virtual Tensor layer_norm_impl(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps) = 0;
  virtual Tensor rms_norm_impl(const Tensor& x, const Tensor& gamma, float eps) = 0;
  virtual Tensor group_norm_impl(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps) = 0;
  virtual Tensor softmax_impl(const Tensor& x) = 0;
  virtual Tensor conv1d_impl(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                             const Conv1dFusion& fuse, const Shape& out) = 0;
  virtual Tensor conv_transpose1d_impl(const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                                       const ConvTranspose1dFusion& fuse, const Shape& out) = 0;
  virtual Tensor pad1d_impl(const Tensor& x, int left, int right, PadMode mode, float value, const Shape& out) = 0;
  virtual Tensor transpose_impl(const Tensor& x, const Shape& out) = 0;
  virtual Tensor embedding_impl(const Tensor& table, const Tensor& ids, const Shape& out) = 0;
  virtual Tensor embedding_sum_impl(const std::vector<const Tensor*>& tables, const Tensor& ids, const Shape& out) = 0;
  virtual Tensor narrow_last_impl(const Tensor& x, int64_t start, int64_t len, const Shape& out);
  virtual Tensor vq_nearest_impl(const Tensor& x, const Tensor& embed);
  virtual Tensor attention_impl(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                                bool causal);
  virtual void copy_rows_impl(Tensor& dst, int64_t row0, const Tensor& src);
  virtual Tensor attention_rows_impl(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads,
                                     float scale, bool causal);
  virtual void attention_rows_batch_impl(Tensor& out, const std::vector<AttentionRowsJob>& jobs, int heads,
                                         float scale, bool causal);
  virtual void write_kv_impl(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0);
  virtual Tensor sample_tokens_impl(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                                    const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided);
  virtual void upload_into_impl(Tensor& dst, const Tensor& host);
  virtual void write_kv_at_impl(Tensor& cache, const Tensor& pos, const Tensor& src, int64_t col0);
  virtual void write_kv_pair_at_impl(Tensor& k_cache, Tensor& v_cache, const Tensor& pos, const Tensor& src,
                                     int64_t col0);
  virtual Tensor attention_rows_at_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keys,
                                        int64_t max_keys, int heads, float scale, bool causal);
  virtual Tensor sample_tokens_at_impl(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                                       const Tensor& seeds, const Tensor& step, Tensor* guided);
  virtual void delay_pattern_step_at_impl(Tensor& pattern, const Tensor& tokens, const Tensor& column, Tensor& ids,
                                          Tensor& counters);
  virtual Tensor lstm_impl(const Tensor& x, const LstmLayerWeights& w, Tensor* h, Tensor* c) = 0;
  virtual Tensor chroma_impl(const Tensor& signal, const Tensor& window, float window_norm, const Tensor& filters,
                             int hop, float eps, Tensor* argmax, const Shape& out) = 0;
};

// The CPU backend (always built). threads <= 0: all hardware threads.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

// True when the library was built with CUDA, a device is present at run time, and a trivial probe
// kernel runs on it (the build has code for its architecture); cached per device. --device auto
// falls back to the CPU when it is false.
bool cuda_available();
// True when the library was built with CUDA and the runtime counts at least one device (no probe):
// --device auto then tries the device and says why when it cannot use it.
bool cuda_device_present();
// Throws mg::Error when the library was built without CUDA, no device is present, or the probe
// kernel fails (the message names the card, its compute capability and the build's architectures).
std::unique_ptr<Backend> make_cuda_backend(int device_index = 0);

}  // namespace mg
