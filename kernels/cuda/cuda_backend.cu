// The CUDA backend: one device, one stream, one cuBLAS handle. Every op validates its tensors
// against the contract of kernels/ops.h (the same checks as the CPU backend: dtype, device,
// shape) and then calls a launcher from kernels/cuda/<op>.cu. Memory is stream-ordered
// (cudaMallocAsync / cudaFreeAsync), so a tensor may be dropped while kernels that read it are
// still queued: its free is queued behind them.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/ops.h"

namespace mg {
namespace {

// What a device tensor's deleter needs: shared by the backend and every tensor it allocated, so
// that the stream outlives the last tensor even when the backend object is destroyed first.
struct DeviceState {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  int* bad_id_flag = nullptr;  // device int: set on an out-of-range embedding id or i64 -> i32 overflow

  ~DeviceState() {
    // Destructors must not throw: errors here (e.g. the runtime already unloaded at exit) are ignored.
    cudaSetDevice(device);
    if (stream) cudaStreamSynchronize(stream);
    if (bad_id_flag) cudaFree(bad_id_flag);
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }
};

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
bool is_int(DType t) { return t == DType::I32 || t == DType::I64; }

void check_cuda(const Tensor& t, const char* op, const char* what) {
  MG_CHECK(t.defined() || t.numel() == 0, "cuda ", op, ": ", what, " is undefined");
  MG_CHECK(t.device == Device::CUDA, "cuda ", op, ": ", what, " is on the ", device_name(t.device),
           ", expected a cuda tensor (upload it first)");
}

void check_f32(const Tensor& t, const char* op, const char* what) {
  check_cuda(t, op, what);
  MG_CHECK(t.dtype == DType::F32, "cuda ", op, ": ", what, " must be f32, got ", dtype_name(t.dtype), " ",
           shape_str(t.shape));
}

// gamma / beta / bias style vectors: 1-D of n values.
void check_vec(const Tensor& t, int64_t n, const char* op, const char* what, bool any_float = false) {
  if (any_float) {
    check_cuda(t, op, what);
    MG_CHECK(is_float(t.dtype), "cuda ", op, ": ", what, " must be f32/f16/bf16, got ", dtype_name(t.dtype));
  } else {
    check_f32(t, op, what);
  }
  MG_CHECK(t.ndim() == 1 && t.dim(0) == n, "cuda ", op, ": ", what, " has shape ", shape_str(t.shape),
           ", expected [", n, "]");
}

const float* cf(const Tensor& t) { return static_cast<const float*>(t.data); }
float* mf(Tensor& t) { return static_cast<float*>(t.data); }

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
    activate();
    Tensor out;
    out.dtype = t;
    out.device = Device::CUDA;
    out.shape = s;
    // At least one 256-byte block, so that an empty tensor is still "defined".
    const size_t bytes = std::max<size_t>(out.nbytes(), 256);
    void* p = nullptr;
    cudaError_t err = cudaMallocAsync(&p, bytes, st_->stream);
    MG_CHECK(err == cudaSuccess, "cuda alloc: cannot allocate ", bytes, " bytes for ", dtype_name(t), " ",
             shape_str(s), " on device ", st_->device, ": ", cudaGetErrorString(err));
    std::shared_ptr<DeviceState> st = st_;
    out.owner = std::shared_ptr<void>(p, [st](void* q) {
      cudaSetDevice(st->device);
      cudaFreeAsync(q, st->stream);  // no throw from a deleter; a failure here only leaks
    });
    out.data = p;
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
  Tensor linear(const Tensor& x, const Tensor& w, const Tensor* b) override {
    check_f32(x, "linear", "x");
    check_cuda(w, "linear", "w");
    MG_CHECK(is_float(w.dtype), "cuda linear: w must be f32/f16/bf16, got ", dtype_name(w.dtype));
    MG_CHECK(x.ndim() >= 1 && w.ndim() == 2 && w.dim(1) == x.cols(), "cuda linear: x ", shape_str(x.shape),
             " does not match w ", shape_str(w.shape), " (expected x[..., K], w[N, K])");
    const int64_t N = w.dim(0), K = w.dim(1), M = x.rows();
    if (b) check_vec(*b, N, "linear", "b");
    Shape os = x.shape;
    os.back() = N;
    Tensor y = alloc(DType::F32, os);
    activate();
    cuda::linear(st_->blas, st_->stream, cf(x), w.data, w.dtype, b ? b->data : nullptr,
                 b ? b->dtype : DType::F32, mf(y), M, N, K);
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
    if (narrowing && read_flag())
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
    Tensor y = embed({&table}, flat, "embedding");
    Shape os = ids.shape;
    os.push_back(table.ndim() == 2 ? table.dim(1) : 0);
    y.shape = os;
    return y;
  }

