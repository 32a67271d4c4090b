// Host defaults of the recording ops (kernels/ops.h, "the decode step as one recording"): the
// device-scalar variants read their scalar back and call the plain op, and record() keeps the
// closure and re-runs it at every replay. On the CPU backend these are the whole implementation
// (download is free there), so the decode loop that a CUDA graph replays runs the same model code
// on the CPU, where every parity test covers it.
#include <cstring>

#include "kernels/ops.h"

namespace mg {
namespace {

// The value of a one-element i32 device scalar (the contract checked its dtype and size).
int64_t read_scalar(Backend& be, const Tensor& t) { return be.download(t).ptr<int32_t>()[0]; }

class RerunRecording final : public Backend::Recording {
 public:
  explicit RerunRecording(std::function<void()> ops) : ops_(std::move(ops)) {}
  void replay() override { ops_(); }

 private:
  std::function<void()> ops_;
};

}  // namespace

void Backend::upload_into_impl(Tensor& dst, const Tensor& host) {
  if (host.numel() == 0) return;
  if (dst.device == Device::CPU) {
    std::memcpy(dst.data, host.data, host.nbytes());
    return;
  }
  Tensor flat = dst.reshape({dst.numel()});
  copy_rows(flat, 0, upload(host.reshape({host.numel()})));
}

void Backend::write_kv_at_impl(Tensor& cache, const Tensor& pos, const Tensor& src, int64_t col0) {
  write_kv(cache, read_scalar(*this, pos), src, col0);
}

void Backend::write_kv_pair_at_impl(Tensor& k_cache, Tensor& v_cache, const Tensor& pos, const Tensor& src,
                                    int64_t col0) {
  write_kv_at(k_cache, pos, src, col0);
  write_kv_at(v_cache, pos, src, col0 + k_cache.dim(2));
}

Tensor Backend::attention_rows_at_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keys,
                                       int64_t max_keys, int heads, float scale, bool causal) {
  const int64_t T = read_scalar(*this, keys);
  MG_CHECK(T >= 1 && T <= max_keys && max_keys <= k.dim(1), "attention_rows_at: ", T, " keys, at most ", max_keys,
           " (the cache holds ", k.dim(1), ")");
  return attention_rows(q, k, v, T, heads, scale, causal);
}

Tensor Backend::sample_tokens_at_impl(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                                      const Tensor& seeds, const Tensor& step, Tensor* guided) {
  Tensor hs = download(seeds);
  std::vector<uint64_t> s(size_t(hs.numel()));
  std::memcpy(s.data(), hs.data, hs.nbytes());
  return sample_tokens(logits, cfg, guidance_scale, p, s, read_scalar(*this, step), guided);
}

void Backend::delay_pattern_step_at_impl(Tensor& pattern, const Tensor& tokens, const Tensor& column, Tensor& ids,
                                         Tensor& counters) {
  const char* op = "delay_pattern_step_at";
  const int64_t B = pattern.dim(0), K = pattern.dim(1), C = pattern.dim(2), R = ids.dim(1);
  const int64_t c = read_scalar(*this, column);
  MG_CHECK(c >= 0 && c < C, op, ": column ", c, " outside the pattern's ", C);
  // Host copies (the CPU backend's download is the tensor itself), written back when on a device.
  Tensor hp = download(pattern), ht = download(tokens), hi = download(ids), hc = download(counters);
  int32_t* P = hp.ptr<int32_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k) {
      int32_t& v = P[(b * K + k) * C + c];
      if (v == -1) v = ht.ptr<int32_t>()[b * K + k];
    }
  for (int64_t k = 0; k < K; ++k)
    for (int64_t r = 0; r < R; ++r) hi.ptr<int32_t>()[k * R + r] = P[((r % B) * K + k) * C + c];
  for (int64_t i = 0; i < hc.numel(); ++i) ++hc.ptr<int32_t>()[i];
  if (pattern.device != Device::CPU) {
    upload_into(pattern, hp);
    upload_into(ids, hi);
    upload_into(counters, hc);
    synchronize();  // the host copies die here
  }
}

std::unique_ptr<Backend::Recording> Backend::record(std::function<void()> ops) {
  MG_CHECK(bool(ops), "record: nothing to record");
  return std::make_unique<RerunRecording>(std::move(ops));
}

}  // namespace mg
