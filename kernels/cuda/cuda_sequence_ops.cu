// The sequence ops of the CUDA backend: attention over the KV cache, writes into it, token
// sampling, embeddings and the LSTM. Each validates its tensors (kernels/cuda/cuda_checks.h) and
// calls a launcher of kernels/cuda/<op>.cu. The decode step's ops also take their changing scalars
// from the device (keys_dev, pos_dev, seeds_dev, step_dev), so that one captured graph serves
// every step (Backend::record, kernels/cuda/cuda_graph.cu).
#include <vector>

#include "kernels/cuda/cuda_checks.h"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {

bool read_flag(DeviceState& st) {
  int flag = 0;
  CUDA_CHECK(cudaMemcpyAsync(&flag, st.bad_id_flag, sizeof(int), cudaMemcpyDeviceToHost, st.stream));
  CUDA_CHECK(cudaStreamSynchronize(st.stream));
  return flag != 0;
}

// attention_rows over T keys, or (keys_dev) over *keys_dev <= T keys with T sizing the launch.
Tensor attend_rows(Backend& be, DeviceState& st, const Tensor& q, const Tensor& k, const Tensor& v, int64_t T,
                   const int32_t* keys_dev, int heads, float scale, bool causal, const char* op) {
  activate(st);
  check_f32(q, op, "q");
  check_cuda(k, op, "k");
  check_cuda(v, op, "v");
  MG_CHECK((k.dtype == DType::F32 || k.dtype == DType::F16) && v.dtype == k.dtype, "cuda ", op,
           ": k and v must both be f32 or f16 (a half KV cache), got ", dtype_name(k.dtype), " and ",
           dtype_name(v.dtype));
  MG_CHECK(q.ndim() == 3 && k.ndim() == 3 && v.ndim() == 3 && k.dim(0) == q.dim(0) && v.dim(0) == q.dim(0) &&
               k.dim(1) == v.dim(1) && q.dim(2) >= k.dim(2) && k.dim(2) == v.dim(2) && heads > 0 &&
               k.dim(2) % heads == 0,
           "cuda ", op, ": expected q[R, S, >= H*dh], k/v[R, T, H*dh] with H = ", heads, ", got ",
           shape_str(q.shape), ", ", shape_str(k.shape), ", ", shape_str(v.shape));
  const int64_t R = q.dim(0), S = q.dim(1), dh = k.dim(2) / heads;
  MG_CHECK(T >= S || !causal, "cuda ", op, ": ", S, " causal queries need at least as many keys, got ", T);
  MG_CHECK(T <= k.dim(1) && T >= 1, "cuda ", op, ": T = ", T, " keys but k/v hold ", k.dim(1));
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
  check_cuda(cache, op, "cache");
  MG_CHECK(cache.dtype == DType::F32 || cache.dtype == DType::F16, "cuda ", op, ": the cache must be f32 or f16, got ",
           dtype_name(cache.dtype));
  check_f32(src, op, "src");
  MG_CHECK(cache.ndim() == 3 && src.ndim() == 2 && cache.dim(0) >= 1 && src.dim(0) % cache.dim(0) == 0 && col0 >= 0 &&
               col0 + cache.dim(2) <= src.dim(1),
           "cuda ", op, ": cannot put columns ", col0, ".. of ", shape_str(src.shape), " into the cache ",
           shape_str(cache.shape));
  const int64_t R = cache.dim(0), S = src.dim(0) / R;
  MG_CHECK(pos_dev || (pos >= 0 && pos + S <= cache.dim(1)), "cuda ", op, ": positions ", pos, "..", pos + S,
           " exceed the cache of ", cache.dim(1));
  if (cache2) {
    check_cuda(*cache2, op, "second cache");
    MG_CHECK(cache2->shape == cache.shape && cache2->dtype == cache.dtype && col0 + 2 * cache.dim(2) <= src.dim(1),
             "cuda ", op, ": the caches ", shape_str(cache.shape), " and ", shape_str(cache2->shape),
             " differ, or src ", shape_str(src.shape), " lacks the columns of both");
  }
  write_kv(st.stream, cache.data, cf(src), R, S, cache.dim(1), cache.dim(2), src.dim(1), pos, col0, pos_dev,
           cache.dtype, cache2 ? cache2->data : nullptr);
}

// sample_tokens with host seeds and step, or (seeds_dev, step_dev) with both read on the device.
Tensor sample(Backend& be, DeviceState& st, const Tensor& logits, bool cfg, float guidance_scale,
              const SamplerParams& p, int B, const uint64_t* seeds, int64_t step, const uint64_t* seeds_dev,
              const int32_t* step_dev, Tensor* guided, const char* op) {
  activate(st);
  check_f32(logits, op, "logits");
  MG_CHECK(logits.ndim() == 3 && B >= 1 && logits.dim(0) == (cfg ? 2 * B : B), "cuda ", op, ": expected logits[",
           cfg ? 2 * B : B, ", K, V] for ", B, " sequences", cfg ? " with CFG" : "", ", got ", shape_str(logits.shape));
  const int K = int(logits.dim(1)), V = int(logits.dim(2));
  Tensor ids = be.alloc(DType::I32, {B, K});
  Tensor g = guided && cfg ? be.alloc(DType::F32, {B, K, V}) : Tensor();
  sample_tokens(st.stream, cf(logits), g.defined() ? mf(g) : nullptr, ids.ptr<int32_t>(), seeds, B, K, V, cfg,
                guidance_scale, p, step, seeds_dev, step_dev);
  if (guided) *guided = cfg ? g : logits;
  return ids;
}