  Tensor embedding_sum(const std::vector<const Tensor*>& tables, const Tensor& ids) override {
    return embed(tables, ids, "embedding_sum");
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

  Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                   bool causal) override {
    check_f32(q, "attention", "q");
    check_f32(k, "attention", "k");
    check_f32(v, "attention", "v");
    MG_CHECK(q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2 && q.dim(1) == k.dim(1) && k.dim(1) == v.dim(1) &&
                 heads > 0 && q.dim(1) % heads == 0,
             "cuda attention: expected q[S, H*dh], k/v[T, H*dh] with H = ", heads, ", got ", shape_str(q.shape), ", ",
             shape_str(k.shape), ", ", shape_str(v.shape));
    MG_CHECK(T >= q.dim(0) || !causal, "cuda attention: ", q.dim(0), " causal queries need at least as many keys, got ",
             T);
    MG_CHECK(T <= k.dim(0) && T <= v.dim(0) && T >= 1, "cuda attention: T = ", T, " keys but k/v hold ", k.dim(0),
             "/", v.dim(0));
    const int64_t S = q.dim(0), dh = q.dim(1) / heads;
    MG_CHECK(dh <= cuda::kMaxAttentionHeadDim, "cuda attention: head size ", dh, " (", q.dim(1), " / ", heads,
             " heads) exceeds the kernel's ", cuda::kMaxAttentionHeadDim);
    Tensor out = alloc(DType::F32, {S, q.dim(1)});
    const int64_t scratch_floats = cuda::attention_scratch_floats(S, heads, dh, T);
    Tensor scratch = scratch_floats > 0 ? alloc(DType::F32, {scratch_floats}) : Tensor();
    activate();
    cuda::attention(st_->stream, cf(q), cf(k), cf(v), mf(out), scratch_floats > 0 ? mf(scratch) : nullptr, S, T,
                    heads, dh, scale, causal);
    return out;
  }

  Tensor attention_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                        bool causal) override {
    check_f32(q, "attention_rows", "q");
    check_f32(k, "attention_rows", "k");
    check_f32(v, "attention_rows", "v");
    MG_CHECK(q.ndim() == 3 && k.ndim() == 3 && v.ndim() == 3 && k.dim(0) == q.dim(0) && v.dim(0) == q.dim(0) &&
                 k.dim(1) == v.dim(1) && q.dim(2) == k.dim(2) && k.dim(2) == v.dim(2) && heads > 0 &&
                 q.dim(2) % heads == 0,
             "cuda attention_rows: expected q[R, S, H*dh], k/v[R, T, H*dh] with H = ", heads, ", got ",
             shape_str(q.shape), ", ", shape_str(k.shape), ", ", shape_str(v.shape));
    const int64_t R = q.dim(0), S = q.dim(1), dh = q.dim(2) / heads;
    MG_CHECK(T >= S || !causal, "cuda attention_rows: ", S, " causal queries need at least as many keys, got ", T);
    MG_CHECK(T <= k.dim(1) && T >= 1, "cuda attention_rows: T = ", T, " keys but k/v hold ", k.dim(1));
    MG_CHECK(dh <= cuda::kMaxAttentionHeadDim, "cuda attention_rows: head size ", dh, " exceeds the kernel's ",
             cuda::kMaxAttentionHeadDim);
    Tensor out = alloc(DType::F32, q.shape);
    const int64_t per = cuda::attention_scratch_floats(S, heads, dh, T);
    Tensor scratch = per > 0 ? alloc(DType::F32, {R * per}) : Tensor();
    activate();
    cuda::attention_batched(st_->stream, cf(q), cf(k), cf(v), mf(out), per > 0 ? mf(scratch) : nullptr, R, k.dim(1),
                            S, T, heads, dh, scale, causal);
    return out;
  }

