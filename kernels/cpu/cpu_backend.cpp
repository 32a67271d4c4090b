// The CPU backend: owns a thread pool and forwards every op to the free functions of cpu_ops.h.
// Memory is plain host memory, so upload/download hand the tensor back as it is (no copy).
#include "kernels/cpu/cpu_ops.h"

namespace mg {

namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : pool_(threads) { ex_.pool = &pool_; }

  Device device() const override { return Device::CPU; }
  const char* name() const override { return "cpu"; }

  Tensor alloc(DType t, const Shape& s) override { return Tensor::empty(t, s); }
  Tensor upload(const Tensor& host) override {
    MG_CHECK(host.device == Device::CPU, "cpu backend upload: the tensor ", shape_str(host.shape),
             " is on ", device_name(host.device), ", not the host");
    return host;
  }
  Tensor download(const Tensor& dev) override {
    MG_CHECK(dev.device == Device::CPU, "cpu backend download: the tensor ", shape_str(dev.shape), " is on ",
             device_name(dev.device), ", not this backend");
    return dev;
  }

  Tensor linear(const Tensor& x, const Tensor& w, const Tensor* b) override { return cpu::linear(x, w, b, ex_); }
  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_b, float alpha) override {
    return cpu::matmul(a, b, trans_b, alpha, ex_);
  }
  Tensor add(const Tensor& a, const Tensor& b) override { return cpu::add(a, b, ex_); }
  Tensor mul(const Tensor& a, const Tensor& b) override { return cpu::mul(a, b, ex_); }
  Tensor scale(const Tensor& a, float s) override { return cpu::scale(a, s, ex_); }
  Tensor elu(const Tensor& x, float alpha) override { return cpu::elu(x, alpha, ex_); }
  Tensor gelu(const Tensor& x) override { return cpu::gelu(x, ex_); }
  Tensor relu(const Tensor& x) override { return cpu::relu(x, ex_); }
  Tensor cast(const Tensor& x, DType to) override { return cpu::cast(x, to, ex_); }
  Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor* beta, float eps) override {
    return cpu::layer_norm(x, gamma, beta, eps, ex_);
  }
  Tensor rms_norm(const Tensor& x, const Tensor& gamma, float eps) override {
    return cpu::rms_norm(x, gamma, eps, ex_);
  }
  Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps) override {
    return cpu::group_norm(x, groups, gamma, beta, eps, ex_);
  }
  Tensor softmax(const Tensor& x) override { return cpu::softmax(x, ex_); }
  Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                const Conv1dFusion& fuse) override {
    return cpu::conv1d(x, w, b, stride, dilation, fuse, ex_);
  }
  Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                          const ConvTranspose1dFusion& fuse) override {
    return cpu::conv_transpose1d(x, w, b, stride, fuse, ex_);
  }
  Tensor pad1d(const Tensor& x, int left, int right, PadMode mode, float value) override {
    return cpu::pad1d(x, left, right, mode, value, ex_);
  }
  Tensor transpose(const Tensor& x) override { return cpu::transpose(x, ex_); }
  Tensor embedding(const Tensor& table, const Tensor& ids) override { return cpu::embedding(table, ids, ex_); }
  Tensor embedding_sum(const std::vector<const Tensor*>& tables, const Tensor& ids) override {
    return cpu::embedding_sum(tables, ids, ex_);
  }
  Tensor vq_nearest(const Tensor& x, const Tensor& embed) override { return cpu::vq_nearest(x, embed, ex_); }
  Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                   bool causal) override {
    return cpu::attention(q, k, v, T, heads, scale, causal, ex_);
  }
  Tensor lstm(const Tensor& x, const LstmLayerWeights& w, Tensor* h, Tensor* c) override {
    return cpu::lstm(x, w, h, c, ex_);
  }

 private:
  cpu::ThreadPool pool_;
  cpu::Exec ex_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace mg