// Error path only: find the first offending id on the host to name it in the message.
[[noreturn]] void throw_bad_id(Backend& be, const std::vector<int64_t>& vocab, const Tensor& ids, const char* name) {
  Tensor h = be.download(ids);
  const int64_t N = ids.dim(1);
  for (int64_t k = 0; k < int64_t(vocab.size()); ++k)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t i = k * N + n;
      const int64_t id = h.dtype == DType::I32 ? h.ptr<int32_t>()[i] : h.ptr<int64_t>()[i];
      if (id < 0 || id >= vocab[k])
        throw Error(
            strcat("cuda ", name, ": id ", id, " at [", k, ", ", n, "] is outside table ", k, " of size ", vocab[k]));
    }
  throw Error(strcat("cuda ", name, ": an id is outside its table"));
}

Tensor embed(Backend& be, DeviceState& st, const std::vector<const Tensor*>& tables, const Tensor& ids,
             const char* name) {
  activate(st);
  MG_CHECK(!tables.empty(), "cuda ", name, ": no tables");
  check_cuda(ids, name, "ids");
  MG_CHECK(is_int(ids.dtype), "cuda ", name, ": ids must be i32 or i64, got ", dtype_name(ids.dtype));
  const int K = int(tables.size());
  MG_CHECK(ids.ndim() == 2 && ids.dim(0) == K, "cuda ", name, ": ids ", shape_str(ids.shape), " must be [", K,
           ", N] for ", K, " tables");
  MG_CHECK(K <= kMaxEmbeddingTables, "cuda ", name, ": ", K, " tables, at most ", kMaxEmbeddingTables, " supported");
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
  Tensor y = be.alloc(DType::F32, {N, D});
  if (N == 0 || D == 0) return y;
  // While recording, the ids are not known yet and the flag cannot be read back: the recorded
  // step's ids are checked on the host before each upload instead.
  const bool check = !st.capturing();
  if (check) CUDA_CHECK(cudaMemsetAsync(st.bad_id_flag, 0, sizeof(int), st.stream));
  embedding_sum(st.stream, ptrs.data(), vocab.data(), t0.dtype, K, ids.data, ids.dtype, mf(y), N, D, st.bad_id_flag);
  if (check && read_flag(st)) throw_bad_id(be, vocab, ids, name);
  return y;
}

Tensor lstm(Backend& be, DeviceState& st, const Tensor& x, const LstmLayerWeights& w, Tensor* h_state,
            Tensor* c_state) {
  activate(st);
  check_f32(x, "lstm", "x");
  MG_CHECK(x.ndim() == 2, "cuda lstm: x ", shape_str(x.shape), " must be [T, In]");
  for (const Tensor* t : {&w.w_ih, &w.w_hh}) {
    check_cuda(*t, "lstm", "a weight");
    MG_CHECK(is_float(t->dtype) && t->ndim() == 2, "cuda lstm: weight ", dtype_name(t->dtype), " ", shape_str(t->shape),
             " must be a 2-D float tensor");
  }
  const int64_t T = x.dim(0), In = x.dim(1), G = w.w_ih.dim(0), H = G / 4;
  MG_CHECK(G % 4 == 0 && w.w_ih.dim(1) == In, "cuda lstm: w_ih ", shape_str(w.w_ih.shape), " must be [4H, ", In, "]");
  MG_CHECK(w.w_hh.dim(0) == G && w.w_hh.dim(1) == H, "cuda lstm: w_hh ", shape_str(w.w_hh.shape), " must be [", G, ", ",
           H, "]");
  for (const Tensor* t : {&w.b_ih, &w.b_hh}) {
    check_cuda(*t, "lstm", "a bias");
    MG_CHECK(is_float(t->dtype) && t->numel() == G, "cuda lstm: bias ", dtype_name(t->dtype), " ", shape_str(t->shape),
             " must hold 4H = ", G, " float values");
  }
  // The carried state: undefined (or no pointer) is the zero state.
  const Tensor* h0 = h_state && h_state->defined() ? h_state : nullptr;
  const Tensor* c0 = c_state && c_state->defined() ? c_state : nullptr;
  for (const Tensor* t : {h0, c0}) {
    if (!t) continue;
    check_f32(*t, "lstm", "a state");
    MG_CHECK(t->numel() == H, "cuda lstm: state ", shape_str(t->shape), " must hold H = ", H, " values");
  }
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
