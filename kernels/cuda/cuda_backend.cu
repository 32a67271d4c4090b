// The CUDA backend: one device, one stream, one cuBLAS handle. Every op's contract (dtype, device,
// shape) is checked by the public Backend method (kernels/op_checks.h), the same code as for the
// CPU backend; the *_impl here allocate the output and call a launcher from kernels/cuda/<op>.cu. Memory is stream-ordered
// (cudaMallocAsync / cudaFreeAsync), so a tensor may be dropped while kernels that read it are
// still queued: its free is queued behind them. Recordings (Backend::record) are CUDA graphs,
// captured with their own memory (kernels/cuda/cuda_graph.cu).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cuda/cuda_sequence_ops.h"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/probe.h"
#include "kernels/ops.h"

namespace mg {
namespace {

using cuda::DeviceState;
using cuda::cf;
using cuda::mf;

constexpr size_t kBlasWorkspaceBytes = size_t(32) << 20;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device_index) : st_(std::make_shared<DeviceState>()) {
    st_->device = device_index;
    CUDA_CHECK(cudaSetDevice(device_index));
    CUDA_CHECK(cudaStreamCreateWithFlags(&st_->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&st_->blas));
    CUBLAS_CHECK(cublasSetStream(st_->blas, st_->stream));
    // Plain f32 GEMMs (no TF32): the CPU backend and PyTorch's f32 reference are what we match.
    CUBLAS_CHECK(cublasSetMathMode(st_->blas, CUBLAS_DEFAULT_MATH));
    st_->bad_id_flag = static_cast<int*>(cuda::device_malloc(*st_, sizeof(int), "the device error flag"));
    CUDA_CHECK(cudaMemsetAsync(st_->bad_id_flag, 0, sizeof(int), st_->stream));
    CUDA_CHECK(cudaMallocHost(&st_->flag_host, sizeof(int)));
    // cuBLAS gets its workspace from us, so that it never allocates while a graph is captured.
    st_->blas_workspace = cuda::device_malloc(*st_, kBlasWorkspaceBytes, "cuBLAS's workspace");
    CUBLAS_CHECK(cublasSetWorkspace(st_->blas, st_->blas_workspace, kBlasWorkspaceBytes));
    const size_t counter_bytes = size_t(cuda::kAttentionCounters) * sizeof(unsigned);
    st_->attention_counters =
        static_cast<unsigned*>(cuda::device_malloc(*st_, counter_bytes, "the attention's counters"));
    CUDA_CHECK(cudaMemsetAsync(st_->attention_counters, 0, counter_bytes, st_->stream));
    // Keep freed blocks in the stream-ordered pool instead of returning them to the driver at
    // every synchronisation: model code allocates the same activation sizes step after step.
    // Allocations outside the pool give its cached blocks back when they fail (cuda::device_malloc).
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_index));
    uint64_t threshold = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  }

  // Pending checks hold their inputs, whose deleters hold the device state: let go of them.
  ~CudaBackend() override { st_->checks.clear(); }

  Device device() const override { return Device::CUDA; }
  const char* name() const override { return "cuda"; }

  // ---- memory ----
  Tensor alloc(DType t, const Shape& s) override {
    MG_CHECK(s.size() <= 4, "cuda alloc: tensors have at most 4 dims, asked for ", shape_str(s));
    for (int64_t d : s) MG_CHECK(d >= 0, "cuda alloc: negative dimension in shape ", shape_str(s));
    Tensor out;
    out.dtype = t;
    out.device = Device::CUDA;
    out.shape = s;
    activate();
    out.owner = cuda::device_alloc(st_, out.nbytes(), t, s);
    out.data = out.owner.get();
    return out;
  }

  Tensor upload(const Tensor& host) override {
    MG_CHECK(host.device == Device::CPU, "cuda backend upload: the tensor ", shape_str(host.shape), " is on ",
             device_name(host.device), ", not the host");
    Tensor out = alloc(host.dtype, host.shape);
    if (host.nbytes() > 0) {
      CUDA_CHECK(cudaMemcpyAsync(out.data, host.data, host.nbytes(), cudaMemcpyHostToDevice, st_->stream));
      // The host tensor may be freed or changed as soon as we return. From pageable memory (every
      // host tensor this library makes, memory-mapped weights included) the driver has copied the
      // data into its own staging memory before cudaMemcpyAsync returns (CUDA's documented
      // behaviour for pageable host-to-device copies), so there is nothing to wait for. From
      // page-locked memory the DMA runs later, straight from the host tensor: wait for it then.
      if (!is_pageable(host.data)) CUDA_CHECK(cudaStreamSynchronize(st_->stream));
    }
    return out;
  }

  Tensor download(const Tensor& dev) override {
    MG_CHECK(dev.device == Device::CUDA, "cuda backend download: the tensor ", shape_str(dev.shape), " is on ",
             device_name(dev.device), ", not this backend");
    Tensor out = Tensor::empty(dev.dtype, dev.shape);
    activate();
    if (dev.nbytes() > 0)
      CUDA_CHECK(cudaMemcpyAsync(out.data, dev.data, dev.nbytes(), cudaMemcpyDeviceToHost, st_->stream));
    cuda::synchronize_checked(*this, *st_);  // reports a bad id of an earlier lookup, if any
    return out;
  }

  void synchronize() override {
    activate();
    cuda::synchronize_checked(*this, *st_);
  }

  std::unique_ptr<Recording> record(std::function<void()> ops) override {
    activate();
    return cuda::record_graph(st_, std::move(ops));
  }
  bool records_launches() const override { return true; }

  // The ops: the public Backend methods checked the contract (kernels/op_checks.h) before these
  // run; what is left here are the limits of the kernels themselves.
 protected:
  // ---- dense algebra ----
  Tensor linear_impl(const Tensor& x, const Tensor& w, const Tensor* b, const Shape& out) override {
    return linear_fused_impl(x, w, b, {}, out);
  }

  Tensor linear_fused_impl(const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse,
                           const Shape& out) override {
    const int64_t N = w.dim(0), K = w.dim(1), M = x.rows();
    Tensor y = alloc(DType::F32, out);
    activate();
    cuda::linear(st_->blas, st_->stream, cf(x), w.data, w.dtype, b ? b->data : nullptr, b ? b->dtype : DType::F32,
                 mf(y), M, N, K, fuse.gelu, fuse.residual ? cf(*fuse.residual) : nullptr);
    return y;
  }

  Tensor matmul_impl(const Tensor& a, const Tensor& b, bool trans_b, float alpha, const Shape& out) override {
    const int64_t M = a.dim(-2), K = a.dim(-1), N = out.back();
    const bool shared_b = b.ndim() == 2;  // a weight, shared by every batch
    int64_t batch = 1;
    for (int i = 0; i < a.ndim() - 2; ++i) batch *= a.shape[i];
    Tensor c = alloc(DType::F32, out);
    activate();
    cuda::matmul(st_->blas, cf(a), M * K, cf(b), shared_b ? 0 : K * N, mf(c), batch, M, N, K, trans_b, alpha);
    return c;
  }

  // ---- elementwise ----
  Tensor add_impl(const Tensor& a, const Tensor& b) override { return binary(a, b, cuda::BinaryOp::Add); }
  Tensor mul_impl(const Tensor& a, const Tensor& b) override { return binary(a, b, cuda::BinaryOp::Mul); }
  Tensor scale_impl(const Tensor& a, float s) override { return unary(a, cuda::UnaryOp::Scale, s); }
  Tensor elu_impl(const Tensor& x, float alpha) override { return unary(x, cuda::UnaryOp::Elu, alpha); }
  Tensor gelu_impl(const Tensor& x) override { return unary(x, cuda::UnaryOp::Gelu, 0.0f); }
  Tensor relu_impl(const Tensor& x) override { return unary(x, cuda::UnaryOp::Relu, 0.0f); }

  Tensor cast_impl(const Tensor& x, DType to) override {
    Tensor y = alloc(to, x.shape);
    activate();
    // An overflowing i64 -> i32 value is reported at the next synchronisation point.
    const int tag = x.dtype == DType::I64 && to == DType::I32 ? cuda::add_check(*st_, {"cast i64 -> i32", {}, x, {}}) : 0;
    cuda::cast(st_->stream, x.data, x.dtype, y.data, to, x.numel(), tag ? st_->bad_id_flag : nullptr, tag);
    return y;
  }

  // ---- normalisation ----
  Tensor layer_norm_impl(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps) override {
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::layer_norm(st_->stream, cf(x), cf(gamma), beta ? cf(*beta) : nullptr, mf(y), x.rows(), x.cols(), eps);
    return y;
  }

  Tensor rms_norm_impl(const Tensor& x, const Tensor& gamma, float eps) override {
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::rms_norm(st_->stream, cf(x), cf(gamma), mf(y), x.rows(), x.cols(), eps);
    return y;
  }

  Tensor group_norm_impl(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps) override {
    const int64_t B = x.ndim() == 3 ? x.dim(0) : 1, C = x.dim(-2), T = x.dim(-1);
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::group_norm(st_->stream, cf(x), cf(gamma), cf(beta), mf(y), B, C, T, groups, eps);
    return y;
  }

  Tensor softmax_impl(const Tensor& x) override {
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::softmax(st_->stream, cf(x), mf(y), x.rows(), x.cols());
    return y;
  }

  // ---- convolutions and layout ----
  // Fused options run as the composition of this backend's own ops (pad1d, elu, add, narrow_last).
  Tensor conv1d_impl(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                     const Conv1dFusion& fuse, const Shape& out) override {
    if (!fuse.plain()) return conv1d_composed(*this, x, w, b, stride, dilation, fuse);
    const int64_t B = x.ndim() == 3 ? x.dim(0) : 1, Cin = x.dim(-2), T = x.dim(-1);
    const int64_t Cout = w.dim(0), K = w.dim(2), Tout = out.back();
    Tensor y = alloc(DType::F32, out);
    Tensor scratch = alloc(DType::F32, {cuda::conv1d_scratch_floats(Cin, K, stride, Tout)});
    activate();
    cuda::conv1d(st_->blas, st_->stream, cf(x), cf(w), b ? cf(*b) : nullptr, mf(y), mf(scratch), B, Cin, T, Cout,
                 K, stride, dilation, Tout);
    return y;
  }

  Tensor conv_transpose1d_impl(const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                               const ConvTranspose1dFusion& fuse, const Shape& out) override {
    if (!fuse.plain()) return conv_transpose1d_composed(*this, x, w, b, stride, fuse);
    const int64_t B = x.ndim() == 3 ? x.dim(0) : 1, Cin = x.dim(-2), T = x.dim(-1);
    const int64_t Cout = w.dim(1), K = w.dim(2), Tout = out.back();
    Tensor y = alloc(DType::F32, out);
    Tensor scratch = alloc(DType::F32, {cuda::conv_transpose1d_scratch_floats(Cout, K, T)});
    activate();
    cuda::conv_transpose1d(st_->blas, st_->stream, cf(x), cf(w), b ? cf(*b) : nullptr, mf(y), mf(scratch), B, Cin,
                           T, Cout, K, stride, Tout);
    return y;
  }

  Tensor pad1d_impl(const Tensor& x, int left, int right, PadMode mode, float value, const Shape& out) override {
    Tensor y = alloc(DType::F32, out);
    activate();
    cuda::pad1d(st_->stream, cf(x), mf(y), x.rows(), x.cols(), left, right, mode, value);
    return y;
  }

  Tensor transpose_impl(const Tensor& x, const Shape& out) override {
    const int64_t A = x.dim(-2), Bd = x.dim(-1);
    const int64_t batch = (A * Bd) == 0 ? 0 : x.numel() / (A * Bd);
    Tensor y = alloc(x.dtype, out);
    activate();
    cuda::transpose(st_->stream, x.data, y.data, batch, A, Bd, int(dtype_size(x.dtype)));
    return y;
  }

  Tensor narrow_last_impl(const Tensor& x, int64_t start, int64_t len, const Shape& out) override {
    Tensor y = alloc(x.dtype, out);
    activate();
    cuda::narrow_last(st_->stream, x.data, y.data, x.rows(), x.cols(), start, len, int(dtype_size(x.dtype)));
    return y;
  }

  // ---- embeddings and search ----
  Tensor embedding_impl(const Tensor& table, const Tensor& ids, const Shape& out) override {
    // ids of any shape (up to 3 dims): one table summed over, as [1, numel] ids.
    Tensor flat = ids;
    flat.shape = {1, ids.numel()};
    activate();
    Tensor y = cuda::embed(*this, *st_, {&table}, flat, "embedding");
    y.shape = out;
    return y;
  }

  Tensor embedding_sum_impl(const std::vector<const Tensor*>& tables, const Tensor& ids, const Shape&) override {
    activate();
    return cuda::embed(*this, *st_, tables, ids, "embedding_sum");
  }

  Tensor vq_nearest_impl(const Tensor& x, const Tensor& embed) override {
    const int64_t N = x.dim(0), V = embed.dim(0), D = x.dim(1);
    Tensor ids = alloc(DType::I64, {N});
    if (N == 0) return ids;
    Tensor scratch = alloc(DType::F32, {cuda::vq_nearest_scratch_floats(N, V)});
    activate();
    cuda::vq_nearest(st_->blas, st_->stream, cf(x), cf(embed), ids.ptr<int64_t>(), mf(scratch), N, V, D);
    return ids;
  }

  // ---- attention and the KV cache ----
  // One problem of the batched attention. k and v may hold different row counts here, so both are
  // cut to the T rows that are read.
  Tensor attention_impl(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                        bool causal) override {
    const Tensor q1 = q.reshape({1, q.dim(0), q.dim(1)});
    const Tensor k1 = k.slice0(0, T).reshape({1, T, k.dim(1)}), v1 = v.slice0(0, T).reshape({1, T, v.dim(1)});
    return cuda::attend_rows(*this, *st_, q1, k1, v1, T, nullptr, heads, scale, causal, "attention")
        .reshape({q.dim(0), k.dim(1)});
  }

  Tensor attention_rows_impl(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                             bool causal) override {
    return cuda::attend_rows(*this, *st_, q, k, v, T, nullptr, heads, scale, causal, "attention_rows");
  }

  void copy_rows_impl(Tensor& dst, int64_t row0, const Tensor& src) override {
    if (src.nbytes() == 0) return;
    const size_t row_bytes = dst.nbytes() / size_t(dst.dim(0));
    activate();
    // Stream-ordered like every kernel: later ops on dst see the rows, earlier readers finish first.
    CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst.data) + size_t(row0) * row_bytes, src.data, src.nbytes(),
                               cudaMemcpyDeviceToDevice, st_->stream));
  }

  void write_kv_impl(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0) override {
    activate();
    cuda::put_kv(*st_, cache, pos, nullptr, src, col0, "write_kv");
  }

  Tensor sample_tokens_impl(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                            const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided) override {
    return cuda::sample(*this, *st_, logits, cfg, guidance_scale, p, int(seeds.size()), seeds.data(), step, nullptr,
                        nullptr, guided, "sample_tokens");
  }

  // ---- the recorded decode step: the same kernels, their changing scalars read on the device ----
  void upload_into_impl(Tensor& dst, const Tensor& host) override {
    if (host.nbytes() == 0) return;
    activate();
    // Pageable host memory is staged before this returns; the contract (ops.h) also covers pinned memory.
    CUDA_CHECK(cudaMemcpyAsync(dst.data, host.data, host.nbytes(), cudaMemcpyHostToDevice, st_->stream));
  }

  void write_kv_at_impl(Tensor& cache, const Tensor& pos, const Tensor& src, int64_t col0) override {
    activate();
    cuda::put_kv(*st_, cache, 0, pos.ptr<int32_t>(), src, col0, "write_kv_at");
  }

  void write_kv_pair_at_impl(Tensor& k_cache, Tensor& v_cache, const Tensor& pos, const Tensor& src,
                             int64_t col0) override {
    activate();
    cuda::put_kv(*st_, k_cache, 0, pos.ptr<int32_t>(), src, col0, "write_kv_pair_at", &v_cache);
  }

  Tensor attention_rows_at_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keys,
                                int64_t max_keys, int heads, float scale, bool causal) override {
    return cuda::attend_rows(*this, *st_, q, k, v, max_keys, keys.ptr<int32_t>(), heads, scale, causal,
                             "attention_rows_at");
  }

  Tensor sample_tokens_at_impl(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                               const Tensor& seeds, const Tensor& step, Tensor* guided) override {
    return cuda::sample(*this, *st_, logits, cfg, guidance_scale, p, int(seeds.numel()), nullptr, 0,
                        static_cast<const uint64_t*>(seeds.data), step.ptr<int32_t>(), guided, "sample_tokens_at");
  }

  void delay_pattern_step_at_impl(Tensor& pattern, const Tensor& tokens, const Tensor& column, Tensor& ids,
                                  Tensor& counters) override {
    activate();
    cuda::delay_pattern_step(st_->stream, pattern.ptr<int32_t>(), tokens.ptr<int32_t>(), column.ptr<int32_t>(),
                             ids.ptr<int32_t>(), counters.ptr<int32_t>(), int(pattern.dim(0)), int(pattern.dim(1)),
                             pattern.dim(2), int(ids.dim(1)), int(counters.numel()));
  }

  // ---- recurrent and chroma ----
  Tensor lstm_impl(const Tensor& x, const LstmLayerWeights& w, Tensor* h_state, Tensor* c_state) override {
    activate();
    return cuda::lstm(*this, *st_, x, w, h_state, c_state);
  }

  Tensor chroma_impl(const Tensor& signal, const Tensor& window, float window_norm, const Tensor& filters, int hop,
                     float eps, Tensor* argmax, const Shape& out) override {
    const int64_t frames = out[0], n_fft = window.numel();
    const int n_chroma = int(out[1]);
    Tensor features = alloc(DType::F32, out);
    Tensor idx = alloc(DType::I32, {frames});
    activate();
    cuda::chroma(*st_, cf(signal), signal.numel(), cf(window), window_norm, cf(filters), int(n_fft), hop, n_chroma,
                 eps, mf(features), idx.ptr<int32_t>(), frames);
    if (argmax) *argmax = idx;
    return features;
  }

 private:
  void activate() { CUDA_CHECK(cudaSetDevice(st_->device)); }

  // False for page-locked (or managed) host memory, whose copies run after the call returns.
  static bool is_pageable(const void* p) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      cudaGetLastError();
      return false;  // unknown: treated as page-locked (a wait, never a race)
    }
    return a.type == cudaMemoryTypeUnregistered;
  }

  Tensor binary(const Tensor& a, const Tensor& b, cuda::BinaryOp op) {
    Tensor y = alloc(DType::F32, a.shape);
    activate();
    cuda::binary(st_->stream, op, cf(a), cf(b), mf(y), a.numel(), b.numel());
    return y;
  }

  Tensor unary(const Tensor& x, cuda::UnaryOp op, float p) {
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::unary(st_->stream, op, cf(x), mf(y), x.numel(), p);
    return y;
  }
  std::shared_ptr<DeviceState> st_;
};

}  // namespace

// A device is there AND this build's kernels run on it (kernels/cuda/probe.cu): a card the build
// has no kernels for is "not available", so that --device auto falls back to the CPU.
bool cuda_available() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // no driver / no device: clear the sticky error, report "absent"
    return false;
  }
  return n > 0 && cuda::probe_device(0) == cudaSuccess;
}

bool cuda_device_present() {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess;
  cudaGetLastError();
  return ok && n > 0;
}

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw Error(strcat("CUDA backend requested, but no CUDA device is usable: ", cudaGetErrorString(err)));
  }
  MG_CHECK(device_index >= 0 && device_index < n, "CUDA backend: device ", device_index, " requested, ", n,
           " device(s) present");
  const cudaError_t probe = cuda::probe_device(device_index);
  if (probe != cudaSuccess) throw Error(cuda::probe_failure_message(device_index, probe));
  return std::make_unique<CudaBackend>(device_index);
}

}  // namespace mg
