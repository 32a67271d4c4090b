// CUDA recordings (Backend::record as CUDA graphs, kernels/cuda/cuda_graph.cu) and the device-
// scalar ops a recorded decode step uses, against the CPU.
//
// Why these traps exist: a captured graph replays fixed kernel arguments, so every number that
// changes per step must be read from device memory when the kernel runs (the position in the KV
// cache, the visible key count, the sampling step), and every tensor the step creates must keep
// its address across replays (the arena) while tensors freed during the capture must not be
// freed again at each replay (deferred frees). A capture that synchronises must fail loudly and
// leave the backend usable. Skips without a GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "cuda_op_check.h"  // MG_SKIP_WITHOUT_CUDA
#include "kernels/ops.h"
#include "test_util.h"

namespace {

constexpr double kTol = 1e-5;

Tensor i32s(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty(DType::I32, {int64_t(v.size())});
  std::memcpy(t.data, v.data(), v.size() * sizeof(int32_t));
  return t;
}

std::vector<int32_t> ints(const Tensor& t) { return {t.ptr<int32_t>(), t.ptr<int32_t>() + t.numel()}; }

}  // namespace

TEST(CudaRecording, DeviceScalarOpsMatchTheCpu) {
  MG_SKIP_WITHOUT_CUDA();
  auto cpu = mg::make_cpu_backend(2);
  auto gpu = mg::make_cuda_backend(0);
  const int64_t R = 2, cap = 300, D = 64, H = 4;
  Tensor k = mgtest::random_tensor({R, cap, D}, 1), v = mgtest::random_tensor({R, cap, D}, 2);
  Tensor q = mgtest::random_tensor({R, 1, D}, 3);
  Tensor dk = gpu->upload(k), dv = gpu->upload(v), dq = gpu->upload(q);
  // Key counts on both sides of a chunk boundary (128) and the full cache.
  for (int32_t keys : {1, 5, 128, 129, 257, 300}) {
    Tensor want = cpu->attention_rows(q, k, v, keys, int(H), 0.125f, true);
    Tensor got = gpu->download(gpu->attention_rows_at(dq, dk, dv, gpu->upload(i32s({keys})), cap, int(H), 0.125f, true));
    EXPECT_LE(mgtest::rel_err(got, want), 1e-4) << keys << " keys";
  }
  Tensor src = mgtest::random_tensor({R, 3 * D}, 4);
  Tensor want = k.clone();
  cpu->write_kv(want, 77, src, D);
  Tensor dc = gpu->upload(k);
  gpu->write_kv_at(dc, gpu->upload(i32s({77})), gpu->upload(src), D);
  EXPECT_EQ(gpu->download(dc).to_vector(), want.to_vector());

  // q read in place from a fused q|k|v row (3D wide).
  {
    Tensor qkv = mgtest::random_tensor({R, 1, 3 * D}, 30);
    Tensor want_w = cpu->attention_rows(qkv, k, v, 200, int(H), 0.125f, true);
    Tensor got_w =
        gpu->download(gpu->attention_rows_at(gpu->upload(qkv), dk, dv, gpu->upload(i32s({200})), cap, int(H), 0.125f, true));
    EXPECT_EQ(mg::shape_str(got_w.shape), mg::shape_str(want_w.shape));
    EXPECT_LE(mgtest::rel_err(got_w, want_w), 1e-4) << "wide q";
    Tensor q2 = mgtest::random_tensor({5, 3 * D}, 31);
    Tensor k2 = k.slice0(0, 1).reshape({cap, D}), v2 = v.slice0(0, 1).reshape({cap, D});
    EXPECT_LE(mgtest::rel_err(gpu->download(gpu->attention(gpu->upload(q2), gpu->upload(k2), gpu->upload(v2), 40,
                                                           int(H), 0.125f, true)),
                              cpu->attention(q2, k2, v2, 40, int(H), 0.125f, true)),
              1e-4)
        << "wide q, 2-D attention";
  }

  // A half KV cache (half decoder weights): written with round-to-nearest-even like the CPU's cast,
  // and attended over exactly as the CPU does over the same f16 values.
  Tensor k16 = cpu->cast(k, DType::F16), v16 = cpu->cast(v, DType::F16);
  Tensor dk16 = gpu->upload(k16), dv16 = gpu->upload(v16);
  for (int32_t keys : {5, 129, 300}) {
    Tensor w = cpu->attention_rows(q, k16, v16, keys, int(H), 0.125f, true);
    Tensor g = gpu->download(gpu->attention_rows_at(dq, dk16, dv16, gpu->upload(i32s({keys})), cap, int(H), 0.125f, true));
    EXPECT_LE(mgtest::rel_err(g, w), 1e-4) << keys << " keys, f16 cache";
  }
  Tensor want16 = k16.clone();
  cpu->write_kv(want16, 77, src, D);
  Tensor dc16 = gpu->upload(k16);
  gpu->write_kv_at(dc16, gpu->upload(i32s({77})), gpu->upload(src), D);
  Tensor got16 = gpu->download(dc16);
  EXPECT_EQ(std::memcmp(got16.data, want16.data, want16.nbytes()), 0) << "f16 cache write";

  // K and V of a layer in one launch, both cache dtypes.
  for (const Tensor& base : {k, k16}) {
    Tensor wk = base.clone(), wv = base.clone();
    cpu->write_kv(wk, 9, src, D);
    cpu->write_kv(wv, 9, src, 2 * D);
    Tensor gk = gpu->upload(base), gv = gpu->upload(base);
    gpu->write_kv_pair_at(gk, gv, gpu->upload(i32s({9})), gpu->upload(src), D);
    Tensor hk = gpu->download(gk), hv = gpu->download(gv);
    EXPECT_EQ(std::memcmp(hk.data, wk.data, wk.nbytes()), 0) << "pair write K, " << mg::dtype_name(base.dtype);
    EXPECT_EQ(std::memcmp(hv.data, wv.data, wv.nbytes()), 0) << "pair write V, " << mg::dtype_name(base.dtype);
  }

  const std::vector<uint64_t> seeds = {3, 0x8000000000000001ull};
  Tensor st = Tensor::empty(DType::I64, {2});
  std::memcpy(st.data, seeds.data(), 16);
  Tensor logits = mgtest::random_tensor({4, 4, 2048}, 5, 6.0f);
  mg::SamplerParams sp;
  for (int32_t step : {0, 1, 999}) {
    Tensor a = cpu->sample_tokens(logits, true, 3.0f, sp, seeds, step);
    Tensor b = gpu->download(
        gpu->sample_tokens_at(gpu->upload(logits), true, 3.0f, sp, gpu->upload(st), gpu->upload(i32s({step}))));
    EXPECT_EQ(ints(b), ints(a)) << "step " << step;
  }
}

