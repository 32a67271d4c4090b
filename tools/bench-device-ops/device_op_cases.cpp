// The harness of the device op case table: the shared input helpers, running a case on a backend,
// and the comparison with the CPU. The rows are in device_op_cases_{dense,seq,codec}.cpp.
#include "tools/bench-device-ops/device_op_cases.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

namespace mgcases {

using mg::DType;
using mg::Tensor;

const std::vector<DeviceOpCase>& device_op_cases() {
  static const std::vector<DeviceOpCase> rows = [] {
    std::vector<DeviceOpCase> r;
    add_dense_cases(r);
    add_sequence_cases(r);
    add_codec_cases(r);
    return r;
  }();
  return rows;
}

std::function<Tensor()> prepare(const DeviceOpCase& c, const OpInputs& in, mg::Backend& be) {
  std::vector<Tensor> t;
  // The CPU backend's upload hands back the tensor itself: a copy keeps in.tensors unchanged.
  for (const Tensor& h : in.tensors) t.push_back(be.upload(be.device() == mg::Device::CPU ? h.clone() : h));
  const DeviceOpCase* row = &c;
  const OpInputs* inputs = &in;
  mg::Backend* b = &be;
  return [row, inputs, b, t] { return row->run(*b, t, *inputs); };
}

namespace {

double rel_err(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(y[i]) * y[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1.0));
}

bool bytes_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data, b.data, b.nbytes()) == 0;
}

}  // namespace

double case_error(const DeviceOpCase& c, const OpInputs& in, const Tensor& got, const Tensor& want) {
  constexpr double kFailed = 1e30;
  if (got.dtype != want.dtype || got.shape != want.shape) return kFailed;
  double e;
  if (c.error) e = c.error(got, want, in);
  else if (c.tol == kTolExact || got.dtype == DType::I32 || got.dtype == DType::I64) e = bytes_equal(got, want) ? 0 : 1;
  else e = rel_err(got, want);
  return std::isfinite(e) ? e : kFailed;
}

double check_against_cpu(const DeviceOpCase& c, const OpInputs& in, mg::Backend& dev, mg::Backend& cpu) {
  const Tensor want = prepare(c, in, cpu)();
  poison(dev);
  const Tensor got = dev.download(prepare(c, in, dev)());
  return case_error(c, in, got, want);
}

void poison(mg::Backend& be) {
  if (be.device() == mg::Device::CPU) return;
  Tensor host = Tensor::empty(DType::F32, {1 << 22});
  std::fill(host.f32(), host.f32() + host.numel(), std::numeric_limits<float>::quiet_NaN());
  Tensor dev = be.upload(host);
  dev = Tensor();
  be.synchronize();
}

Tensor random(const mg::Shape& s, uint32_t seed, float scale) {
  Tensor t = Tensor::empty(DType::F32, s);
  uint32_t x = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < t.numel(); ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    t.f32()[i] = scale * (float(x % 20001u) / 10000.0f - 1.0f + 1e-4f);  // never exactly zero
  }
  return t;
}

Tensor random_ids(DType t, const mg::Shape& s, int64_t vocab, uint32_t seed) {
  Tensor ids = Tensor::empty(t, s);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < ids.numel(); ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int64_t id = int64_t(x % uint64_t(vocab));
    if (t == DType::I32) ids.ptr<int32_t>()[i] = int32_t(id);
    else ids.ptr<int64_t>()[i] = id;
  }
  return ids;
}

Tensor i32s(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty(DType::I32, {int64_t(v.size())});
  std::memcpy(t.data, v.data(), v.size() * sizeof(int32_t));
  return t;
}

int64_t numel(const mg::Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor to_dtype(const Tensor& t, DType to) {
  static const std::unique_ptr<mg::Backend> cpu = mg::make_cpu_backend(1);
  return cpu->cast(t, to);
}

}  // namespace mgcases
