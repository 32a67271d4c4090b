// The CUDA op checker: every op of kernels/ops.h runs on the CPU backend (the reference, itself
// pinned to PyTorch by tests/parity/ops_test.cpp) and on the CUDA backend with the same random
// inputs; the outputs must agree to a relative error stated per op and dtype:
//   1e-5 elementwise / norms / softmax / layout (layout and casts must be exact),
//   1e-4 GEMM-based ops (summation order differs between OpenBLAS and cuBLAS),
//   1e-4 with f16/bf16 weights (both backends read the same rounded weights, so only the f32
//        summation order differs; a kernel that converts the weights wrongly is off by >= 1e-3),
//   1e-4 attention (sums over up to ~1500 keys in another order, split into chunks whose
//        softmax states are merged: the error class of a GEMM, not of an elementwise op),
//   narrow_last / copy_rows bit-exact, vq_nearest ids equal (a differing id is allowed only at
//        a near-tie, where the two distances agree to 1e-5 relative: the x.e GEMM differs).
// Each case also uses odd sizes (tile and warp edges) and the GPU output memory is poisoned with
// NaN before each run, so that an element a kernel forgets to write fails the comparison.
// Every test skips when no CUDA device is present (this binary is built in every configuration).
// The ops of the codec (convolutions, pad, group norm, LSTM, RVQ search) are checked the same way
// in cuda_codec_ops_test.cpp; the shared checker parts are in cuda_op_check.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda_op_check.h"
#include "kernels/ops.h"
#include "test_util.h"

using namespace mgcudatest;

TEST(CudaOps, UploadDownloadRoundTripsEveryDtype) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    Tensor h = to_dtype(random_tensor({3, 37}, 1), t);
    expect_bit_equal(b.down(b.up(h)), h, mg::dtype_name(t));
  }
  for (DType t : {DType::I32, DType::I64}) {
    Tensor h = ids_tensor(t, {5, 7}, 1000, 2);
    expect_bit_equal(b.down(b.up(h)), h, mg::dtype_name(t));
  }
  Tensor d = b.up(random_tensor({4}, 3));
  EXPECT_EQ(d.device, mg::Device::CUDA);
  EXPECT_THROW(b.gpu->upload(d), mg::Error);                      // already on the device
  EXPECT_THROW(b.gpu->download(random_tensor({4}, 3)), mg::Error);  // not on the device
  Tensor empty = b.gpu->alloc(DType::F32, {0, 5});
  EXPECT_TRUE(empty.defined());
  EXPECT_EQ(b.down(empty).numel(), 0);
}

TEST(CudaOps, LinearF32) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { Shape x; int64_t n; bool bias; };
  for (const Case& c : {Case{{1, 64}, 48, true}, Case{{3, 37}, 129, false}, Case{{17, 256}, 96, true},
                        Case{{2, 5, 129}, 67, true}, Case{{130, 33}, 65, false}}) {
    const int64_t k = c.x.back();
    Tensor x = random_tensor(c.x, 10), w = random_tensor({c.n, k}, 11, 0.2f), bias = random_tensor({c.n}, 12);
    b.poison();
    Tensor want = b.cpu->linear(x, w, c.bias ? &bias : nullptr);
    Tensor bd = b.up(bias);
    Tensor got = b.down(b.gpu->linear(b.up(x), b.up(w), c.bias ? &bd : nullptr));
    expect_close(got, want, kTolGemm, "linear f32 x" + mg::shape_str(c.x) + " n=" + std::to_string(c.n));
  }
}