TEST(CudaRecording, DelayPatternStepMatchesTheCpu) {
  // Trap: the column is also one of the counters the kernel advances: it must be read first, and
  // a code gathered for the next step must see the token just written (CFG rows share it).
  MG_SKIP_WITHOUT_CUDA();
  auto cpu = mg::make_cpu_backend(1);
  auto gpu = mg::make_cuda_backend(0);
  const int64_t B = 3, K = 4, C = 9, R = 2 * B;
  Tensor pattern = Tensor::empty(DType::I32, {B, K, C});
  for (int64_t i = 0; i < pattern.numel(); ++i) pattern.ptr<int32_t>()[i] = (i % 3 == 0) ? -1 : int32_t(i % 50);
  Tensor tokens = Tensor::empty(DType::I32, {B, K});
  for (int64_t i = 0; i < tokens.numel(); ++i) tokens.ptr<int32_t>()[i] = int32_t(100 + i);
  Tensor buf = Tensor::zeros(DType::I32, {K * R + 5});
  buf.ptr<int32_t>()[K * R + 4] = 6;  // the column, last of the counters
  Tensor dpattern = gpu->upload(pattern), dbuf = gpu->upload(buf), dtokens = gpu->upload(tokens);
  auto views = [&](const Tensor& t) {
    return std::vector<Tensor>{t.slice0(0, K * R).reshape({K, R}), t.slice0(K * R, 5), t.slice0(K * R + 4, 1)};
  };
  auto hv = views(buf), dv = views(dbuf);
  for (int i = 0; i < 2; ++i) {
    cpu->delay_pattern_step_at(pattern, tokens, hv[2], hv[0], hv[1]);
    gpu->delay_pattern_step_at(dpattern, dtokens, dv[2], dv[0], dv[1]);
  }
  EXPECT_EQ(ints(gpu->download(dpattern)), ints(pattern));
  EXPECT_EQ(ints(gpu->download(dbuf)), ints(buf));
  EXPECT_EQ(buf.ptr<int32_t>()[K * R + 4], 8);
}

