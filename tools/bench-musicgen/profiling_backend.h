// A Backend that forwards every op to another one and adds up the wall time of each, keyed by op
// (and by weight shape for linear), so a decode step's time can be split without an external
// profiler. On the CPU backend ops are synchronous, so the times are the ops' own; on CUDA they
// would only be launch times (call synchronize in the wrapped backend to change that).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kernels/ops.h"

namespace mgbench {

class ProfilingBackend final : public mg::Backend {
  // Runs fn and adds its wall time to `key` (defined first: the overrides below deduce its type).
  template <typename F>
  auto time(const std::string& key, F&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = fn();
    auto& s = stats_[key];
    s.first += 1;
    s.second += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

 public:
  // fallback_attention: run Backend's host default attention instead of the inner backend's own
  // (to measure what a backend's attention kernel gains).
  explicit ProfilingBackend(mg::Backend& inner, bool fallback_attention = false)
      : in_(inner), fallback_attention_(fallback_attention) {}

  void reset() { stats_.clear(); }
  // Op name -> (calls, seconds), largest time first, and the total.
  std::vector<std::pair<std::string, std::pair<long, double>>> sorted() const {
    std::vector<std::pair<std::string, std::pair<long, double>>> v(stats_.begin(), stats_.end());
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second.second > b.second.second; });
    return v;
  }
  double total() const {
    double t = 0;
    for (auto& kv : stats_) t += kv.second.second;
    return t;
  }

  mg::Device device() const override { return in_.device(); }
  const char* name() const override { return in_.name(); }
  mg::Tensor alloc(mg::DType t, const mg::Shape& s) override { return time("alloc", [&] { return in_.alloc(t, s); }); }
  mg::Tensor upload(const mg::Tensor& h) override { return time("upload", [&] { return in_.upload(h); }); }
  mg::Tensor download(const mg::Tensor& d) override { return time("download", [&] { return in_.download(d); }); }
  void synchronize() override { in_.synchronize(); }

  mg::Tensor linear(const mg::Tensor& x, const mg::Tensor& w, const mg::Tensor* b) override {
    const std::string key = "linear " + mg::shape_str(w.shape) + " " + mg::dtype_name(w.dtype) +
                            (x.rows() <= 4 ? " (gemv)" : " (gemm)");
    return time(key, [&] { return in_.linear(x, w, b); });
  }
  mg::Tensor matmul(const mg::Tensor& a, const mg::Tensor& b, bool tb, float alpha) override {
    return time("matmul", [&] { return in_.matmul(a, b, tb, alpha); });
  }
  mg::Tensor add(const mg::Tensor& a, const mg::Tensor& b) override {
    return time("add", [&] { return in_.add(a, b); });
  }
  mg::Tensor mul(const mg::Tensor& a, const mg::Tensor& b) override {
    return time("mul", [&] { return in_.mul(a, b); });
  }
  mg::Tensor scale(const mg::Tensor& a, float s) override { return time("scale", [&] { return in_.scale(a, s); }); }
  mg::Tensor elu(const mg::Tensor& x, float a) override { return time("elu", [&] { return in_.elu(x, a); }); }
  mg::Tensor gelu(const mg::Tensor& x) override { return time("gelu", [&] { return in_.gelu(x); }); }
  mg::Tensor relu(const mg::Tensor& x) override { return time("relu", [&] { return in_.relu(x); }); }
  mg::Tensor cast(const mg::Tensor& x, mg::DType to) override { return time("cast", [&] { return in_.cast(x, to); }); }
  mg::Tensor layer_norm(const mg::Tensor& x, const mg::Tensor& g, const mg::Tensor* b, float eps) override {
    return time("layer_norm", [&] { return in_.layer_norm(x, g, b, eps); });
  }
  mg::Tensor rms_norm(const mg::Tensor& x, const mg::Tensor& g, float eps) override {
    return time("rms_norm", [&] { return in_.rms_norm(x, g, eps); });
  }
  mg::Tensor group_norm(const mg::Tensor& x, int groups, const mg::Tensor& g, const mg::Tensor& b, float eps) override {
    return time("group_norm", [&] { return in_.group_norm(x, groups, g, b, eps); });
  }
  mg::Tensor softmax(const mg::Tensor& x) override { return time("softmax", [&] { return in_.softmax(x); }); }
  // Fused convs are keyed apart ("+elu+pad+res", "+elu+trim"): their time includes those passes.
  mg::Tensor conv1d(const mg::Tensor& x, const mg::Tensor& w, const mg::Tensor* b, int s, int d,
                    const mg::Conv1dFusion& f) override {
    const std::string key = "conv1d w" + mg::shape_str(w.shape) + " s" + std::to_string(s) + " d" + std::to_string(d) +
                            (f.elu ? " +elu" : "") + (f.pad_left || f.pad_right ? " +pad" : "") +
                            (f.residual ? " +res" : "");
    return time(key, [&] { return in_.conv1d(x, w, b, s, d, f); });
  }
  mg::Tensor conv_transpose1d(const mg::Tensor& x, const mg::Tensor& w, const mg::Tensor* b, int s,
                              const mg::ConvTranspose1dFusion& f) override {
    return time("conv_transpose1d w" + mg::shape_str(w.shape) + " s" + std::to_string(s) + (f.elu ? " +elu" : "") +
                    (f.trim_left || f.trim_right ? " +trim" : ""),
                [&] { return in_.conv_transpose1d(x, w, b, s, f); });
  }
  mg::Tensor pad1d(const mg::Tensor& x, int l, int r, mg::PadMode m, float v) override {
    return time("pad1d", [&] { return in_.pad1d(x, l, r, m, v); });
  }
  mg::Tensor transpose(const mg::Tensor& x) override { return time("transpose", [&] { return in_.transpose(x); }); }
  mg::Tensor embedding(const mg::Tensor& t, const mg::Tensor& ids) override {
    return time("embedding", [&] { return in_.embedding(t, ids); });
  }
  mg::Tensor embedding_sum(const std::vector<const mg::Tensor*>& t, const mg::Tensor& ids) override {
    return time("embedding_sum", [&] { return in_.embedding_sum(t, ids); });
  }
  mg::Tensor narrow_last(const mg::Tensor& x, int64_t s, int64_t l) override {
    return time("narrow_last", [&] { return in_.narrow_last(x, s, l); });
  }
  mg::Tensor vq_nearest(const mg::Tensor& x, const mg::Tensor& e) override {
    return time("vq_nearest", [&] { return in_.vq_nearest(x, e); });
  }
  mg::Tensor attention(const mg::Tensor& q, const mg::Tensor& k, const mg::Tensor& v, int64_t T, int heads,
                       float scale, bool causal) override {
    return time(causal ? "attention (causal)" : "attention (cross)",
                [&] {
                  return fallback_attention_ ? in_.Backend::attention(q, k, v, T, heads, scale, causal)
                                             : in_.attention(q, k, v, T, heads, scale, causal);
                });
  }
  void copy_rows(mg::Tensor& dst, int64_t row0, const mg::Tensor& src) override {
    time("copy_rows", [&] {
      in_.copy_rows(dst, row0, src);
      return 0;
    });
  }
  mg::Tensor lstm(const mg::Tensor& x, const mg::LstmLayerWeights& w, mg::Tensor* h, mg::Tensor* c) override {
    return time("lstm", [&] { return in_.lstm(x, w, h, c); });
  }

 private:
  mg::Backend& in_;
  bool fallback_attention_;
  std::map<std::string, std::pair<long, double>> stats_;
};

}  // namespace mgbench