TEST(CudaOps, LinearHalfWeightsGemvAndTiledPaths) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  // Rows 1..8 take the GEMV kernel, 9 and more the tiled one; K and N off the tile sizes.
  struct Case { int64_t m, k, n; };
  for (DType wt : {DType::F16, DType::BF16}) {
    for (const Case& c : {Case{1, 64, 48}, Case{4, 37, 129}, Case{8, 200, 33}, Case{9, 129, 65},
                          Case{70, 200, 130}, Case{65, 17, 1}}) {
      Tensor x = random_tensor({c.m, c.k}, 20), bias = random_tensor({c.n}, 22);
      Tensor w = to_dtype(random_tensor({c.n, c.k}, 21, 0.2f), wt);
      b.poison();
      Tensor want = b.cpu->linear(x, w, &bias);
      Tensor bd = b.up(bias);
      Tensor got = b.down(b.gpu->linear(b.up(x), b.up(w), &bd));
      expect_close(got, want, kTolHalfWeights,
                   std::string("linear ") + mg::dtype_name(wt) + " m=" + std::to_string(c.m) + " k=" +
                       std::to_string(c.k) + " n=" + std::to_string(c.n));
      Tensor want_nb = b.cpu->linear(x, w, nullptr);
      Tensor got_nb = b.down(b.gpu->linear(b.up(x), b.up(w), nullptr));
      expect_close(got_nb, want_nb, kTolHalfWeights, "linear half weights, no bias");
    }
  }
}

TEST(CudaOps, LinearFusedGeluAndResidualOnEveryPath) {
  // Trap: the decode step fuses the FFN's GELU and the residual adds into the linear (the GEMV's
  // epilogue; an epilogue kernel after cuBLAS / the tiled kernel); every path must equal the
  // composition add(residual, gelu(linear)). K = 1024 takes the 16-byte-load GEMV, K = 37 the
  // scalar one, and a misaligned x (a view one float in) the scalar one too.
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { int64_t m, k, n; };
  for (DType wt : {DType::F32, DType::F16, DType::BF16}) {
    for (const Case& c : {Case{2, 1024, 520}, Case{3, 4096, 72}, Case{2, 37, 65}, Case{9, 1024, 130}}) {
      Tensor x = random_tensor({c.m, c.k}, 30), bias = random_tensor({c.n}, 32), res = random_tensor({c.m, c.n}, 33);
      Tensor w = to_dtype(random_tensor({c.n, c.k}, 31, 0.05f), wt);
      Tensor dx = b.up(x), dw = b.up(w), db = b.up(bias), dres = b.up(res);
      for (int mode = 0; mode < 3; ++mode) {
        mg::LinearFusion f, g;
        f.gelu = mode != 1;
        f.residual = mode != 0 ? &res : nullptr;
        g.gelu = f.gelu;
        g.residual = f.residual ? &dres : nullptr;
        b.poison();
        Tensor want = b.cpu->linear_fused(x, w, &bias, f);
        Tensor got = b.down(b.gpu->linear_fused(dx, dw, &db, g));
        expect_close(got, want, wt == DType::F32 ? kTolGemm : kTolHalfWeights,
                     std::string("linear_fused ") + mg::dtype_name(wt) + " m=" + std::to_string(c.m) +
                         " k=" + std::to_string(c.k) + " gelu=" + std::to_string(f.gelu) +
                         " residual=" + std::to_string(f.residual != nullptr));
      }
    }
  }
  // x one float into a larger buffer: not 16-byte aligned, so the scalar GEMV must take it.
  Tensor big = random_tensor({2 * 1024 + 1}, 34);
  Tensor w = to_dtype(random_tensor({64, 1024}, 35, 0.05f), DType::BF16);
  Tensor dbig = b.up(big);
  Tensor dx = Tensor::view(dbig.ptr<float>() + 1, DType::F32, {2, 1024}, mg::Device::CUDA, dbig.owner);
  Tensor hx = Tensor::view(big.ptr<float>() + 1, DType::F32, {2, 1024}, mg::Device::CPU, big.owner);
  expect_close(b.down(b.gpu->linear(dx, b.up(w), nullptr)), b.cpu->linear(hx, w, nullptr), kTolHalfWeights,
               "linear bf16 with a misaligned x");
}

