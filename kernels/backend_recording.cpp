// Host defaults of the recording ops (kernels/ops.h, "the decode step as one recording"): the
// device-scalar variants read their scalar back and call the plain op, and record() keeps the
// closure and re-runs it at every replay. On the CPU backend these are the whole implementation
// (download is free there), so the decode loop that a CUDA graph replays runs the same model code
// on the CPU, where every parity test covers it.
#include <cstring>

#include "kernels/ops.h"

namespace mg {
namespace {

// The value of a one-element i32 device scalar.
int64_t read_scalar(Backend& be, const Tensor& t, const char* op, const char* what) {
  MG_CHECK(t.defined() && t.dtype == DType::I32 && t.numel() == 1, op, ": ", what, " must be an i32 [1] tensor, got ",
           dtype_name(t.dtype), " ", shape_str(t.shape));
  return be.download(t).ptr<int32_t>()[0];
}

class RerunRecording final : public Backend::Recording {
 public:
  explicit RerunRecording(std::function<void()> ops) : ops_(std::move(ops)) {}
  void replay() override { ops_(); }

 private:
  std::function<void()> ops_;
};

}  // namespace

void Backend::upload_into(Tensor& dst, const Tensor& host) {
  MG_CHECK(host.device == Device::CPU, "upload_into: the source ", shape_str(host.shape), " is on the ",
           device_name(host.device), ", not the host");
  MG_CHECK(dst.defined() && dst.dtype == host.dtype && dst.numel() == host.numel(), "upload_into: cannot copy ",
           dtype_name(host.dtype), " ", shape_str(host.shape), " into ", dtype_name(dst.dtype), " ",
           shape_str(dst.shape));
  if (host.numel() == 0) return;
  if (dst.device == Device::CPU) {
    std::memcpy(dst.data, host.data, host.nbytes());
    return;
  }
  Tensor flat = dst.reshape({dst.numel()});
  copy_rows(flat, 0, upload(host.reshape({host.numel()})));
}

void Backend::write_kv_at(Tensor& cache, const Tensor& pos, const Tensor& src, int64_t col0) {
  write_kv(cache, read_scalar(*this, pos, "write_kv_at", "pos"), src, col0);
}

void Backend::write_kv_pair_at(Tensor& k_cache, Tensor& v_cache, const Tensor& pos, const Tensor& src,
                               int64_t col0) {
  MG_CHECK(k_cache.shape == v_cache.shape && k_cache.dtype == v_cache.dtype && k_cache.ndim() == 3,
           "write_kv_pair_at: the caches ", shape_str(k_cache.shape), " and ", shape_str(v_cache.shape),
           " differ");
  write_kv_at(k_cache, pos, src, col0);
  write_kv_at(v_cache, pos, src, col0 + k_cache.dim(2));
}

Tensor Backend::attention_rows_at(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keys,
                                  int64_t max_keys, int heads, float scale, bool causal) {
  const int64_t T = read_scalar(*this, keys, "attention_rows_at", "keys");
  MG_CHECK(T >= 1 && T <= max_keys && max_keys <= k.dim(1), "attention_rows_at: ", T, " keys, at most ", max_keys,
           " (the cache holds ", k.dim(1), ")");
  return attention_rows(q, k, v, T, heads, scale, causal);
}

Tensor Backend::sample_tokens_at(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                                 const Tensor& seeds, const Tensor& step, Tensor* guided) {
  MG_CHECK(seeds.defined() && seeds.dtype == DType::I64 && seeds.ndim() == 1,
           "sample_tokens_at: seeds must be i64 [B], got ", dtype_name(seeds.dtype), " ", shape_str(seeds.shape));
  Tensor hs = download(seeds);
  std::vector<uint64_t> s(size_t(hs.numel()));
  std::memcpy(s.data(), hs.data, hs.nbytes());
  return sample_tokens(logits, cfg, guidance_scale, p, s, read_scalar(*this, step, "sample_tokens_at", "step"), guided);
}

void Backend::delay_pattern_step_at(Tensor& pattern, const Tensor& tokens, const Tensor& column, Tensor& ids,
                                    Tensor& counters) {
  const char* op = "delay_pattern_step_at";
  MG_CHECK(pattern.dtype == DType::I32 && pattern.ndim() == 3 && tokens.dtype == DType::I32 && tokens.ndim() == 2 &&
               tokens.dim(0) == pattern.dim(0) && tokens.dim(1) == pattern.dim(1) && ids.dtype == DType::I32 &&
               ids.ndim() == 2 && ids.dim(0) == pattern.dim(1) && ids.dim(1) % pattern.dim(0) == 0 &&
               counters.dtype == DType::I32,
           op, ": expected i32 pattern[B, K, C], tokens[B, K], ids[K, R = B or 2B], counters; got ",
           shape_str(pattern.shape), ", ", shape_str(tokens.shape), ", ", shape_str(ids.shape));
  const int64_t B = pattern.dim(0), K = pattern.dim(1), C = pattern.dim(2), R = ids.dim(1);
  const int64_t c = read_scalar(*this, column, op, "column");
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
