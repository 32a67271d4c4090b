// The sequence ops of the CUDA backend: attention over the KV cache, writes into it, token
// sampling, embeddings and the LSTM. The op's contract was checked by the public Backend method
// (kernels/op_checks.h); each checks only its kernel's own limits and calls a launcher of
// kernels/cuda/<op>.cu. The decode step's ops also take their changing scalars
// from the device (keys_dev, pos_dev, seeds_dev, step_dev), so that one captured graph serves
// every step (Backend::record, kernels/cuda/cuda_graph.cu).
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_sequence_ops.h"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {

int add_check(DeviceState& st, PendingCheck check) {
  // A captured launch replays with ids not known yet: the recorded step's ids are checked on the
  // host before each upload instead, and a replay must not leave a tag for an unrelated later call.
  if (st.capturing()) return 0;
  return st.checks.add(std::move(check));
}

namespace {

// "id 2049 at [3, 0] is outside table 3 of size 2048" for the first bad id of the embedding's
// [K, N] ids (read on the host: the error path only), or "" when the ids were not kept.
std::string first_bad_id(Backend& be, const PendingCheck& c) {
  if (!c.input.defined() || c.vocab.empty()) return "";
  const Tensor h = be.download(c.input);
  const int64_t N = h.numel() / int64_t(c.vocab.size());
  for (int64_t k = 0; k < int64_t(c.vocab.size()); ++k)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t i = k * N + n;
      const int64_t id = h.dtype == DType::I32 ? h.ptr<int32_t>()[i] : h.ptr<int64_t>()[i];
      if (id < 0 || id >= c.vocab[size_t(k)])
        return strcat("id ", id, " at [", k, ", ", n, "] is outside table ", k, " of size ", c.vocab[size_t(k)]);
    }
  return "";
}

}  // namespace

void synchronize_checked(Backend& be, DeviceState& st) {
  MG_CHECK(!st.capturing(), "cuda: a synchronisation (download, synchronize) while recording; a recording's ops "
                            "must not wait for the device");
  const bool checking = !st.checks.empty();
  // The flag's copy is queued behind every checked launch: one wait covers both.
  if (checking) CUDA_CHECK(cudaMemcpyAsync(st.flag_host, st.bad_id_flag, sizeof(int), cudaMemcpyDeviceToHost, st.stream));
  CUDA_CHECK(cudaStreamSynchronize(st.stream));
  if (!checking) return;
  PendingChecks done;
  std::swap(done, st.checks);  // checked now, whatever comes of it (the download below must not recurse)
  const int tag = *st.flag_host;
  if (tag == 0) return;
  CUDA_CHECK(cudaMemsetAsync(st.bad_id_flag, 0, sizeof(int), st.stream));  // clean for later launches
  const PendingCheck* failed = done.find(tag);
  throw Error(failed_check_message(failed, tag, failed ? first_bad_id(be, *failed) : ""));
}

// attention_rows over T keys, or (keys_dev) over *keys_dev <= T keys with T sizing the launch.
Tensor attend_rows(Backend& be, DeviceState& st, const Tensor& q, const Tensor& k, const Tensor& v, int64_t T,
                   const int32_t* keys_dev, int heads, float scale, bool causal, const char* op) {
  activate(st);
  // The kernel walks k and v with one row stride.
  MG_CHECK(k.dim(1) == v.dim(1), "cuda ", op, ": k ", shape_str(k.shape), " and v ", shape_str(v.shape),
           " must hold the same number of rows");
  const int64_t R = q.dim(0), S = q.dim(1), dh = k.dim(2) / heads;
  MG_CHECK(dh <= kMaxAttentionHeadDim, "cuda ", op, ": head size ", dh, " exceeds the kernel's ", kMaxAttentionHeadDim);
  Tensor out = be.alloc(DType::F32, {R, S, k.dim(2)});
  const int64_t per = attention_scratch_floats(S, heads, dh, T);
  Tensor scratch = per > 0 ? be.alloc(DType::F32, {R * per}) : Tensor();
  attention_batched(st.stream, cf(q), k.data, v.data, mf(out), per > 0 ? mf(scratch) : nullptr, R, k.dim(1), S, T,
                    heads, dh, scale, causal, keys_dev, k.dtype, q.dim(2), st.attention_counters);
  return out;
}

// write_kv at pos, or (pos_dev) at the position the device holds (checked on the host before upload).
void put_kv(DeviceState& st, Tensor& cache, int64_t pos, const int32_t* pos_dev, const Tensor& src, int64_t col0,
            const char* op, Tensor* cache2) {
  activate(st);
  // The kernel writes f32 or f16 caches from f32 rows (the contract also allows bf16 and same-dtype copies).
  MG_CHECK(src.dtype == DType::F32 && (cache.dtype == DType::F32 || cache.dtype == DType::F16), "cuda ", op,
           ": the kernel writes f32 rows into an f32 or f16 cache, got ", dtype_name(src.dtype), " into ",
           dtype_name(cache.dtype));
  const int64_t R = cache.dim(0), S = src.dim(0) / R;
  write_kv(st.stream, cache.data, cf(src), R, S, cache.dim(1), cache.dim(2), src.dim(1), pos, col0, pos_dev,
           cache.dtype, cache2 ? cache2->data : nullptr);
}