  void write_kv(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0) override {
    check_f32(cache, "write_kv", "cache");
    check_f32(src, "write_kv", "src");
    MG_CHECK(cache.ndim() == 3 && src.ndim() == 2 && cache.dim(0) >= 1 && src.dim(0) % cache.dim(0) == 0 &&
                 col0 >= 0 && col0 + cache.dim(2) <= src.dim(1),
             "cuda write_kv: cannot put columns ", col0, ".. of ", shape_str(src.shape), " into the cache ",
             shape_str(cache.shape));
    const int64_t R = cache.dim(0), S = src.dim(0) / R;
    MG_CHECK(pos >= 0 && pos + S <= cache.dim(1), "cuda write_kv: positions ", pos, "..", pos + S,
             " exceed the cache of ", cache.dim(1));
    activate();
    cuda::write_kv(st_->stream, mf(cache), cf(src), R, S, cache.dim(1), cache.dim(2), src.dim(1), pos, col0);
  }

  Tensor sample_tokens(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                       const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided) override {
    check_f32(logits, "sample_tokens", "logits");
    const int B = int(seeds.size());
    MG_CHECK(logits.ndim() == 3 && B >= 1 && logits.dim(0) == (cfg ? 2 * B : B), "cuda sample_tokens: expected logits[",
             cfg ? 2 * B : B, ", K, V] for ", B, " sequences", cfg ? " with CFG" : "", ", got ",
             shape_str(logits.shape));
    const int K = int(logits.dim(1)), V = int(logits.dim(2));
    Tensor ids = alloc(DType::I32, {B, K});
    Tensor g = guided && cfg ? alloc(DType::F32, {B, K, V}) : Tensor();
    activate();
    cuda::sample_tokens(st_->stream, cf(logits), g.defined() ? mf(g) : nullptr, ids.ptr<int32_t>(), seeds.data(), B, K,
                        V, cfg, guidance_scale, p, step);
    if (guided) *guided = cfg ? g : logits;
    return ids;
  }

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
    check_f32(x, "lstm", "x");
    MG_CHECK(x.ndim() == 2, "cuda lstm: x ", shape_str(x.shape), " must be [T, In]");
    for (const Tensor* t : {&w.w_ih, &w.w_hh}) {
      check_cuda(*t, "lstm", "a weight");
      MG_CHECK(is_float(t->dtype) && t->ndim() == 2, "cuda lstm: weight ", dtype_name(t->dtype), " ",
               shape_str(t->shape), " must be a 2-D float tensor");
    }
    const int64_t T = x.dim(0), In = x.dim(1), G = w.w_ih.dim(0), H = G / 4;
    MG_CHECK(G % 4 == 0 && w.w_ih.dim(1) == In, "cuda lstm: w_ih ", shape_str(w.w_ih.shape), " must be [4H, ", In,
             "]");
    MG_CHECK(w.w_hh.dim(0) == G && w.w_hh.dim(1) == H, "cuda lstm: w_hh ", shape_str(w.w_hh.shape),
             " must be [", G, ", ", H, "]");
    for (const Tensor* t : {&w.b_ih, &w.b_hh}) {
      check_cuda(*t, "lstm", "a bias");
      MG_CHECK(is_float(t->dtype) && t->numel() == G, "cuda lstm: bias ", dtype_name(t->dtype), " ",
               shape_str(t->shape), " must hold 4H = ", G, " float values");
    }
    // The carried state: undefined (or no pointer) is the zero state.
    const Tensor* h0 = h_state && h_state->defined() ? h_state : nullptr;
    const Tensor* c0 = c_state && c_state->defined() ? c_state : nullptr;
    for (const Tensor* t : {h0, c0}) {
      if (!t) continue;
      check_f32(*t, "lstm", "a state");
      MG_CHECK(t->numel() == H, "cuda lstm: state ", shape_str(t->shape), " must hold H = ", H, " values");
    }
    Tensor h = alloc(DType::F32, {T, H});
    if (T == 0) return h;  // a given state stays as it is
    // The recurrent kernel reads W_hh in f32; half weights are widened once per call.
    const Tensor w_hh = w.w_hh.dtype == DType::F32 ? w.w_hh : cast(w.w_hh, DType::F32);
    Tensor gates = alloc(DType::F32, {T, G});
    Tensor c = alloc(DType::F32, {H});
    activate();
    cuda::linear(st_->blas, st_->stream, cf(x), w.w_ih.data, w.w_ih.dtype, w.b_ih.data, w.b_ih.dtype, mf(gates), T,
                 G, In);
    cuda::add_row_bias(st_->stream, mf(gates), w.b_hh.data, w.b_hh.dtype, T, G);
    if (c0)
      CUDA_CHECK(cudaMemcpyAsync(c.data, c0->data, size_t(H) * sizeof(float), cudaMemcpyDeviceToDevice, st_->stream));
    else
      CUDA_CHECK(cudaMemsetAsync(c.data, 0, size_t(H) * sizeof(float), st_->stream));
    for (int64_t t = 0; t < T; ++t)
      cuda::lstm_step(st_->stream, cf(gates) + t * G, cf(w_hh), t ? cf(h) + (t - 1) * H : (h0 ? cf(*h0) : nullptr),
                      mf(c), mf(h) + t * H, H);
    if (h_state) {
      Tensor last = alloc(DType::F32, {H});
      CUDA_CHECK(cudaMemcpyAsync(last.data, cf(h) + (T - 1) * H, size_t(H) * sizeof(float), cudaMemcpyDeviceToDevice,
                                 st_->stream));
      *h_state = last;
    }
    if (c_state) *c_state = c;
    return h;
  }

 private:
  void activate() { CUDA_CHECK(cudaSetDevice(st_->device)); }

  // Waits for the stream and reads the device error flag (bad embedding id, i64 -> i32 overflow).
  bool read_flag() {
    int flag = 0;
    CUDA_CHECK(cudaMemcpyAsync(&flag, st_->bad_id_flag, sizeof(int), cudaMemcpyDeviceToHost, st_->stream));
    CUDA_CHECK(cudaStreamSynchronize(st_->stream));
    return flag != 0;
  }

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

  Tensor embed(const std::vector<const Tensor*>& tables, const Tensor& ids, const char* name) {
    MG_CHECK(!tables.empty(), "cuda ", name, ": no tables");
    check_cuda(ids, name, "ids");
    MG_CHECK(is_int(ids.dtype), "cuda ", name, ": ids must be i32 or i64, got ", dtype_name(ids.dtype));
    const int K = int(tables.size());
    MG_CHECK(ids.ndim() == 2 && ids.dim(0) == K, "cuda ", name, ": ids ", shape_str(ids.shape), " must be [", K,
             ", N] for ", K, " tables");
    MG_CHECK(K <= cuda::kMaxEmbeddingTables, "cuda ", name, ": ", K, " tables, at most ",
             cuda::kMaxEmbeddingTables, " supported");
    const Tensor& t0 = *tables[0];
    std::vector<const void*> ptrs(K);
    std::vector<int64_t> vocab(K);
    for (int k = 0; k < K; ++k) {
      const Tensor& t = *tables[k];
      check_cuda(t, name, "table");
      MG_CHECK(is_float(t.dtype) && t.dtype == t0.dtype && t.ndim() == 2 && t.dim(1) == t0.dim(1), "cuda ", name,
               ": table ", k, " (", dtype_name(t.dtype), " ", shape_str(t.shape),
               ") must be a float [V, D] table like table 0 (", dtype_name(t0.dtype), " ", shape_str(t0.shape), ")");
      ptrs[k] = t.data;
      vocab[k] = t.dim(0);
    }
    const int64_t N = ids.dim(1), D = t0.dim(1);
    Tensor y = alloc(DType::F32, {N, D});
    if (N == 0 || D == 0) return y;
    activate();
    CUDA_CHECK(cudaMemsetAsync(st_->bad_id_flag, 0, sizeof(int), st_->stream));
    cuda::embedding_sum(st_->stream, ptrs.data(), vocab.data(), t0.dtype, K, ids.data, ids.dtype, mf(y), N, D,
                        st_->bad_id_flag);
    if (read_flag()) throw_bad_id(vocab, ids, name);
    return y;
  }

  // Error path only: find the first offending id on the host to name it in the message.
  [[noreturn]] void throw_bad_id(const std::vector<int64_t>& vocab, const Tensor& ids, const char* name) {
    Tensor h = download(ids);
    const int64_t N = ids.dim(1);
    for (int64_t k = 0; k < int64_t(vocab.size()); ++k)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t i = k * N + n;
        const int64_t id = h.dtype == DType::I32 ? h.ptr<int32_t>()[i] : h.ptr<int64_t>()[i];
        if (id < 0 || id >= vocab[k])
          throw Error(strcat("cuda ", name, ": id ", id, " at [", k, ", ", n, "] is outside table ", k, " of size ",
                             vocab[k]));
      }
    throw Error(strcat("cuda ", name, ": an id is outside its table"));
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
