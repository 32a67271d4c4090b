// The CPU backend: owns a thread pool and forwards every op to the free functions of cpu_ops.h.
// The ops not listed here run the host defaults of kernels/backend_fallbacks.cpp and
// kernels/backend_recording.cpp, which on this backend are the reference.
// Memory is plain host memory, so upload/download hand the tensor back as it is (no copy); only
// upload_linear_weight may copy (q8_0/q4_0 repacked for the AVX-512 kernels, f32/bf16/f16 weights
// into 2 MiB pages).
#include <algorithm>
#include <cstring>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/op_checks.h"
#include "kernels/quant.h"
#include "kernels/weight_arena.h"

namespace mg {

namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : pool_(threads), weights_(huge_pages_from_env()) {
    ex_.pool = &pool_;
    ex_.lstm_weights = cpu::lstm_weights_from_env();
  }

  Device device() const override { return Device::CPU; }
  const char* name() const override { return "cpu"; }

  Tensor alloc(DType t, const Shape& s) override { return Tensor::empty(t, s); }
  Tensor upload(const Tensor& host) override {
    MG_CHECK(host.device == Device::CPU, "cpu backend upload: the tensor ", shape_str(host.shape),
             " is on ", device_name(host.device), ", not the host");
    return host;
  }
  // q8_0/q4_0 weights on the AVX-512 path: interleaved by 16 rows (kernels/quant.h), the layout
  // linear_quant_x16.cpp reads; the other paths read the stored row order.
  Tensor upload_linear_weight(Tensor host) override {
    const bool repack = host.device == Device::CPU && dtype_is_quantized(host.dtype) && host.ndim() == 2 &&
                        host.layout == QuantLayout::Rows && cpu::kernel_path_for(ex_) == cpu::KernelPath::Avx512;
    if (repack) return interleave_rows16(std::move(host), &weights_);
    // f32/bf16/f16 weights: into 2 MiB pages too, which the decode GEMV streams faster (bf16: 2
    // rows ~+17%, 16 rows ~+5%, kernels/cpu/linear_bf16.cpp; f32, which would otherwise stay a view
    // of the file's 4 KiB page-cache pages: musicgen-small's decode step ~+10%, docs/PERFORMANCE.md).
    if (host.device == Device::CPU && is_float_dtype(host.dtype) && host.ndim() == 2) {
      Tensor w = weights_.empty(host.dtype, host.shape);
      copy_on_the_pool(w.data, host.data, host.nbytes());
      return w;
    }
    return upload(host);
  }
  // Float parts of one dtype go straight into 2 MiB pages; anything else (mixed dtypes, bad shapes:
  // concat_rows says what is wrong) takes the default.
  Tensor upload_linear_weight_rows(const std::vector<Tensor>& parts) override {
    const bool stackable = !parts.empty() && std::all_of(parts.begin(), parts.end(), [&](const Tensor& t) {
      return t.device == Device::CPU && t.dtype == parts[0].dtype && is_float_dtype(t.dtype) && t.ndim() == 2 &&
             t.dim(1) == parts[0].dim(1);
    });
    if (!stackable) return Backend::upload_linear_weight_rows(parts);
    int64_t rows = 0;
    for (const Tensor& t : parts) rows += t.dim(0);
    Tensor w = weights_.empty(parts[0].dtype, {rows, parts[0].dim(1)});
    char* dst = static_cast<char*>(w.data);
    for (const Tensor& t : parts) {
      copy_on_the_pool(dst, t.data, t.nbytes());
      dst += t.nbytes();
    }
    return w;
  }
  Tensor download(const Tensor& dev) override {
    MG_CHECK(dev.device == Device::CPU, "cpu backend download: the tensor ", shape_str(dev.shape), " is on ",
             device_name(dev.device), ", not this backend");
    return dev;
  }

