// See device_check.h.
#include "kernels/device_check.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/fault_injection.h"

namespace mg {
namespace {

// Deterministic inputs in [-1, 1) (a fixed linear congruential sequence: the same on every run).
Tensor fixed_input(const Shape& s, uint32_t seed) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t x = seed * 2654435761u + 1u;
  for (float& f : v) {
    x = x * 1664525u + 1013904223u;
    f = float(x >> 8) / float(1u << 23) - 1.0f;
  }
  return Tensor::from_vector(v, s);
}

// One op: its name and how to compute it on a backend from host inputs.
struct CheckedOp {
  const char* name;
  std::function<Tensor(Backend&)> run;
};

std::vector<CheckedOp> checked_ops() {
  const int64_t D = 64, H = 4, T = 8;
  const Tensor x = fixed_input({2, D}, 1), w = fixed_input({48, D}, 2), b = fixed_input({48}, 3);
  const Tensor gamma = fixed_input({D}, 4), beta = fixed_input({D}, 5);
  const Tensor q = fixed_input({1, D}, 6), k = fixed_input({T, D}, 7), v = fixed_input({T, D}, 8);
  const Tensor table = fixed_input({16, D}, 9);
  Tensor ids = Tensor::zeros(DType::I64, {3});
  ids.ptr<int64_t>()[0] = 3;
  ids.ptr<int64_t>()[2] = 15;
  const Tensor audio = fixed_input({1, 4, 32}, 10), cw = fixed_input({6, 4, 3}, 11), cb = fixed_input({6}, 12);
  const Tensor tw = fixed_input({4, 6, 4}, 13), tb = fixed_input({6}, 14);
  return {
      {"linear", [=](Backend& be) {
         const Tensor bias = be.upload(b);
         return be.linear(be.upload(x), be.upload(w), &bias);
       }},
      {"attention", [=](Backend& be) {
         return be.attention(be.upload(q), be.upload(k), be.upload(v), T, int(H), 0.25f, true);
       }},
      {"layer_norm", [=](Backend& be) {
         const Tensor g = be.upload(gamma), bt = be.upload(beta);
         return be.layer_norm(be.upload(x), g, &bt, 1e-5f);
       }},
      {"softmax", [=](Backend& be) { return be.softmax(be.upload(x)); }},
      {"gelu", [=](Backend& be) { return be.gelu(be.upload(x)); }},
      {"embedding", [=](Backend& be) { return be.embedding(be.upload(table), be.upload(ids)); }},
      {"conv1d", [=](Backend& be) {
         const Tensor bias = be.upload(cb);
         return be.conv1d(be.upload(audio), be.upload(cw), &bias, 1, 1);
       }},
      {"conv_transpose1d", [=](Backend& be) {
         const Tensor bias = be.upload(tb);
         return be.conv_transpose1d(be.upload(audio), be.upload(tw), &bias, 2);
       }},
  };
}

// The largest difference relative to max(1, |want|), and where.
float worst_difference(const std::vector<float>& got, const std::vector<float>& want, size_t* where) {
  float worst = 0.0f;
  for (size_t i = 0; i < want.size(); ++i) {
    const float d = std::fabs(got[i] - want[i]) / std::max(1.0f, std::fabs(want[i]));
    if (!(d <= worst)) {  // a NaN counts as the worst
      worst = std::isnan(d) ? INFINITY : d;
      *where = i;
    }
  }
  return worst;
}

}  // namespace

void expect_matches_cpu(const std::string& what, const Backend& device, std::vector<float> got,
                        const std::vector<float>& want, cuda::Fault fault) {
  const char* dev = device.name();
  if (cuda::fault_due(fault) && !got.empty()) got[0] += 1.0f;  // the test hook (device_check.h)
  MG_CHECK(got.size() == want.size(), "device self-check: ", what, " on ", dev, " gave ", got.size(),
           " values, the CPU ", want.size(), " (the device is not used: run with --device cpu)");
  size_t where = 0;
  const float worst = worst_difference(got, want, &where);
  MG_CHECK(worst <= kDeviceCheckTolerance, "device self-check: ", what, " on ", dev, " differs from the CPU by ",
           worst, " (relative, at value ", where, ": ", got[where], " instead of ", want[where], "; tolerance ",
           kDeviceCheckTolerance, "): the device computes wrong results (driver or card fault?); run with --device cpu");
}

void check_device_against_cpu(Backend& device) {
  auto cpu = make_cpu_backend(1);
  for (const CheckedOp& op : checked_ops()) {
    const std::vector<float> want = op.run(*cpu).to_vector();
    std::vector<float> got = device.download(op.run(device)).to_vector();
    device.synchronize();
    expect_matches_cpu(op.name, device, std::move(got), want, cuda::Fault::SelfCheck);
  }
}

}  // namespace mg