TEST(CudaOps, MatmulBatchedTransposedAndShared) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { Shape a, bs; bool trans; float alpha; };
  for (const Case& c : {Case{{5, 7}, {7, 9}, false, 1.0f}, Case{{3, 17, 33}, {3, 33, 20}, false, 0.5f},
                        Case{{3, 17, 33}, {3, 20, 33}, true, 0.125f}, Case{{2, 3, 9, 16}, {2, 3, 11, 16}, true, 1.0f},
                        Case{{4, 10, 12}, {12, 6}, false, 2.0f}, Case{{4, 10, 12}, {6, 12}, true, 1.0f}}) {
    Tensor a = random_tensor(c.a, 30), bm = random_tensor(c.bs, 31);
    b.poison();
    Tensor want = b.cpu->matmul(a, bm, c.trans, c.alpha);
    Tensor got = b.down(b.gpu->matmul(b.up(a), b.up(bm), c.trans, c.alpha));
    expect_close(got, want, kTolGemm, "matmul " + mg::shape_str(c.a) + " x " + mg::shape_str(c.bs));
  }
  EXPECT_THROW(b.gpu->matmul(b.up(random_tensor({3, 4}, 1)), b.up(random_tensor({5, 6}, 2)), false), mg::Error);
  EXPECT_THROW(b.gpu->matmul(b.up(random_tensor({2, 3, 4}, 1)), b.up(random_tensor({3, 4, 6}, 2)), false), mg::Error);
}

TEST(CudaOps, AddMulWithSuffixBroadcast) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { Shape a, bs; };
  for (const Case& c : {Case{{7}, {7}}, Case{{3, 5, 129}, {3, 5, 129}}, Case{{3, 5, 129}, {129}},
                        Case{{3, 5, 129}, {5, 129}}, Case{{4, 33}, {1, 33}}, Case{{2, 100003}, {100003}}}) {
    Tensor x = random_tensor(c.a, 40), y = random_tensor(c.bs, 41);
    b.poison();
    expect_close(b.down(b.gpu->add(b.up(x), b.up(y))), b.cpu->add(x, y), kTolElementwise, "add " + mg::shape_str(c.bs));
    expect_close(b.down(b.gpu->mul(b.up(x), b.up(y))), b.cpu->mul(x, y), kTolElementwise, "mul " + mg::shape_str(c.bs));
  }
  EXPECT_THROW(b.gpu->add(b.up(random_tensor({3, 5}, 1)), b.up(random_tensor({3}, 2))), mg::Error);
  EXPECT_THROW(b.gpu->add(random_tensor({3}, 1), b.up(random_tensor({3}, 2))), mg::Error);  // a on the CPU
}

TEST(CudaOps, UnaryActivations) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  for (const Shape& s : {Shape{1}, Shape{3, 333}, Shape{2, 3, 100003}}) {
    Tensor x = random_tensor(s, 50, 4.0f);  // [-4, 4): both branches of elu/relu, gelu's tails
    Tensor xd = b.up(x);
    const std::string tag = " " + mg::shape_str(s);
    b.poison();
    expect_close(b.down(b.gpu->scale(xd, -0.37f)), b.cpu->scale(x, -0.37f), kTolElementwise, "scale" + tag);
    expect_close(b.down(b.gpu->elu(xd, 1.0f)), b.cpu->elu(x, 1.0f), kTolElementwise, "elu" + tag);
    expect_close(b.down(b.gpu->elu(xd, 0.5f)), b.cpu->elu(x, 0.5f), kTolElementwise, "elu(0.5)" + tag);
    expect_close(b.down(b.gpu->gelu(xd)), b.cpu->gelu(x), kTolElementwise, "gelu" + tag);
    expect_close(b.down(b.gpu->relu(xd)), b.cpu->relu(x), kTolElementwise, "relu" + tag);
  }
}

TEST(CudaOps, CastsAreBitExact) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  Tensor x = random_tensor({5, 1001}, 60, 300.0f);  // values that need rounding in both half types
  for (DType to : {DType::F16, DType::BF16, DType::F32}) {
    Tensor want = b.cpu->cast(x, to);
    expect_bit_equal(b.down(b.gpu->cast(b.up(x), to)), want, std::string("f32 -> ") + mg::dtype_name(to));
    for (DType to2 : {DType::F32, DType::F16, DType::BF16}) {
      expect_bit_equal(b.down(b.gpu->cast(b.up(want), to2)), b.cpu->cast(want, to2),
                       std::string(mg::dtype_name(to)) + " -> " + mg::dtype_name(to2));
    }
  }
  Tensor i32 = ids_tensor(DType::I32, {3, 77}, 1 << 30, 61);
  Tensor i64 = b.cpu->cast(i32, DType::I64);
  expect_bit_equal(b.down(b.gpu->cast(b.up(i32), DType::I64)), i64, "i32 -> i64");
  expect_bit_equal(b.down(b.gpu->cast(b.up(i64), DType::I32)), i32, "i64 -> i32");
  Tensor big = Tensor::empty(DType::I64, {2});
  big.ptr<int64_t>()[0] = 1;
  big.ptr<int64_t>()[1] = int64_t(1) << 40;
  EXPECT_THROW(b.gpu->cast(b.up(big), DType::I32), mg::Error);
  EXPECT_THROW(b.gpu->cast(b.up(x), DType::I32), mg::Error);
}