  // The ops: the contract was checked by the public Backend method (kernels/op_checks.h).
 protected:
  Tensor linear_impl(const Tensor& x, const Tensor& w, const Tensor* b, const Shape&) override {
    return cpu::linear(x, w, b, ex_);
  }
  // linear, then GELU and the residual add in place on its output: the bits of the host default
  // (linear, gelu, add as separate ops) without its two extra tensors a call.
  Tensor linear_fused_impl(const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse,
                           const Shape&) override {
    Tensor y = cpu::linear(x, w, b, ex_);
    if (fuse.gelu) cpu::gelu_inplace(y, ex_);
    if (fuse.residual) cpu::add_inplace(*fuse.residual, y, ex_);
    return y;
  }
  Tensor matmul_impl(const Tensor& a, const Tensor& b, bool trans_b, float alpha, const Shape&) override {
    return cpu::matmul(a, b, trans_b, alpha, ex_);
  }
  Tensor add_impl(const Tensor& a, const Tensor& b) override { return cpu::add(a, b, ex_); }
  Tensor mul_impl(const Tensor& a, const Tensor& b) override { return cpu::mul(a, b, ex_); }
  Tensor scale_impl(const Tensor& a, float s) override { return cpu::scale(a, s, ex_); }
  Tensor elu_impl(const Tensor& x, float alpha) override { return cpu::elu(x, alpha, ex_); }
  Tensor gelu_impl(const Tensor& x) override { return cpu::gelu(x, ex_); }
  Tensor relu_impl(const Tensor& x) override { return cpu::relu(x, ex_); }
  Tensor cast_impl(const Tensor& x, DType to) override { return cpu::cast(x, to, ex_); }
  Tensor layer_norm_impl(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps) override {
    return cpu::layer_norm(x, gamma, beta, eps, ex_);
  }
  Tensor rms_norm_impl(const Tensor& x, const Tensor& gamma, float eps) override {
    return cpu::rms_norm(x, gamma, eps, ex_);
  }
  Tensor group_norm_impl(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps) override {
    return cpu::group_norm(x, groups, gamma, beta, eps, ex_);
  }
  Tensor softmax_impl(const Tensor& x) override { return cpu::softmax(x, ex_); }
  Tensor conv1d_impl(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                     const Conv1dFusion& fuse, const Shape&) override {
    return cpu::conv1d(x, w, b, stride, dilation, fuse, ex_);
  }
  Tensor conv_transpose1d_impl(const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                               const ConvTranspose1dFusion& fuse, const Shape&) override {
    return cpu::conv_transpose1d(x, w, b, stride, fuse, ex_);
  }
  Tensor pad1d_impl(const Tensor& x, int left, int right, PadMode mode, float value, const Shape&) override {
    return cpu::pad1d(x, left, right, mode, value, ex_);
  }
  Tensor transpose_impl(const Tensor& x, const Shape&) override { return cpu::transpose(x, ex_); }
  Tensor embedding_impl(const Tensor& table, const Tensor& ids, const Shape&) override {
    return cpu::embedding(table, ids, ex_);
  }
  Tensor embedding_sum_impl(const std::vector<const Tensor*>& tables, const Tensor& ids, const Shape&) override {
    return cpu::embedding_sum(tables, ids, ex_);
  }
  Tensor vq_nearest_impl(const Tensor& x, const Tensor& embed) override { return cpu::vq_nearest(x, embed, ex_); }
  Tensor attention_impl(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                        bool causal) override {
    return cpu::attention(q, k, v, T, heads, scale, causal, ex_);
  }
  Tensor attention_rows_impl(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                             bool causal) override {
    return cpu::attention_rows(q, k, v, T, heads, scale, causal, ex_);
  }
  void attention_rows_batch_impl(Tensor& out, const std::vector<AttentionRowsJob>& jobs, int heads, float scale,
                                 bool causal) override {
    cpu::attention_rows_batch(out, jobs, heads, scale, causal, ex_);
  }
  Tensor sample_tokens_impl(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                            const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided) override {
    return cpu::sample_tokens(logits, cfg, guidance_scale, p, seeds, step, guided, ex_);
  }
  void write_kv_impl(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0) override {
    cpu::write_kv(cache, pos, src, col0, ex_);
  }
  Tensor lstm_impl(const Tensor& x, const LstmLayerWeights& w, Tensor* h, Tensor* c) override {
    return cpu::lstm(x, w, h, c, ex_);
  }
  Tensor chroma_impl(const Tensor& signal, const Tensor& window, float window_norm, const Tensor& filters, int hop,
                     float eps, Tensor* argmax, const Shape&) override {
    return cpu::chroma(signal, window, window_norm, filters, hop, eps, argmax);
  }

 private:
  cpu::ThreadPool pool_;
  cpu::Exec ex_;
  WeightArena weights_;  // the repacked q8_0/q4_0 and the f32/bf16/f16 weights, in 2 MiB pages (kernels/weight_arena.h)

  // memcpy in 2 MiB pieces shared by the pool's threads. Why: most of a weight copy's time is the
  // first touch of the fresh destination pages (the kernel faults and zeroes them), which the
  // threads take in parallel; it is what a converting or copying load costs over a mapped one.
  void copy_on_the_pool(void* dst, const void* src, size_t bytes) {
    constexpr size_t kPiece = size_t(2) << 20;
    const int64_t pieces = int64_t((bytes + kPiece - 1) / kPiece);
    pool_.parallel_for(pieces, [&](int64_t begin, int64_t end) {
      const size_t from = size_t(begin) * kPiece, to = std::min(bytes, size_t(end) * kPiece);
      std::memcpy(static_cast<char*>(dst) + from, static_cast<const char*>(src) + from, to - from);
    });
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace mg
