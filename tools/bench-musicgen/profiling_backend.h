// A Backend that forwards every op to another one and adds up the wall time of each, keyed by op
// (and by weight shape for linear), so a decode step's time can be split without an external
// profiler. On the CPU backend ops are synchronous, so the times are the ops' own; on CUDA they
// would only be launch times (call synchronize in the wrapped backend to change that).
// It overrides the ops' *_impl (the public ops check the contract, then land here). The ops with a
// host default that it leaves alone (the recorded-step variants) run that default over the timed
// ops, so their parts are timed one by one. linear_fused is forwarded (the CPU backend applies the
// GELU and the residual add in place on the linear's output; the host default, into new tensors,
// would be timed instead) under its linear's key with "+gelu" or "+residual" added. write_kv,
// sampling and the shared step's batched attention are forwarded and timed: the CPU backend has
// its own (the host default's narrowing to f16 is several times slower; its batched attention is
// one pool hand-off per layer).
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
  // fallback_attention: run the host attention (mg::attention_on_host, the default of a backend
  // without an attention kernel) instead of the inner backend's own, to measure what the kernel gains.
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
  mg::Tensor upload_linear_weight(mg::Tensor h) override {
    return time("upload", [&] { return in_.upload_linear_weight(std::move(h)); });
  }
  mg::Tensor upload_linear_weight_rows(const std::vector<mg::Tensor>& parts) override {
    return time("upload", [&] { return in_.upload_linear_weight_rows(parts); });
  }
  mg::Tensor download(const mg::Tensor& d) override { return time("download", [&] { return in_.download(d); }); }
  void synchronize() override { in_.synchronize(); }

  // The ops: the public Backend op checked the contract against in_'s device, and in_'s public op
  // checks it again (cheap next to the op) before in_'s own implementation runs.
 protected:
  // "linear [N, K] dtype (gemv|gemm[ +gelu][ +residual])"
  static std::string linear_key(const mg::Tensor& x, const mg::Tensor& w, const mg::LinearFusion& fuse) {
    return "linear " + mg::shape_str(w.shape) + " " + mg::dtype_name(w.dtype) + (x.rows() <= 4 ? " (gemv" : " (gemm") +
           (fuse.gelu ? " +gelu" : "") + (fuse.residual ? " +residual" : "") + ")";
  }
  mg::Tensor linear_impl(const mg::Tensor& x, const mg::Tensor& w, const mg::Tensor* b, const mg::Shape&) override {
    return time(linear_key(x, w, mg::LinearFusion()), [&] { return in_.linear(x, w, b); });
  }
  mg::Tensor linear_fused_impl(const mg::Tensor& x, const mg::Tensor& w, const mg::Tensor* b,
                               const mg::LinearFusion& fuse, const mg::Shape&) override {
    return time(linear_key(x, w, fuse), [&] { return in_.linear_fused(x, w, b, fuse); });
  }
  mg::Tensor matmul_impl(const mg::Tensor& a, const mg::Tensor& b, bool tb, float alpha, const mg::Shape&) override {
    return time("matmul", [&] { return in_.matmul(a, b, tb, alpha); });
  }
  mg::Tensor add_impl(const mg::Tensor& a, const mg::Tensor& b) override {
    return time("add", [&] { return in_.add(a, b); });
  }
  mg::Tensor mul_impl(const mg::Tensor& a, const mg::Tensor& b) override {
    return time("mul", [&] { return in_.mul(a, b); });
  }
  mg::Tensor scale_impl(const mg::Tensor& a, float s) override {
    return time("scale", [&] { return in_.scale(a, s); });
  }
  mg::Tensor elu_impl(const mg::Tensor& x, float a) override { return time("elu", [&] { return in_.elu(x, a); }); }
  mg::Tensor gelu_impl(const mg::Tensor& x) override { return time("gelu", [&] { return in_.gelu(x); }); }
  mg::Tensor relu_impl(const mg::Tensor& x) override { return time("relu", [&] { return in_.relu(x); }); }
  mg::Tensor cast_impl(const mg::Tensor& x, mg::DType to) override {
    return time("cast", [&] { return in_.cast(x, to); });
  }
  mg::Tensor layer_norm_impl(const mg::Tensor& x, const mg::Tensor& g, const mg::Tensor* b, float eps) override {
    return time("layer_norm", [&] { return in_.layer_norm(x, g, b, eps); });
  }
  mg::Tensor rms_norm_impl(const mg::Tensor& x, const mg::Tensor& g, float eps) override {
    return time("rms_norm", [&] { return in_.rms_norm(x, g, eps); });
  }
  mg::Tensor group_norm_impl(const mg::Tensor& x, int groups, const mg::Tensor& g, const mg::Tensor& b,
                             float eps) override {
    return time("group_norm", [&] { return in_.group_norm(x, groups, g, b, eps); });
  }
  mg::Tensor softmax_impl(const mg::Tensor& x) override { return time("softmax", [&] { return in_.softmax(x); }); }
  // Fused convs are keyed apart ("+elu+pad+res", "+elu+trim"): their time includes those passes.
  mg::Tensor conv1d_impl(const mg::Tensor& x, const mg::Tensor& w, const mg::Tensor* b, int s, int d,
                         const mg::Conv1dFusion& f, const mg::Shape&) override {
    const std::string key = "conv1d w" + mg::shape_str(w.shape) + " s" + std::to_string(s) + " d" + std::to_string(d) +
                            (f.elu ? " +elu" : "") + (f.pad_left || f.pad_right ? " +pad" : "") +
                            (f.residual ? " +res" : "");
    return time(key, [&] { return in_.conv1d(x, w, b, s, d, f); });
  }
  mg::Tensor conv_transpose1d_impl(const mg::Tensor& x, const mg::Tensor& w, const mg::Tensor* b, int s,
                                   const mg::ConvTranspose1dFusion& f, const mg::Shape&) override {
    return time("conv_transpose1d w" + mg::shape_str(w.shape) + " s" + std::to_string(s) + (f.elu ? " +elu" : "") +
                    (f.trim_left || f.trim_right ? " +trim" : ""),
                [&] { return in_.conv_transpose1d(x, w, b, s, f); });
  }
  mg::Tensor pad1d_impl(const mg::Tensor& x, int l, int r, mg::PadMode m, float v, const mg::Shape&) override {
    return time("pad1d", [&] { return in_.pad1d(x, l, r, m, v); });
  }
  mg::Tensor transpose_impl(const mg::Tensor& x, const mg::Shape&) override {
    return time("transpose", [&] { return in_.transpose(x); });
  }
  mg::Tensor embedding_impl(const mg::Tensor& t, const mg::Tensor& ids, const mg::Shape&) override {
    return time("embedding", [&] { return in_.embedding(t, ids); });
  }
  mg::Tensor embedding_sum_impl(const std::vector<const mg::Tensor*>& t, const mg::Tensor& ids,
                                const mg::Shape&) override {
    return time("embedding_sum", [&] { return in_.embedding_sum(t, ids); });
  }
  mg::Tensor narrow_last_impl(const mg::Tensor& x, int64_t s, int64_t l, const mg::Shape&) override {
    return time("narrow_last", [&] { return in_.narrow_last(x, s, l); });
  }
  mg::Tensor vq_nearest_impl(const mg::Tensor& x, const mg::Tensor& e) override {
    return time("vq_nearest", [&] { return in_.vq_nearest(x, e); });
  }
  mg::Tensor attention_impl(const mg::Tensor& q, const mg::Tensor& k, const mg::Tensor& v, int64_t T, int heads,
                            float scale, bool causal) override {
    return time(causal ? "attention (causal)" : "attention (cross)", [&] {
      return fallback_attention_ ? mg::attention_on_host(in_, q, k, v, T, heads, scale, causal)
                                 : in_.attention(q, k, v, T, heads, scale, causal);
    });
  }
  // All rows of a decode step's attention: the inner backend's own attention_rows as one timed call
  // (the CPU backend runs the CFG rows in one pool hand-off); with fallback_attention the host
  // default, whose per-row attention() calls are timed above.
  mg::Tensor attention_rows_impl(const mg::Tensor& q, const mg::Tensor& k, const mg::Tensor& v, int64_t T, int heads,
                                 float scale, bool causal) override {
    if (fallback_attention_) return mg::Backend::attention_rows_impl(q, k, v, T, heads, scale, causal);
    return time(causal ? "attention (causal)" : "attention (cross)",
                [&] { return in_.attention_rows(q, k, v, T, heads, scale, causal); });
  }
  // The server's shared step: every request's attention in the inner backend's one call (the CPU
  // backend: one pool hand-off per layer), not the host default's call per request.
  void attention_rows_batch_impl(mg::Tensor& out, const std::vector<mg::AttentionRowsJob>& jobs, int heads,
                                 float scale, bool causal) override {
    if (fallback_attention_) return mg::Backend::attention_rows_batch_impl(out, jobs, heads, scale, causal);
    time(causal ? "attention (causal, all requests)" : "attention (cross, all requests)", [&] {
      in_.attention_rows_batch(out, jobs, heads, scale, causal);
      return 0;
    });
  }
  void copy_rows_impl(mg::Tensor& dst, int64_t row0, const mg::Tensor& src) override {
    time("copy_rows", [&] {
      in_.copy_rows(dst, row0, src);
      return 0;
    });
  }
  void write_kv_impl(mg::Tensor& cache, int64_t pos, const mg::Tensor& src, int64_t col0) override {
    time("write_kv", [&] {
      in_.write_kv(cache, pos, src, col0);
      return 0;
    });
  }
  mg::Tensor sample_tokens_impl(const mg::Tensor& logits, bool cfg, float guidance_scale, const mg::SamplerParams& p,
                                const std::vector<uint64_t>& seeds, int64_t step, mg::Tensor* guided) override {
    return time("sample_tokens", [&] { return in_.sample_tokens(logits, cfg, guidance_scale, p, seeds, step, guided); });
  }
  mg::Tensor lstm_impl(const mg::Tensor& x, const mg::LstmLayerWeights& w, mg::Tensor* h, mg::Tensor* c) override {
    return time("lstm", [&] { return in_.lstm(x, w, h, c); });
  }
  mg::Tensor chroma_impl(const mg::Tensor& signal, const mg::Tensor& window, float window_norm,
                         const mg::Tensor& filters, int hop, float eps, mg::Tensor* argmax, const mg::Shape&) override {
    return time("chroma", [&] { return in_.chroma(signal, window, window_norm, filters, hop, eps, argmax); });
  }

 private:
  mg::Backend& in_;
  bool fallback_attention_;
  std::map<std::string, std::pair<long, double>> stats_;
};

}  // namespace mgbench