TEST(CudaOps, LayerNormAndRmsNorm) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  for (const Shape& s : {Shape{5, 7}, Shape{3, 4, 129}, Shape{2, 1024}, Shape{1, 3000}, Shape{33}}) {
    const int64_t d = s.back();
    Tensor x = b.cpu->add(random_tensor(s, 70, 2.0f), random_tensor({d}, 71, 3.0f));  // rows with a mean
    Tensor g = random_tensor({d}, 72), beta = random_tensor({d}, 73);
    Tensor xd = b.up(x), gd = b.up(g), bd = b.up(beta);
    const std::string tag = " " + mg::shape_str(s);
    b.poison();
    expect_close(b.down(b.gpu->layer_norm(xd, gd, &bd, 1e-5f)), b.cpu->layer_norm(x, g, &beta, 1e-5f),
                 kTolElementwise, "layer_norm" + tag);
    expect_close(b.down(b.gpu->layer_norm(xd, gd, nullptr, 1e-5f)), b.cpu->layer_norm(x, g, nullptr, 1e-5f),
                 kTolElementwise, "layer_norm no beta" + tag);
    expect_close(b.down(b.gpu->rms_norm(xd, gd, 1e-6f)), b.cpu->rms_norm(x, g, 1e-6f), kTolElementwise,
                 "rms_norm" + tag);
  }
  EXPECT_THROW(b.gpu->layer_norm(b.up(random_tensor({2, 8}, 1)), b.up(random_tensor({7}, 2)), nullptr, 1e-5f),
               mg::Error);
}

TEST(CudaOps, SoftmaxIncludingMaskedRows) {
  // Trap: a row whose entries are all -inf (a fully masked attention row) must give zeros, not
  // NaN (exp(-inf - -inf)); rows with some -inf entries must give those entries exactly 0.
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  for (const Shape& s : {Shape{5, 7}, Shape{3, 2049}, Shape{1, 1}, Shape{2, 3, 33}}) {
    Tensor x = random_tensor(s, 90, 8.0f);
    b.poison();
    expect_close(b.down(b.gpu->softmax(b.up(x))), b.cpu->softmax(x), kTolElementwise, "softmax " + mg::shape_str(s));
  }
  const float inf = std::numeric_limits<float>::infinity();
  Tensor m = random_tensor({4, 37}, 91, 5.0f);
  float* p = m.f32();
  for (int i = 0; i < 37; ++i) p[37 + i] = -inf;              // row 1: all masked
  for (int i = 0; i < 37; i += 2) p[2 * 37 + i] = -inf;      // row 2: half masked
  p[3 * 37 + 36] = -inf;                                     // row 3: last masked
  b.poison();
  Tensor got = b.down(b.gpu->softmax(b.up(m)));
  expect_close(got, b.cpu->softmax(m), kTolElementwise, "softmax masked");
  for (int i = 0; i < 37; ++i) EXPECT_EQ(got.f32()[37 + i], 0.0f) << "all -inf row, col " << i;
  for (int i = 0; i < 37; i += 2) EXPECT_EQ(got.f32()[2 * 37 + i], 0.0f) << "masked col " << i;
}

TEST(CudaOps, TransposeLastTwoDims) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  for (const Shape& s : {Shape{5, 7}, Shape{3, 33, 65}, Shape{2, 3, 31, 40}, Shape{1, 1000}}) {
    Tensor x = random_tensor(s, 130);
    b.poison();
    expect_bit_equal(b.down(b.gpu->transpose(b.up(x))), b.cpu->transpose(x), "transpose " + mg::shape_str(s));
  }
  Tensor h = to_dtype(random_tensor({17, 9}, 131), DType::F16);
  expect_bit_equal(b.down(b.gpu->transpose(b.up(h))), b.cpu->transpose(h), "transpose f16");
  Tensor ids = ids_tensor(DType::I64, {2, 4, 3}, 1 << 20, 132);
  expect_bit_equal(b.down(b.gpu->transpose(b.up(ids))), b.cpu->transpose(ids), "transpose i64");
}