// sample_tokens with host seeds and step, or (seeds_dev, step_dev) with both read on the device.
Tensor sample(Backend& be, DeviceState& st, const Tensor& logits, bool cfg, float guidance_scale,
              const SamplerParams& p, int B, const uint64_t* seeds, int64_t step, const uint64_t* seeds_dev,
              const int32_t* step_dev, Tensor* guided, const char* op) {
  activate(st);
  const int K = int(logits.dim(1)), V = int(logits.dim(2));
  Tensor ids = be.alloc(DType::I32, {B, K});
  Tensor g = guided && cfg ? be.alloc(DType::F32, {B, K, V}) : Tensor();
  sample_tokens(st.stream, cf(logits), g.defined() ? mf(g) : nullptr, ids.ptr<int32_t>(), seeds, B, K, V, cfg,
                guidance_scale, p, step, seeds_dev, step_dev);
  if (guided) *guided = cfg ? g : logits;
  return ids;
}

Tensor embed(Backend& be, DeviceState& st, const std::vector<const Tensor*>& tables, const Tensor& ids,
             const char* name) {
  activate(st);
  const int K = int(tables.size());
  MG_CHECK(K <= kMaxEmbeddingTables, "cuda ", name, ": ", K, " tables, at most ", kMaxEmbeddingTables, " supported");
  const Tensor& t0 = *tables[0];
  std::vector<const void*> ptrs(K);
  std::vector<int64_t> vocab(K);
  for (int k = 0; k < K; ++k) {
    const Tensor& t = *tables[k];
    // One kernel reads every table: they share a dtype.
    MG_CHECK(t.dtype == t0.dtype, "cuda ", name, ": table ", k, " is ", dtype_name(t.dtype), ", table 0 ",
             dtype_name(t0.dtype), " (the kernel reads one dtype)");
    ptrs[k] = t.data;
    vocab[k] = t.dim(0);
  }
  const int64_t N = ids.dim(1), D = t0.dim(1);
  Tensor y = be.alloc(DType::F32, {N, D});
  if (N == 0 || D == 0) return y;
  // Checked at the next synchronisation point, not here: a wait per lookup would serialise the
  // host with the device (an EnCodec decode looks up every codebook).
  const int tag = add_check(st, {name, vocab, ids, {}});
  embedding_sum(st.stream, ptrs.data(), vocab.data(), t0.dtype, K, ids.data, ids.dtype, mf(y), N, D,
                tag ? st.bad_id_flag : nullptr, tag);
  return y;
}

Tensor lstm(Backend& be, DeviceState& st, const Tensor& x, const LstmLayerWeights& w, Tensor* h_state,
            Tensor* c_state) {
  activate(st);
  const int64_t T = x.dim(0), In = x.dim(1), G = w.w_ih.dim(0), H = G / 4;
  // The carried state: undefined (or no pointer) is the zero state.
  const Tensor* h0 = h_state && h_state->defined() ? h_state : nullptr;
  const Tensor* c0 = c_state && c_state->defined() ? c_state : nullptr;
  Tensor h = be.alloc(DType::F32, {T, H});
  if (T == 0) return h;  // a given state stays as it is
  // The recurrent kernel reads W_hh in f32; half weights are widened once per call.
  const Tensor w_hh = w.w_hh.dtype == DType::F32 ? w.w_hh : be.cast(w.w_hh, DType::F32);
  Tensor gates = be.alloc(DType::F32, {T, G});
  Tensor c = be.alloc(DType::F32, {H});
  linear(st.blas, st.stream, cf(x), w.w_ih.data, w.w_ih.dtype, w.b_ih.data, w.b_ih.dtype, mf(gates), T, G, In);
  add_row_bias(st.stream, mf(gates), w.b_hh.data, w.b_hh.dtype, T, G);
  if (c0)
    CUDA_CHECK(cudaMemcpyAsync(c.data, c0->data, size_t(H) * sizeof(float), cudaMemcpyDeviceToDevice, st.stream));
  else
    CUDA_CHECK(cudaMemsetAsync(c.data, 0, size_t(H) * sizeof(float), st.stream));
  for (int64_t t = 0; t < T; ++t)
    lstm_step(st.stream, cf(gates) + t * G, cf(w_hh), t ? cf(h) + (t - 1) * H : (h0 ? cf(*h0) : nullptr), mf(c),
              mf(h) + t * H, H);
  if (h_state) {
    Tensor last = be.alloc(DType::F32, {H});
    CUDA_CHECK(cudaMemcpyAsync(last.data, cf(h) + (T - 1) * H, size_t(H) * sizeof(float), cudaMemcpyDeviceToDevice,
                               st.stream));
    *h_state = last;
  }
  if (c_state) *c_state = c;
  return h;
}

}  // namespace cuda
}  // namespace mg