TEST(CudaRecording, ReplaysSeeNewInputsAndKeepTheirOutputs) {
  MG_SKIP_WITHOUT_CUDA();
  auto cpu = mg::make_cpu_backend(2);
  auto gpu = mg::make_cuda_backend(0);
  EXPECT_TRUE(gpu->records_launches());
  const int64_t R = 2, cap = 16, D = 32;
  Tensor w = mgtest::random_tensor({3 * D, D}, 6, 0.2f), table = mgtest::random_tensor({cap, D}, 7);
  Tensor dw = gpu->upload(w), dtable = gpu->upload(table);
  Tensor x = gpu->alloc(DType::F32, {R, D});
  Tensor in = gpu->alloc(DType::I32, {R + 1});  // positions of the rows | pos
  Tensor rows = in.slice0(0, R), pos = in.slice0(R, 1);
  Tensor cache = gpu->upload(Tensor::zeros(DType::F32, {R, cap, D}));
  Tensor out;
  int host_runs = 0;
  auto rec = gpu->record([&] {
    ++host_runs;
    Tensor y = gpu->linear(gpu->add(x, gpu->embedding(dtable, rows)), dw, nullptr);  // temporaries: arena
    gpu->write_kv_at(cache, pos, y, D);
    out = gpu->gelu(y);
  });
  EXPECT_EQ(host_runs, 1);  // captured once, never re-run
  Tensor want_cache = Tensor::zeros(DType::F32, {R, cap, D});
  for (int32_t p = 0; p < 4; ++p) {
    Tensor hx = mgtest::random_tensor({R, D}, 100 + p);
    gpu->upload_into(x, hx);
    gpu->upload_into(in, i32s({p, p, p}));
    rec->replay();
    Tensor pr = i32s({p, p});
    Tensor y = cpu->linear(cpu->add(hx, cpu->embedding(table, pr)), w, nullptr);
    cpu->write_kv(want_cache, p, y, D);
    EXPECT_LE(mgtest::rel_err(gpu->download(out), cpu->gelu(y)), kTol) << "replay " << p;
  }
  EXPECT_LE(mgtest::rel_err(gpu->download(cache), want_cache), kTol);
  EXPECT_EQ(host_runs, 1);
}

TEST(CudaRecording, FreesDuringCaptureAreDeferredAndLargeStepsGrowTheArena) {
  MG_SKIP_WITHOUT_CUDA();
  auto gpu = mg::make_cuda_backend(0);
  Tensor before = gpu->upload(mgtest::random_tensor({1024}, 8));
  const Tensor src_host = mgtest::random_tensor({1024}, 12);
  const Tensor src = gpu->upload(src_host);
  const int64_t n = int64_t(40) << 20;  // 160 MB: more than the first arena
  Tensor big_out;
  auto rec = gpu->record([&] {
    before = Tensor();  // a pool tensor dropped mid-capture
    Tensor big = gpu->alloc(DType::F32, {n});
    // Written before it is read: the arena is recycled device memory that may hold NaN or -inf
    // (and 0 * NaN is NaN). Written at its far end, so that the grown arena's whole extent is used.
    gpu->copy_rows(big, n - 1024, src);
    big_out = gpu->scale(big.slice0(n - 1024, 1024), 2.0f);
  });
  for (int i = 0; i < 3; ++i) rec->replay();
  std::vector<float> want = src_host.to_vector();
  for (float& v : want) v *= 2.0f;  // exact
  EXPECT_EQ(gpu->download(big_out).to_vector(), want);
  // The pool still works after the capture (a captured free would have broken later allocations).
  Tensor t = gpu->upload(mgtest::random_tensor({4096}, 9));
  EXPECT_EQ(gpu->download(t).to_vector(), mgtest::random_tensor({4096}, 9).to_vector());
}

TEST(CudaRecording, SynchronisingWhileRecordingFailsAndTheBackendStaysUsable) {
  MG_SKIP_WITHOUT_CUDA();
  auto gpu = mg::make_cuda_backend(0);
  Tensor x = gpu->upload(mgtest::random_tensor({64}, 10));
  EXPECT_THROW(gpu->record([&] { gpu->download(gpu->scale(x, 2.0f)); }), mg::Error);
  Tensor y = gpu->download(gpu->scale(x, 2.0f));
  Tensor want = mgtest::random_tensor({64}, 10);
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(y.f32()[i], 2.0f * want.f32()[i]);
}