TEST(CudaOps, EmbeddingLookups) {
  // Trap: an out-of-range id (MusicGen's special token 2048 against a 2048-row table, say) must
  // throw instead of reading another tensor's memory; the backend must stay usable afterwards.
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  for (DType tt : {DType::F32, DType::F16, DType::BF16}) {
    Tensor table = to_dtype(random_tensor({100, 24}, 140), tt);
    Tensor td = b.up(table);
    for (DType it : {DType::I32, DType::I64}) {
      for (const Shape& s : {Shape{37}, Shape{2, 5}, Shape{1}}) {
        Tensor ids = ids_tensor(it, s, 100, 141);
        b.poison();
        expect_close(b.down(b.gpu->embedding(td, b.up(ids))), b.cpu->embedding(table, ids), kTolElementwise,
                     std::string("embedding ") + mg::dtype_name(tt) + " ids " + mg::dtype_name(it) + mg::shape_str(s));
      }
    }
  }
  Tensor table = random_tensor({100, 24}, 142);
  Tensor td = b.up(table);
  for (int64_t bad : {int64_t(100), int64_t(-1)}) {
    Tensor ids = ids_tensor(DType::I64, {9}, 100, 143);
    ids.ptr<int64_t>()[4] = bad;
    EXPECT_THROW(b.gpu->embedding(td, b.up(ids)), mg::Error) << "id " << bad;
  }
  Tensor ok = ids_tensor(DType::I32, {9}, 100, 144);
  expect_close(b.down(b.gpu->embedding(td, b.up(ok))), b.cpu->embedding(table, ok), kTolElementwise,
               "embedding after a failed lookup");
}

TEST(CudaOps, EmbeddingSumOfCodebooks) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  std::vector<Tensor> tables, dev;
  for (int k = 0; k < 4; ++k) tables.push_back(random_tensor({2049, 48}, 150 + k));
  for (const Tensor& t : tables) dev.push_back(b.up(t));
  std::vector<const Tensor*> tp, dp;
  for (int k = 0; k < 4; ++k) {
    tp.push_back(&tables[k]);
    dp.push_back(&dev[k]);
  }
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t n : {int64_t(1), int64_t(13), int64_t(300)}) {
      Tensor ids = ids_tensor(it, {4, n}, 2049, 160);
      b.poison();
      expect_close(b.down(b.gpu->embedding_sum(dp, b.up(ids))), b.cpu->embedding_sum(tp, ids), kTolElementwise,
                   std::string("embedding_sum ids ") + mg::dtype_name(it) + " n=" + std::to_string(n));
    }
  }
  Tensor bad = ids_tensor(DType::I64, {4, 6}, 2049, 161);
  bad.ptr<int64_t>()[2 * 6 + 3] = 2049;
  EXPECT_THROW(b.gpu->embedding_sum(dp, b.up(bad)), mg::Error);
  EXPECT_THROW(b.gpu->embedding_sum(dp, b.up(ids_tensor(DType::I64, {3, 6}, 2049, 162))), mg::Error);
}

TEST(CudaOps, ShapeAndDeviceErrorsThrow) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  Tensor x = b.up(random_tensor({4, 8}, 1));
  EXPECT_THROW(b.gpu->linear(x, b.up(random_tensor({5, 7}, 2)), nullptr), mg::Error);
  EXPECT_THROW(b.gpu->linear(x, random_tensor({5, 8}, 2), nullptr), mg::Error);  // weight on the CPU
  Tensor bias = b.up(random_tensor({4}, 3));
  EXPECT_THROW(b.gpu->linear(x, b.up(random_tensor({5, 8}, 2)), &bias), mg::Error);
  EXPECT_THROW(b.gpu->relu(random_tensor({4}, 1)), mg::Error);
  EXPECT_THROW(b.gpu->softmax(b.gpu->alloc(DType::I32, {3})), mg::Error);
  EXPECT_THROW(b.gpu->conv_transpose1d(b.up(random_tensor({1, 3, 5}, 1)), b.up(random_tensor({4, 2, 3}, 2)),
                                       nullptr, 2),
               mg::Error);
  EXPECT_THROW(b.gpu->transpose(b.up(random_tensor({4}, 1))), mg::Error);
}

