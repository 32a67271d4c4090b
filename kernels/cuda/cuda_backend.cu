// The CUDA backend: one device, one stream, one cuBLAS handle. Every op validates its tensors
// against the contract of kernels/ops.h (the same checks as the CPU backend: dtype, device,
// shape) and then calls a launcher from kernels/cuda/<op>.cu. Memory is stream-ordered
// (cudaMallocAsync / cudaFreeAsync), so a tensor may be dropped while kernels that read it are
// still queued: its free is queued behind them. Recordings (Backend::record) are CUDA graphs,
// captured with their own memory (kernels/cuda/cuda_graph.cu).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cuda/cuda_checks.h"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/ops.h"

namespace mg {
namespace {

using cuda::DeviceState;
using cuda::cf;
using cuda::check_cuda;
using cuda::check_f32;
using cuda::check_vec;
using cuda::is_float;
using cuda::is_int;
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
    CUDA_CHECK(cudaMalloc(&st_->bad_id_flag, sizeof(int)));
    // cuBLAS gets its workspace from us, so that it never allocates while a graph is captured.
    CUDA_CHECK(cudaMalloc(&st_->blas_workspace, kBlasWorkspaceBytes));
    CUBLAS_CHECK(cublasSetWorkspace(st_->blas, st_->blas_workspace, kBlasWorkspaceBytes));
    const size_t counter_bytes = size_t(cuda::kAttentionCounters) * sizeof(unsigned);
    CUDA_CHECK(cudaMalloc(&st_->attention_counters, counter_bytes));
    CUDA_CHECK(cudaMemsetAsync(st_->attention_counters, 0, counter_bytes, st_->stream));
    // Keep freed blocks in the stream-ordered pool instead of returning them to the driver at
    // every synchronisation: model code allocates the same activation sizes step after step.
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_index));
    uint64_t threshold = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  }

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
      // The host tensor may be freed as soon as we return (and pinned memory copies truly async).
      CUDA_CHECK(cudaStreamSynchronize(st_->stream));
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
    CUDA_CHECK(cudaStreamSynchronize(st_->stream));
    return out;
  }

  void synchronize() override {
    activate();
    CUDA_CHECK(cudaStreamSynchronize(st_->stream));
  }

  // ---- dense algebra ----
  Tensor linear(const Tensor& x, const Tensor& w, const Tensor* b) override { return linear_fused(x, w, b, {}); }

  Tensor linear_fused(const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse) override {
    check_f32(x, "linear", "x");
    check_cuda(w, "linear", "w");
    MG_CHECK(is_float(w.dtype), "cuda linear: w must be f32/f16/bf16, got ", dtype_name(w.dtype));
    MG_CHECK(x.ndim() >= 1 && w.ndim() == 2 && w.dim(1) == x.cols(), "cuda linear: x ", shape_str(x.shape),
             " does not match w ", shape_str(w.shape), " (expected x[..., K], w[N, K])");
    const int64_t N = w.dim(0), K = w.dim(1), M = x.rows();
    if (b) check_vec(*b, N, "linear", "b");
    Shape os = x.shape;
    os.back() = N;
    if (fuse.residual) {
      check_f32(*fuse.residual, "linear", "residual");
      MG_CHECK(fuse.residual->numel() == M * N, "cuda linear: residual ", shape_str(fuse.residual->shape),
               " does not match the output ", shape_str(os));
    }
    Tensor y = alloc(DType::F32, os);
    activate();
    cuda::linear(st_->blas, st_->stream, cf(x), w.data, w.dtype, b ? b->data : nullptr, b ? b->dtype : DType::F32,
                 mf(y), M, N, K, fuse.gelu, fuse.residual ? cf(*fuse.residual) : nullptr);
    return y;
  }

  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_b, float alpha) override {
    check_f32(a, "matmul", "a");
    check_f32(b, "matmul", "b");
    MG_CHECK(a.ndim() >= 2 && b.ndim() >= 2, "cuda matmul: a ", shape_str(a.shape), " and b ", shape_str(b.shape),
             " must have at least 2 dims");
    const int64_t M = a.dim(-2), K = a.dim(-1);
    const int64_t N = trans_b ? b.dim(-2) : b.dim(-1);
    const int64_t Kb = trans_b ? b.dim(-1) : b.dim(-2);
    MG_CHECK(K == Kb, "cuda matmul: a ", shape_str(a.shape), " and b ", shape_str(b.shape),
             trans_b ? " (transposed)" : "", " disagree on the inner dim");
    // Leading (batch) dims must match, except that a 2-D b (a weight) is shared by every batch.
    const bool shared_b = b.ndim() == 2;
    MG_CHECK(shared_b || (a.ndim() == b.ndim() && std::equal(a.shape.begin(), a.shape.end() - 2, b.shape.begin())),
             "cuda matmul: batch dims of a ", shape_str(a.shape), " and b ", shape_str(b.shape), " do not match");
    int64_t batch = 1;
    for (int i = 0; i < a.ndim() - 2; ++i) batch *= a.shape[i];
    Shape os = a.shape;
    os.back() = N;
    Tensor c = alloc(DType::F32, os);
    activate();
    cuda::matmul(st_->blas, cf(a), M * K, cf(b), shared_b ? 0 : K * N, mf(c), batch, M, N, K, trans_b, alpha);
    return c;
  }

  // ---- elementwise ----
  Tensor add(const Tensor& a, const Tensor& b) override { return binary(a, b, cuda::BinaryOp::Add, "add"); }
  Tensor mul(const Tensor& a, const Tensor& b) override { return binary(a, b, cuda::BinaryOp::Mul, "mul"); }
  Tensor scale(const Tensor& a, float s) override { return unary(a, cuda::UnaryOp::Scale, s, "scale"); }
  Tensor elu(const Tensor& x, float alpha) override { return unary(x, cuda::UnaryOp::Elu, alpha, "elu"); }
  Tensor gelu(const Tensor& x) override { return unary(x, cuda::UnaryOp::Gelu, 0.0f, "gelu"); }
  Tensor relu(const Tensor& x) override { return unary(x, cuda::UnaryOp::Relu, 0.0f, "relu"); }

  Tensor cast(const Tensor& x, DType to) override {
    check_cuda(x, "cast", "x");
    MG_CHECK(x.dtype == to || (is_float(x.dtype) && is_float(to)) || (is_int(x.dtype) && is_int(to)),
             "cuda cast: cannot cast ", dtype_name(x.dtype), " to ", dtype_name(to),
             " (float <-> float or i32 <-> i64 only)");
    Tensor y = alloc(to, x.shape);
    activate();
    const bool narrowing = x.dtype == DType::I64 && to == DType::I32;
    if (narrowing) CUDA_CHECK(cudaMemsetAsync(st_->bad_id_flag, 0, sizeof(int), st_->stream));
    cuda::cast(st_->stream, x.data, x.dtype, y.data, to, x.numel(), st_->bad_id_flag);
    if (narrowing && cuda::read_flag(*st_))
      throw Error(strcat("cuda cast i64 -> i32: a value of ", shape_str(x.shape), " does not fit in i32"));
    return y;
  }

  // ---- normalisation ----
  Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps) override {
    check_f32(x, "layer_norm", "x");
    MG_CHECK(x.ndim() >= 1, "cuda layer_norm: x must have at least 1 dim");
    const int64_t D = x.cols();
    check_vec(gamma, D, "layer_norm", "gamma");
    if (beta) check_vec(*beta, D, "layer_norm", "beta");
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::layer_norm(st_->stream, cf(x), cf(gamma), beta ? cf(*beta) : nullptr, mf(y), x.rows(), D, eps);
    return y;
  }

  Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps) override {
    check_f32(x, "rms_norm", "x");
    MG_CHECK(x.ndim() >= 1, "cuda rms_norm: x must have at least 1 dim");
    const int64_t D = x.cols();
    check_vec(gamma, D, "rms_norm", "gamma");
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::rms_norm(st_->stream, cf(x), cf(gamma), mf(y), x.rows(), D, eps);
    return y;
  }

  Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps) override {
    check_f32(x, "group_norm", "x");
    MG_CHECK(x.ndim() == 2 || x.ndim() == 3, "cuda group_norm: x ", shape_str(x.shape),
             " must be [B, C, T] (or [C, T])");
    const int64_t B = x.ndim() == 3 ? x.dim(0) : 1, C = x.dim(-2), T = x.dim(-1);
    MG_CHECK(groups >= 1 && C % groups == 0, "cuda group_norm: ", C, " channels of x ", shape_str(x.shape),
             " do not split into ", groups, " groups");
    check_vec(gamma, C, "group_norm", "gamma");
    check_vec(beta, C, "group_norm", "beta");
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::group_norm(st_->stream, cf(x), cf(gamma), cf(beta), mf(y), B, C, T, groups, eps);
    return y;
  }

  Tensor softmax(const Tensor& x) override {
    check_f32(x, "softmax", "x");
    MG_CHECK(x.ndim() >= 1, "cuda softmax: x must have at least 1 dim");
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::softmax(st_->stream, cf(x), mf(y), x.rows(), x.cols());
    return y;
  }

  // ---- convolutions and layout ----
  // Fused options run as the composition of this backend's own ops (pad1d, elu, add, narrow_last).
  Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                const Conv1dFusion& fuse) override {
    if (!fuse.plain()) return conv1d_composed(*this, x, w, b, stride, dilation, fuse);
    check_f32(x, "conv1d", "x");
    check_f32(w, "conv1d", "w");
    MG_CHECK(x.ndim() == 2 || x.ndim() == 3, "cuda conv1d: x ", shape_str(x.shape), " must be [B, C, T] or [C, T]");
    MG_CHECK(w.ndim() == 3 && w.dim(1) == x.dim(-2), "cuda conv1d: w ", shape_str(w.shape),
             " must be [Cout, Cin, K] with Cin = ", x.dim(-2), " (x ", shape_str(x.shape), ")");
    MG_CHECK(stride >= 1 && dilation >= 1, "cuda conv1d: stride ", stride, " and dilation ", dilation,
             " must be >= 1");
    const int64_t B = x.ndim() == 3 ? x.dim(0) : 1, Cin = x.dim(-2), T = x.dim(-1);
    const int64_t Cout = w.dim(0), K = w.dim(2);
    MG_CHECK(K >= 1, "cuda conv1d: kernel size of w ", shape_str(w.shape), " is 0");
    const int64_t span = int64_t(dilation) * (K - 1) + 1;
    MG_CHECK(T >= span, "cuda conv1d: input length ", T, " of x ", shape_str(x.shape),
             " is shorter than the kernel's span ", span, " (pad first)");
    const int64_t Tout = (T - span) / stride + 1;
    if (b) check_vec(*b, Cout, "conv1d", "b");
    Shape os = x.shape;
    os[os.size() - 2] = Cout;
    os.back() = Tout;
    Tensor y = alloc(DType::F32, os);
    Tensor scratch = alloc(DType::F32, {cuda::conv1d_scratch_floats(Cin, K, stride, Tout)});
    activate();
    cuda::conv1d(st_->blas, st_->stream, cf(x), cf(w), b ? cf(*b) : nullptr, mf(y), mf(scratch), B, Cin, T, Cout,
                 K, stride, dilation, Tout);
    return y;
  }

  Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                          const ConvTranspose1dFusion& fuse) override {
    if (!fuse.plain()) return conv_transpose1d_composed(*this, x, w, b, stride, fuse);
    check_f32(x, "conv_transpose1d", "x");
    check_f32(w, "conv_transpose1d", "w");
    MG_CHECK(x.ndim() == 2 || x.ndim() == 3, "cuda conv_transpose1d: x ", shape_str(x.shape),
             " must be [B, C, T] or [C, T]");
    MG_CHECK(w.ndim() == 3 && w.dim(0) == x.dim(-2), "cuda conv_transpose1d: w ", shape_str(w.shape),
             " must be [Cin, Cout, K] with Cin = ", x.dim(-2), " (x ", shape_str(x.shape), ")");
    MG_CHECK(stride >= 1, "cuda conv_transpose1d: stride ", stride, " must be >= 1");
    const int64_t B = x.ndim() == 3 ? x.dim(0) : 1, Cin = x.dim(-2), T = x.dim(-1);
    const int64_t Cout = w.dim(1), K = w.dim(2);
    MG_CHECK(K >= 1 && T >= 1, "cuda conv_transpose1d: empty kernel or input (x ", shape_str(x.shape), ", w ",
             shape_str(w.shape), ")");
    const int64_t Tout = (T - 1) * stride + K;
    if (b) check_vec(*b, Cout, "conv_transpose1d", "b");
    Shape os = x.shape;
    os[os.size() - 2] = Cout;
    os.back() = Tout;
    Tensor y = alloc(DType::F32, os);
    Tensor scratch = alloc(DType::F32, {cuda::conv_transpose1d_scratch_floats(Cout, K, T)});
    activate();
    cuda::conv_transpose1d(st_->blas, st_->stream, cf(x), cf(w), b ? cf(*b) : nullptr, mf(y), mf(scratch), B, Cin,
                           T, Cout, K, stride, Tout);
    return y;
  }

  Tensor pad1d(const Tensor& x, int left, int right, PadMode mode, float value) override {
    check_f32(x, "pad1d", "x");
    MG_CHECK(x.ndim() >= 1, "cuda pad1d: x must have at least 1 dim");
    MG_CHECK(left >= 0 && right >= 0, "cuda pad1d: negative padding (", left, ", ", right, ")");
    const int64_t T = x.cols();
    if (mode == PadMode::Reflect)
      MG_CHECK(left < T && right < T, "cuda pad1d: reflect padding (", left, ", ", right,
               ") must be smaller than the input length ", T, " of x ", shape_str(x.shape));
    if (mode == PadMode::Replicate && (left > 0 || right > 0))
      MG_CHECK(T >= 1, "cuda pad1d: replicate padding of an empty dim (x ", shape_str(x.shape), ")");
    Shape os = x.shape;
    os.back() = T + left + right;
    Tensor y = alloc(DType::F32, os);
    const cuda::PadKind kind = mode == PadMode::Constant  ? cuda::PadKind::Constant
                               : mode == PadMode::Reflect ? cuda::PadKind::Reflect
                                                          : cuda::PadKind::Replicate;
    activate();
    cuda::pad1d(st_->stream, cf(x), mf(y), x.rows(), T, left, right, kind, value);
    return y;
  }

  Tensor transpose(const Tensor& x) override {
    check_cuda(x, "transpose", "x");
    MG_CHECK(x.ndim() >= 2, "cuda transpose: x ", shape_str(x.shape), " needs at least 2 dims");
    const int64_t A = x.dim(-2), Bd = x.dim(-1);
    const int64_t batch = (A * Bd) == 0 ? 0 : x.numel() / (A * Bd);
    Shape os = x.shape;
    std::swap(os[os.size() - 2], os[os.size() - 1]);
    Tensor y = alloc(x.dtype, os);
    activate();
    cuda::transpose(st_->stream, x.data, y.data, batch, A, Bd, int(dtype_size(x.dtype)));
    return y;
  }

  // ---- embeddings ----
  Tensor embedding(const Tensor& table, const Tensor& ids) override {
    // ids of any shape (up to 3 dims) -> ids.shape + [D], as the CPU backend.
    check_cuda(ids, "embedding", "ids");
    MG_CHECK(ids.ndim() <= 3, "cuda embedding: ids ", shape_str(ids.shape), " has more than 3 dims");
    Tensor flat = ids;
    flat.shape = {1, ids.numel()};
    activate();
    Tensor y = cuda::embed(*this, *st_, {&table}, flat, "embedding");
    Shape os = ids.shape;
    os.push_back(table.ndim() == 2 ? table.dim(1) : 0);
    y.shape = os;
    return y;
  }

  Tensor embedding_sum(const std::vector<const Tensor*>& tables, const Tensor& ids) override {
    activate();
    return cuda::embed(*this, *st_, tables, ids, "embedding_sum");
  }

  // ---- slicing, search, attention: device versions of kernels/backend_fallbacks.cpp's host
  //      defaults (same checks, same results up to float rounding) ----
  Tensor narrow_last(const Tensor& x, int64_t start, int64_t len) override {
    check_cuda(x, "narrow_last", "x");
    MG_CHECK(x.ndim() >= 1 && start >= 0 && len >= 0 && start + len <= x.cols(), "cuda narrow_last(", start, ", ",
             len, ") out of range for shape ", shape_str(x.shape));
    Shape os = x.shape;
    os.back() = len;
    Tensor y = alloc(x.dtype, os);
    activate();
    cuda::narrow_last(st_->stream, x.data, y.data, x.rows(), x.cols(), start, len, int(dtype_size(x.dtype)));
    return y;
  }

  Tensor vq_nearest(const Tensor& x, const Tensor& embed) override {
    check_f32(x, "vq_nearest", "x");
    check_f32(embed, "vq_nearest", "embed");
    MG_CHECK(x.ndim() == 2 && embed.ndim() == 2 && x.dim(1) == embed.dim(1) && embed.dim(0) >= 1,
             "cuda vq_nearest: expected x[N, D] and embed[V >= 1, D], got ", shape_str(x.shape), " and ",
             shape_str(embed.shape));
    const int64_t N = x.dim(0), V = embed.dim(0), D = x.dim(1);
    Tensor ids = alloc(DType::I64, {N});
    if (N == 0) return ids;
    Tensor scratch = alloc(DType::F32, {cuda::vq_nearest_scratch_floats(N, V)});
    activate();
    cuda::vq_nearest(st_->blas, st_->stream, cf(x), cf(embed), ids.ptr<int64_t>(), mf(scratch), N, V, D);
    return ids;
  }

  // One problem of the batched attention (cuda::attend_rows: the same checks and launch). k and v
  // may hold different row counts here, so both are cut to the T rows that are read.
  Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                   bool causal) override {
    check_f32(k, "attention", "k");
    check_f32(v, "attention", "v");
    MG_CHECK(q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2, "cuda attention: expected q[S, >= H*dh], k/v[T, H*dh], ",
             "got ", shape_str(q.shape), ", ", shape_str(k.shape), ", ", shape_str(v.shape));
    MG_CHECK(T <= k.dim(0) && T <= v.dim(0) && T >= 1, "cuda attention: T = ", T, " keys but k/v hold ", k.dim(0),
             "/", v.dim(0));
    const Tensor q1 = q.reshape({1, q.dim(0), q.dim(1)});
    const Tensor k1 = k.slice0(0, T).reshape({1, T, k.dim(1)}), v1 = v.slice0(0, T).reshape({1, T, v.dim(1)});
    return cuda::attend_rows(*this, *st_, q1, k1, v1, T, nullptr, heads, scale, causal, "attention")
        .reshape({q.dim(0), k.dim(1)});
  }

  Tensor attention_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                        bool causal) override {
    return cuda::attend_rows(*this, *st_, q, k, v, T, nullptr, heads, scale, causal, "attention_rows");
  }

  void write_kv(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0) override {
    activate();
    cuda::put_kv(*st_, cache, pos, nullptr, src, col0, "write_kv");
  }

  Tensor sample_tokens(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                       const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided) override {
    return cuda::sample(*this, *st_, logits, cfg, guidance_scale, p, int(seeds.size()), seeds.data(), step, nullptr,
                        nullptr, guided, "sample_tokens");
  }

  // ---- the recorded decode step: the same kernels, their changing scalars read on the device ----
  void upload_into(Tensor& dst, const Tensor& host) override {
    MG_CHECK(host.device == Device::CPU, "cuda upload_into: the source ", shape_str(host.shape), " is on the ",
             device_name(host.device), ", not the host");
    check_cuda(dst, "upload_into", "dst");
    MG_CHECK(dst.dtype == host.dtype && dst.numel() == host.numel(), "cuda upload_into: cannot copy ",
             dtype_name(host.dtype), " ", shape_str(host.shape), " into ", dtype_name(dst.dtype), " ",
             shape_str(dst.shape));
    if (host.nbytes() == 0) return;
    activate();
    // Pageable host memory is staged before this returns; the contract (ops.h) also covers pinned memory.
    CUDA_CHECK(cudaMemcpyAsync(dst.data, host.data, host.nbytes(), cudaMemcpyHostToDevice, st_->stream));
  }

  void write_kv_at(Tensor& cache, const Tensor& pos, const Tensor& src, int64_t col0) override {
    cuda::check_scalar(pos, "write_kv_at", "pos");
    activate();
    cuda::put_kv(*st_, cache, 0, pos.ptr<int32_t>(), src, col0, "write_kv_at");
  }

  void write_kv_pair_at(Tensor& k_cache, Tensor& v_cache, const Tensor& pos, const Tensor& src, int64_t col0) override {
    cuda::check_scalar(pos, "write_kv_pair_at", "pos");
    activate();
    cuda::put_kv(*st_, k_cache, 0, pos.ptr<int32_t>(), src, col0, "write_kv_pair_at", &v_cache);
  }

  Tensor attention_rows_at(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keys, int64_t max_keys,
                           int heads, float scale, bool causal) override {
    cuda::check_scalar(keys, "attention_rows_at", "keys");
    return cuda::attend_rows(*this, *st_, q, k, v, max_keys, keys.ptr<int32_t>(), heads, scale, causal,
                             "attention_rows_at");
  }

  Tensor sample_tokens_at(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                          const Tensor& seeds, const Tensor& step, Tensor* guided) override {
    check_cuda(seeds, "sample_tokens_at", "seeds");
    MG_CHECK(seeds.dtype == DType::I64 && seeds.ndim() == 1, "cuda sample_tokens_at: seeds must be i64 [B], got ",
             dtype_name(seeds.dtype), " ", shape_str(seeds.shape));
    cuda::check_scalar(step, "sample_tokens_at", "step");
    return cuda::sample(*this, *st_, logits, cfg, guidance_scale, p, int(seeds.numel()), nullptr, 0,
                        static_cast<const uint64_t*>(seeds.data), step.ptr<int32_t>(), guided, "sample_tokens_at");
  }

  void delay_pattern_step_at(Tensor& pattern, const Tensor& tokens, const Tensor& column, Tensor& ids,
                             Tensor& counters) override {
    for (const Tensor* t : std::initializer_list<const Tensor*>{&pattern, &tokens, &ids, &counters}) {
      check_cuda(*t, "delay_pattern_step_at", "a tensor");
      MG_CHECK(t->dtype == DType::I32, "cuda delay_pattern_step_at: tensors must be i32, got ", dtype_name(t->dtype));
    }
    cuda::check_scalar(column, "delay_pattern_step_at", "column");
    MG_CHECK(pattern.ndim() == 3 && tokens.ndim() == 2 && tokens.dim(0) == pattern.dim(0) &&
                 tokens.dim(1) == pattern.dim(1) && ids.ndim() == 2 && ids.dim(0) == pattern.dim(1) &&
                 ids.dim(1) % pattern.dim(0) == 0,
             "cuda delay_pattern_step_at: expected pattern[B, K, C], tokens[B, K], ids[K, R = B or 2B]; got ",
             shape_str(pattern.shape), ", ", shape_str(tokens.shape), ", ", shape_str(ids.shape));
    activate();
    cuda::delay_pattern_step(st_->stream, pattern.ptr<int32_t>(), tokens.ptr<int32_t>(), column.ptr<int32_t>(),
                             ids.ptr<int32_t>(), counters.ptr<int32_t>(), int(pattern.dim(0)), int(pattern.dim(1)),
                             pattern.dim(2), int(ids.dim(1)), int(counters.numel()));
  }

  std::unique_ptr<Recording> record(std::function<void()> ops) override {
    activate();
    return cuda::record_graph(st_, std::move(ops));
  }
  bool records_launches() const override { return true; }

  void copy_rows(Tensor& dst, int64_t row0, const Tensor& src) override {
    check_cuda(dst, "copy_rows", "dst");
    check_cuda(src, "copy_rows", "src");
    MG_CHECK(dst.dtype == src.dtype && dst.ndim() >= 1 && src.ndim() >= 1 && row0 >= 0 &&
                 row0 + src.dim(0) <= dst.dim(0) &&
                 src.numel() == src.dim(0) * (dst.numel() / std::max<int64_t>(1, dst.dim(0))),
             "cuda copy_rows: cannot put ", dtype_name(src.dtype), " ", shape_str(src.shape), " at row ", row0, " of ",
             dtype_name(dst.dtype), " ", shape_str(dst.shape));
    if (src.nbytes() == 0) return;
    const size_t row_bytes = dst.nbytes() / size_t(dst.dim(0));
    activate();
    // Stream-ordered like every kernel: later ops on dst see the rows, earlier readers finish first.
    CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst.data) + size_t(row0) * row_bytes, src.data, src.nbytes(),
                               cudaMemcpyDeviceToDevice, st_->stream));
  }

  // ---- recurrent ----
  Tensor lstm(const Tensor& x, const LstmLayerWeights& w, Tensor* h_state, Tensor* c_state) override {
    activate();
    return cuda::lstm(*this, *st_, x, w, h_state, c_state);
  }

 private:
  void activate() { CUDA_CHECK(cudaSetDevice(st_->device)); }

  Tensor binary(const Tensor& a, const Tensor& b, cuda::BinaryOp op, const char* name) {
    check_f32(a, name, "a");
    check_f32(b, name, "b");
    Shape bs = b.shape;
    while (!bs.empty() && bs.front() == 1) bs.erase(bs.begin());  // leading 1s do not change the layout
    const bool suffix = bs.size() <= a.shape.size() && std::equal(bs.begin(), bs.end(), a.shape.end() - bs.size());
    MG_CHECK(suffix, "cuda ", name, ": shape of b ", shape_str(b.shape), " is neither a's shape ",
             shape_str(a.shape), " nor a suffix of it");
    Tensor y = alloc(DType::F32, a.shape);
    activate();
    cuda::binary(st_->stream, op, cf(a), cf(b), mf(y), a.numel(), b.numel());
    return y;
  }

  Tensor unary(const Tensor& x, cuda::UnaryOp op, float p, const char* name) {
    check_f32(x, name, "x");
    Tensor y = alloc(DType::F32, x.shape);
    activate();
    cuda::unary(st_->stream, op, cf(x), mf(y), x.numel(), p);
    return y;
  }

  std::shared_ptr<DeviceState> st_;
};

}  // namespace

bool cuda_available() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // no driver / no device: clear the sticky error, report "absent"
    return false;
  }
  return n > 0;
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
  return std::make_unique<CudaBackend>(device_index);
}

}  // namespace mg