TEST(CudaOps, EmptyTensorsDoNotLaunch) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  Tensor x = b.gpu->alloc(DType::F32, {0, 8});
  EXPECT_EQ(b.down(b.gpu->linear(x, b.up(random_tensor({5, 8}, 1)), nullptr)).shape, (Shape{0, 5}));
  EXPECT_EQ(b.down(b.gpu->softmax(x)).shape, (Shape{0, 8}));
  EXPECT_EQ(b.down(b.gpu->relu(x)).shape, (Shape{0, 8}));
  EXPECT_EQ(b.down(b.gpu->transpose(x)).shape, (Shape{8, 0}));
  b.gpu->synchronize();
}

// ---- the ops that kernels/backend_fallbacks.cpp implements through the host; the CUDA backend
//      overrides them with device kernels (the CPU backend's results here ARE those defaults) ----

TEST(CudaOps, NarrowLastEveryDtype) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { Shape x; int64_t start, len; };
  for (const Case& c : {Case{{3, 10}, 2, 5}, Case{{2, 3, 37}, 0, 37}, Case{{2, 3, 37}, 36, 1}, Case{{4, 1001}, 7, 0},
                        Case{{1, 1, 80000}, 1234, 70000}, Case{{17}, 3, 9}}) {
    const std::string tag = "narrow_last " + mg::shape_str(c.x) + " start=" + std::to_string(c.start) + " len=" +
                            std::to_string(c.len);
    Tensor x = random_tensor(c.x, 180);
    for (DType t : {DType::F32, DType::F16}) {
      Tensor xt = to_dtype(x, t);
      b.poison();
      expect_bit_equal(b.down(b.gpu->narrow_last(b.up(xt), c.start, c.len)), b.cpu->narrow_last(xt, c.start, c.len),
                       tag + " " + mg::dtype_name(t));
    }
    Tensor ids = ids_tensor(DType::I64, c.x, 1 << 20, 181);
    expect_bit_equal(b.down(b.gpu->narrow_last(b.up(ids), c.start, c.len)), b.cpu->narrow_last(ids, c.start, c.len),
                     tag + " i64");
  }
  Tensor x = b.up(random_tensor({2, 10}, 182));
  EXPECT_THROW(b.gpu->narrow_last(x, 6, 5), mg::Error);
  EXPECT_THROW(b.gpu->narrow_last(x, -1, 2), mg::Error);
  EXPECT_THROW(b.gpu->narrow_last(random_tensor({2, 10}, 182), 0, 2), mg::Error);  // on the CPU
}

TEST(CudaOps, CopyRowsInPlace) {
  // Trap: copy_rows writes INTO an existing tensor (the KV cache): the rows around the target
  // must keep their values, and the default (host) version throws on a device tensor, which is
  // what stopped MusicGen from running on CUDA before this override.
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { Shape dst, src; int64_t row0; };
  for (const Case& c : {Case{{10, 6}, {3, 6}, 4}, Case{{10, 6}, {1, 6}, 0}, Case{{5, 2, 3}, {2, 2, 3}, 3},
                        Case{{2048, 24}, {1, 24}, 2047}, Case{{4, 7}, {0, 7}, 4}}) {
    Tensor dst = random_tensor(c.dst, 190), src = random_tensor(c.src, 191);
    Tensor want = dst.clone();
    b.cpu->copy_rows(want, c.row0, src);
    Tensor dd = b.up(dst);
    b.gpu->copy_rows(dd, c.row0, b.up(src));
    expect_bit_equal(b.down(dd), want, "copy_rows " + mg::shape_str(c.src) + " at " + std::to_string(c.row0) +
                                           " of " + mg::shape_str(c.dst));
  }
  Tensor di = b.up(ids_tensor(DType::I32, {6, 5}, 1000, 192));
  Tensor si = ids_tensor(DType::I32, {2, 5}, 1000, 193);
  Tensor want = b.down(di);
  b.cpu->copy_rows(want, 1, si);
  b.gpu->copy_rows(di, 1, b.up(si));
  expect_bit_equal(b.down(di), want, "copy_rows i32");
  Tensor d = b.up(random_tensor({10, 6}, 194));
  EXPECT_THROW(b.gpu->copy_rows(d, 8, b.up(random_tensor({3, 6}, 1))), mg::Error);       // past the end
  EXPECT_THROW(b.gpu->copy_rows(d, 0, b.up(random_tensor({3, 5}, 1))), mg::Error);       // row size
  EXPECT_THROW(b.gpu->copy_rows(d, 0, b.up(ids_tensor(DType::I32, {3, 6}, 9, 1))), mg::Error);  // dtype
  EXPECT_THROW(b.gpu->copy_rows(d, 0, random_tensor({3, 6}, 1)), mg::Error);             // src on the CPU
}

TEST(CudaOps, AttentionDecodePrefillAndCross) {
  // Traps: (1) causal offsets: query i of S sits at position T - S + i, so S queries over T keys
  // see T - S + 1 .. T keys (not 1 .. S); (2) only the first T rows of k/v are valid (a KV cache
  // allocated for its capacity): the rows past T hold NaN here and must never be read; (3) the
  // chunked softmax: a query whose visible keys end just past a chunk boundary (one key in the
  // last chunk) and peaky scores (a chunk's local max far below the global one).
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { int64_t s, t, rows; int heads; int64_t dh; bool causal; float qscale; };
  for (const Case& c : {Case{1, 1, 8, 4, 6, true, 1.0f},          // first decode step of the tiny model
                        Case{1, 1500, 2048, 16, 64, true, 3.0f},   // late decode step: 12 chunks merged
                        Case{1, 129, 200, 4, 6, true, 3.0f},       // one key in the last chunk
                        Case{2, 128, 128, 4, 6, true, 3.0f},       // exactly one chunk
                        Case{5, 260, 300, 4, 32, true, 3.0f},      // causal queries across a boundary
                        Case{7, 7, 7, 2, 8, true, 1.0f},           // prefill from an empty cache
                        Case{300, 300, 300, 2, 16, true, 1.0f},    // melody-prefix-sized prefill
                        Case{20, 12, 12, 4, 6, false, 3.0f},       // cross-attention: S > T
                        Case{3, 77, 77, 2, 200, false, 1.0f},      // dh > 128 threads
                        Case{2, 300, 300, 1, 256, true, 1.0f}}) {  // the largest head size
    const int64_t D = c.heads * c.dh;
    Tensor q = random_tensor({c.s, D}, 210, c.qscale), k = random_tensor({c.rows, D}, 211);
    Tensor v = random_tensor({c.rows, D}, 212);
    for (int64_t i = c.t * D; i < c.rows * D; ++i) k.f32()[i] = v.f32()[i] = std::numeric_limits<float>::quiet_NaN();
    const float scale = 1.0f / std::sqrt(float(c.dh));
    b.poison();
    Tensor want = b.cpu->attention(q, k, v, c.t, c.heads, scale, c.causal);
    Tensor got = b.down(b.gpu->attention(b.up(q), b.up(k), b.up(v), c.t, c.heads, scale, c.causal));
    expect_close(got, want, kTolAttention,
                 "attention S=" + std::to_string(c.s) + " T=" + std::to_string(c.t) + " H=" + std::to_string(c.heads) +
                     " dh=" + std::to_string(c.dh) + (c.causal ? " causal" : " full"));
  }
  Tensor q = b.up(random_tensor({2, 8}, 1)), k = b.up(random_tensor({4, 8}, 2));
  EXPECT_THROW(b.gpu->attention(q, k, k, 5, 2, 1.0f, true), mg::Error);   // T beyond k's rows
  EXPECT_THROW(b.gpu->attention(q, k, k, 1, 2, 1.0f, true), mg::Error);   // 2 causal queries, 1 key
  EXPECT_THROW(b.gpu->attention(q, k, k, 4, 3, 1.0f, true), mg::Error);   // 8 not divisible by 3 heads
  Tensor wide = b.up(random_tensor({2, 257}, 3));
  EXPECT_THROW(b.gpu->attention(wide, wide, wide, 2, 1, 1.0f, false), mg::Error);  // head size > 256
}
