// The CPU ops beyond parity: input checks, thread-count invariance, the AVX2 / portable switch,
// edge cases (fully masked softmax rows, reflect padding limits, bad embedding ids) and the
// tiled paths of the convolutions that the small parity goldens are too short to reach.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_ops.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::Tensor;
using mgtest::random_tensor;
namespace cpu = mg::cpu;

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape == b.shape && a.dtype == b.dtype && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

Tensor ids_tensor(const std::vector<int64_t>& v, const mg::Shape& s) {
  Tensor t = Tensor::empty(DType::I64, s);
  std::memcpy(t.data, v.data(), v.size() * 8);
  return t;
}

// Expects `fn` to throw an mg::Error whose message contains every one of `parts`.
template <typename F>
void expect_error(F fn, std::initializer_list<const char*> parts) {
  try {
    fn();
    ADD_FAILURE() << "no mg::Error thrown";
  } catch (const mg::Error& e) {
    for (const char* p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

// Plain loops, the slowest way to be sure: y[o, t] = b[o] + sum_c,k w[o, c, k] x[c, t*s + k*d].
Tensor naive_conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int s, int d) {
  const int64_t cin = x.dim(0), t = x.dim(1), cout = w.dim(0), k = w.dim(2);
  const int64_t tout = (t - d * (k - 1) - 1) / s + 1;
  Tensor y = Tensor::empty(DType::F32, {cout, tout});
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t j = 0; j < tout; ++j) {
      double acc = b.f32()[o];
      for (int64_t c = 0; c < cin; ++c)
        for (int64_t q = 0; q < k; ++q) acc += double(w.f32()[(o * cin + c) * k + q]) * x.f32()[c * t + j * s + q * d];
      y.f32()[o * tout + j] = float(acc);
    }
  return y;
}

Tensor naive_conv_transpose1d(const Tensor& x, const Tensor& w, int s) {
  const int64_t cin = x.dim(0), t = x.dim(1), cout = w.dim(1), k = w.dim(2);
  const int64_t tout = (t - 1) * s + k;
  std::vector<double> acc(size_t(cout * tout), 0.0);
  for (int64_t c = 0; c < cin; ++c)
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t j = 0; j < t; ++j)
        for (int64_t q = 0; q < k; ++q) acc[o * tout + j * s + q] += double(x.f32()[c * t + j]) * w.f32()[(c * cout + o) * k + q];
  Tensor y = Tensor::empty(DType::F32, {cout, tout});
  for (size_t i = 0; i < acc.size(); ++i) y.f32()[i] = float(acc[i]);
  return y;
}

// Chunks are claimed by whichever thread is free (the caller runs those no worker has started), but
// their boundaries stay chunk_range's: with far more threads than cores, call after call, every
// chunk runs exactly once with the same bounds.
TEST(ThreadPool, ClaimedChunksKeepTheirBoundaries) {
  cpu::ThreadPool pool(12);
  for (int call = 0; call < 200; ++call) {
    const int64_t n = 37 + call;
    std::vector<std::atomic<int>> runs(size_t(pool.size()));
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int i = 0; i < pool.size(); ++i) {
        int64_t cb, ce;
        cpu::chunk_range(n, pool.size(), i, &cb, &ce);
        if (cb == b && ce == e) runs[size_t(i)]++;
      }
    });
    for (auto& r : runs) ASSERT_EQ(r.load(), 1) << "call " << call;
  }
}

TEST(ThreadPool, CoversEveryIndexOnceAndRethrows) {
  cpu::ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3);
  std::vector<std::atomic<int>> hits(1001);
  pool.parallel_for(1001, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i]++;
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_THROW(pool.parallel_for(10, [](int64_t b, int64_t) { if (b > 0) throw mg::Error("chunk failed"); }),
               mg::Error);
  // A nested call runs serially instead of deadlocking.
  std::atomic<int> inner{0};
  pool.parallel_for(4, [&](int64_t, int64_t) {
    pool.parallel_for(10, [&](int64_t ib, int64_t ie) { inner += int(ie - ib); });
  });
  EXPECT_EQ(inner.load(), 30);
}

// Workers poll between jobs, then sleep: jobs after a pause longer than the poll, one pool shared
// by several threads (all but one fall back to serial), private pools side by side, and pools
// destroyed while their workers poll, all cover every index once (plain ints: the sanitizer
// builds see any overlap or missing join).
TEST(ThreadPool, PollingSleepingSharedAndPrivatePools) {
  cpu::ThreadPool shared(2);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      cpu::ThreadPool own(2);
      for (int call = 0; call < 300; ++call) {
        std::vector<int> a(64, 0), b(64, 0);
        shared.parallel_for(64, [&](int64_t s, int64_t e) { for (int64_t i = s; i < e; ++i) a[size_t(i)]++; });
        own.parallel_for(64, [&](int64_t s, int64_t e) { for (int64_t i = s; i < e; ++i) b[size_t(i)]++; });
        for (int i = 0; i < 64; ++i) bad += (a[size_t(i)] != 1) + (b[size_t(i)] != 1);
        if (call % 100 == t) std::this_thread::sleep_for(std::chrono::microseconds(2 * cpu::ThreadPool::kSpinMicros));
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  for (int i = 0; i < 50; ++i) {
    cpu::ThreadPool p(2);
    if (i % 2) p.parallel_for(8, [](int64_t, int64_t) {});
  }
}

// The contract (kernels/op_checks.h) is checked by the public Backend ops, so errors are tested
// through a CPU backend; the cpu:: functions take inputs that already meet it.
TEST(CpuOps, ShapeErrorsNameTheOpAndShapes) {
  auto be = mg::make_cpu_backend(1);
  Tensor x = random_tensor({4, 8}, 1);
  expect_error([&] { be->linear(x, random_tensor({5, 7}, 2), nullptr); }, {"linear", "[4, 8]", "[5, 7]"});
  Tensor bias = random_tensor({6}, 3);
  expect_error([&] { be->linear(x, random_tensor({5, 8}, 2), &bias); }, {"linear", "bias", "[6]"});
  expect_error([&] { be->matmul(x, random_tensor({7, 3}, 2), false); }, {"matmul", "[4, 8]", "[7, 3]"});
  expect_error([&] { be->add(x, random_tensor({4}, 2)); }, {"add", "[4]", "[4, 8]"});
  expect_error([&] { be->mul(x, random_tensor({3, 8}, 2)); }, {"mul", "[3, 8]"});
  expect_error([&] { be->layer_norm(x, random_tensor({7}, 2), nullptr, 1e-5f); }, {"layer_norm", "[7]"});
  expect_error([&] { be->rms_norm(x, random_tensor({9}, 2), 1e-6f); }, {"rms_norm", "[9]"});
  Tensor g6 = random_tensor({6}, 4);
  expect_error([&] { be->group_norm(random_tensor({1, 6, 5}, 2), 4, g6, g6, 1e-5f); }, {"group_norm", "4 groups"});
  Tensor x3 = random_tensor({1, 4, 16}, 5);
  expect_error([&] { be->conv1d(x3, random_tensor({2, 3, 3}, 2), nullptr, 1, 1); }, {"conv1d", "[2, 3, 3]"});
  expect_error([&] { be->conv1d(x3, random_tensor({2, 4, 9}, 2), nullptr, 1, 2); }, {"conv1d", "shorter"});
  expect_error([&] { be->conv_transpose1d(x3, random_tensor({3, 2, 4}, 2), nullptr, 2); },
               {"conv_transpose1d", "[3, 2, 4]"});
  expect_error([&] { be->transpose(random_tensor({5}, 2)); }, {"transpose", "[5]"});
  expect_error([&] { be->linear(ids_tensor({1, 2}, {1, 2}), random_tensor({3, 2}, 2), nullptr); },
               {"linear x", "f32", "i64"});
  mg::LstmLayerWeights w{random_tensor({16, 3}, 1), random_tensor({16, 4}, 2), random_tensor({16}, 3),
                         random_tensor({16}, 4)};
  expect_error([&] { be->lstm(random_tensor({5, 2}, 6), w); }, {"lstm", "w_ih", "[5, 2]"});
  // A tensor that claims to live on a GPU is refused before anything reads it.
  Tensor fake = Tensor::view(reinterpret_cast<void*>(0x10), DType::F32, {4, 8}, mg::Device::CUDA, nullptr);
  expect_error([&] { be->relu(fake); }, {"relu", "cuda"});
}

// Trap: reflect padding as large as the input has no sample to mirror; torch refuses it and so do we
// (EnCodec's codec/ pads short inputs with zeros first for exactly this reason).
TEST(CpuOps, ReflectPadAtLeastInputLengthThrows) {
  auto be = mg::make_cpu_backend(1);
  Tensor x = random_tensor({2, 5}, 7);
  EXPECT_NO_THROW(be->pad1d(x, 4, 4, mg::PadMode::Reflect));
  expect_error([&] { be->pad1d(x, 5, 0, mg::PadMode::Reflect); }, {"reflect", "5"});
  expect_error([&] { be->pad1d(x, 0, 7, mg::PadMode::Reflect); }, {"reflect", "7"});
  EXPECT_NO_THROW(be->pad1d(x, 9, 9, mg::PadMode::Replicate));
  EXPECT_THROW(be->pad1d(x, -1, 0, mg::PadMode::Constant), mg::Error);
}

// Trap: an id equal to the table size (MusicGen's special token id against a table without it)
// must fail with the id and the size, not read past the table.
TEST(CpuOps, EmbeddingIdOutOfRangeThrows) {
  auto be = mg::make_cpu_backend(1);
  Tensor table = random_tensor({10, 4}, 8);
  expect_error([&] { cpu::embedding(table, ids_tensor({1, 10, 2}, {3})); }, {"id 10", "10 rows"});
  expect_error([&] { cpu::embedding(table, ids_tensor({-1}, {1})); }, {"id -1"});
  Tensor t2 = random_tensor({12, 4}, 9);
  std::vector<const Tensor*> tables{&table, &t2};
  // 11 is fine for table 1 (12 rows) but not for table 0 (10 rows).
  EXPECT_NO_THROW(cpu::embedding_sum(tables, ids_tensor({0, 9, 11, 0}, {2, 2})));
  expect_error([&] { cpu::embedding_sum(tables, ids_tensor({11, 0, 0, 0}, {2, 2})); }, {"id 11", "10 rows"});
}

// Trap: a fully masked attention row (all -inf) must give zeros; exp(-inf - -inf) is NaN.
TEST(CpuOps, SoftmaxAllMinusInfRowGivesZeros) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector({-inf, -inf, -inf, 0.0f, -inf, 1.0f}, {2, 3});
  std::vector<float> y = cpu::softmax(x).to_vector();
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[4], 0.0f);
  EXPECT_NEAR(y[3] + y[5], 1.0f, 1e-6f);
}

// Every op split over 2 threads gives the same bits as on 1 thread: work is cut by output
// element, never by reduction, so the sums are done in the same order.
TEST(CpuOps, TwoThreadsMatchOneThreadBitForBit) {
  cpu::ThreadPool p1(1), p2(2);
  cpu::Exec e1{&p1, true}, e2{&p2, true};
  Tensor x = random_tensor({37, 300}, 10);
  Tensor w = random_tensor({200, 300}, 11, 0.1f);
  Tensor b = random_tensor({200}, 12);
  EXPECT_TRUE(bit_equal(cpu::linear(x, w, &b, e1), cpu::linear(x, w, &b, e2)));
  EXPECT_TRUE(bit_equal(cpu::linear(x.slice0(0, 2), w, &b, e1), cpu::linear(x.slice0(0, 2), w, &b, e2)));
  for (DType dt : {DType::F16, DType::BF16}) {
    Tensor wh = cpu::cast(w, dt);
    EXPECT_TRUE(bit_equal(cpu::linear(x, wh, &b, e1), cpu::linear(x, wh, &b, e2)));
    Tensor x2 = x.slice0(0, 2);
    EXPECT_TRUE(bit_equal(cpu::linear(x2, wh, &b, e1), cpu::linear(x2, wh, &b, e2)));
  }
  Tensor a = random_tensor({4, 37, 64}, 13), bm = random_tensor({4, 50, 64}, 14);
  EXPECT_TRUE(bit_equal(cpu::matmul(a, bm, true, 0.5f, e1), cpu::matmul(a, bm, true, 0.5f, e2)));
  Tensor big = random_tensor({64, 1500}, 15, 3.0f);
  EXPECT_TRUE(bit_equal(cpu::gelu(big, e1), cpu::gelu(big, e2)));
  EXPECT_TRUE(bit_equal(cpu::add(big, random_tensor({1500}, 16), e1), cpu::add(big, random_tensor({1500}, 16), e2)));
  Tensor g = random_tensor({1500}, 17);
  EXPECT_TRUE(bit_equal(cpu::layer_norm(big, g, &g, 1e-5f, e1), cpu::layer_norm(big, g, &g, 1e-5f, e2)));
  EXPECT_TRUE(bit_equal(cpu::rms_norm(big, g, 1e-6f, e1), cpu::rms_norm(big, g, 1e-6f, e2)));
  EXPECT_TRUE(bit_equal(cpu::softmax(big, e1), cpu::softmax(big, e2)));
  EXPECT_TRUE(bit_equal(cpu::transpose(big, e1), cpu::transpose(big, e2)));
  Tensor x3 = random_tensor({2, 16, 700}, 18), wc = random_tensor({24, 16, 7}, 19, 0.2f), bc = random_tensor({24}, 20);
  EXPECT_TRUE(bit_equal(cpu::conv1d(x3, wc, &bc, 2, 3, e1), cpu::conv1d(x3, wc, &bc, 2, 3, e2)));
  Tensor wt = random_tensor({16, 8, 8}, 21, 0.2f), bt = random_tensor({8}, 22);
  EXPECT_TRUE(bit_equal(cpu::conv_transpose1d(x3, wt, &bt, 4, e1), cpu::conv_transpose1d(x3, wt, &bt, 4, e2)));
  Tensor gg = random_tensor({16}, 23);
  EXPECT_TRUE(bit_equal(cpu::group_norm(x3, 4, gg, gg, 1e-5f, e1), cpu::group_norm(x3, 4, gg, gg, 1e-5f, e2)));
  EXPECT_TRUE(bit_equal(cpu::pad1d(x3, 6, 6, mg::PadMode::Reflect, 0, e1), cpu::pad1d(x3, 6, 6, mg::PadMode::Reflect, 0, e2)));
  mg::LstmLayerWeights lw{random_tensor({64, 16}, 24, 0.3f), random_tensor({64, 16}, 25, 0.3f),
                          random_tensor({64}, 26), random_tensor({64}, 27)};
  Tensor xs = random_tensor({50, 16}, 28);
  EXPECT_TRUE(bit_equal(cpu::lstm(xs, lw, e1), cpu::lstm(xs, lw, e2)));
}

// The AVX2 paths and the portable loops compute the same thing (the portable path is what runs on
// machines without AVX2, so the parity suite also runs it: LinearHalfWeightsPortable).
TEST(CpuOps, SimdAndPortablePathsAgree) {
  if (!cpu::cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA/F16C here: only the portable path exists";
  cpu::Exec simd{nullptr, true}, avx2{nullptr, true, /*allow_avx512=*/false}, plain{nullptr, false};
  Tensor w = random_tensor({67, 259}, 30, 0.1f);
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    Tensor wh = cpu::cast(w, dt);
    for (int64_t m : {1, 2, 3, 4, 9}) {
      Tensor x = random_tensor({m, 259}, 31);
      const Tensor want = cpu::linear(x, wh, nullptr, plain);
      EXPECT_LE(mgtest::rel_err(cpu::linear(x, wh, nullptr, simd), want), 1e-6) << mg::dtype_name(dt) << " m=" << m;
      EXPECT_LE(mgtest::rel_err(cpu::linear(x, wh, nullptr, avx2), want), 1e-6) << mg::dtype_name(dt) << " m=" << m;
    }
    // Half -> f32 widening is exact either way.
    EXPECT_TRUE(bit_equal(cpu::cast(wh, DType::F32, simd), cpu::cast(wh, DType::F32, plain)));
  }
}

// Many-row half linear converts w in blocks; with N large enough for several blocks the result
// must still equal an f32 linear on the upcast weights.
TEST(CpuOps, HalfLinearOverSeveralConversionBlocks) {
  Tensor x = random_tensor({6, 1024}, 40);
  Tensor w = cpu::cast(random_tensor({600, 1024}, 41, 0.05f), DType::BF16);
  Tensor b = random_tensor({600}, 42);
  Tensor want = cpu::linear(x, cpu::cast(w, DType::F32), &b);
  EXPECT_LE(mgtest::rel_err(cpu::linear(x, w, &b), want), 1e-6);
}

// Long inputs are cut into time tiles (the im2col / col buffers are capped); the tile seams must
// not show. Checked against plain loops.
TEST(CpuOps, ConvolutionsAcrossTimeTiles) {
  Tensor x = random_tensor({32, 20000}, 50);
  Tensor w = random_tensor({4, 32, 7}, 51, 0.2f);
  Tensor b = random_tensor({4}, 52);
  EXPECT_LE(mgtest::rel_err(cpu::conv1d(x, w, &b, 1, 1), naive_conv1d(x, w, b, 1, 1)), 1e-5);
  EXPECT_LE(mgtest::rel_err(cpu::conv1d(x, w, &b, 3, 2), naive_conv1d(x, w, b, 3, 2)), 1e-5);
  Tensor xt = random_tensor({4, 5000}, 53);
  Tensor wt = random_tensor({4, 64, 16}, 54, 0.2f);
  EXPECT_LE(mgtest::rel_err(cpu::conv_transpose1d(xt, wt, nullptr, 8), naive_conv_transpose1d(xt, wt, 8)), 1e-5);
}

// Empty inner sizes are legal maths (zeros plus bias) but illegal BLAS leading dimensions.
TEST(CpuOps, EmptyInnerDimensionGivesBias) {
  Tensor b = random_tensor({3}, 80);
  std::vector<float> y = cpu::linear(Tensor::empty(DType::F32, {8, 0}), Tensor::empty(DType::F32, {3, 0}), &b).to_vector();
  for (int i = 0; i < 24; ++i) EXPECT_EQ(y[i], b.f32()[i % 3]);
  std::vector<float> z = cpu::matmul(Tensor::empty(DType::F32, {2, 0}), Tensor::empty(DType::F32, {0, 5}), false).to_vector();
  for (float v : z) EXPECT_EQ(v, 0.0f);
}

TEST(CpuOps, CastBetweenIdTypesAndHalves) {
  Tensor ids = ids_tensor({3, -4, 2147483647}, {3});
  Tensor i32 = cpu::cast(ids, DType::I32);
  EXPECT_EQ(i32.ptr<int32_t>()[1], -4);
  EXPECT_TRUE(bit_equal(cpu::cast(i32, DType::I64), ids));
  EXPECT_THROW(cpu::cast(ids_tensor({int64_t(1) << 40}, {1}), DType::I32), mg::Error);
  EXPECT_THROW(mg::make_cpu_backend(1)->cast(ids, DType::F32), mg::Error);  // the contract refuses it
  Tensor x = random_tensor({100}, 60, 5.0f);
  Tensor via_f16 = cpu::cast(cpu::cast(x, DType::F16), DType::BF16);
  Tensor direct = cpu::cast(cpu::cast(cpu::cast(x, DType::F16), DType::F32), DType::BF16);
  EXPECT_TRUE(bit_equal(via_f16, direct));
}

TEST(CpuBackend, RunsOpsAndKeepsHostTensors) {
  auto be = mg::make_cpu_backend(2);
  EXPECT_EQ(be->device(), mg::Device::CPU);
  EXPECT_STREQ(be->name(), "cpu");
  Tensor x = random_tensor({3, 8}, 70);
  Tensor up = be->upload(x);
  EXPECT_EQ(up.data, x.data) << "CPU upload must not copy";
  EXPECT_EQ(be->download(up).data, x.data);
  Tensor w = random_tensor({5, 8}, 71);
  EXPECT_TRUE(bit_equal(be->linear(x, w, nullptr), cpu::linear(x, w, nullptr)));
  EXPECT_TRUE(bit_equal(be->softmax(x), cpu::softmax(x)));
  EXPECT_EQ(be->alloc(DType::F16, {2, 3}).nbytes(), 12u);
}

// Trap: the nearest-codeword search decides codes, which must equal the reference's exactly. The CPU
// version splits rows over threads and takes the products from a tiled GEMM: any row must get the
// same id as a plain per-row search, the first index must win an exact tie (duplicated codewords,
// as a trained codebook can have after dead-code resets), and 1 or 3 threads must agree.
TEST(CpuVq, NearestMatchesAPlainSearchAndFirstIndexWinsTies) {
  Tensor x = random_tensor({301, 16}, 21), e = random_tensor({257, 16}, 22);
  std::copy_n(e.f32() + 5 * 16, 16, e.f32() + 200 * 16);  // codeword 200 = codeword 5
  std::copy_n(e.f32() + 5 * 16, 16, x.f32() + 7 * 16);    // row 7 sits exactly on both
  cpu::ThreadPool p1(1), p3(3);
  const Tensor a = cpu::vq_nearest(x, e, cpu::Exec{&p1, true}), b = cpu::vq_nearest(x, e, cpu::Exec{&p3, true});
  const Tensor plain = cpu::vq_nearest(x, e, cpu::Exec{&p1, false});  // the portable argmax
  for (int64_t n = 0; n < 301; ++n) {
    double best = -1e300;
    int64_t arg = 0;
    for (int64_t j = 0; j < 257; ++j) {
      double d = 0;
      for (int64_t k = 0; k < 16; ++k) {
        const double t = double(x.f32()[n * 16 + k]) - e.f32()[j * 16 + k];
        d += t * t;
      }
      if (-d > best) {
        best = -d;
        arg = j;
      }
    }
    EXPECT_EQ(a.ptr<int64_t>()[n], arg) << "row " << n;
    EXPECT_EQ(b.ptr<int64_t>()[n], a.ptr<int64_t>()[n]) << "row " << n;
    EXPECT_EQ(plain.ptr<int64_t>()[n], a.ptr<int64_t>()[n]) << "row " << n;
  }
  EXPECT_EQ(a.ptr<int64_t>()[7], 5);
}

// Trap: OpenBLAS picks its kernels from the CPU model at load time and falls back to SSE3 ones
// ("Prescott", 5x slower) on models its version does not know, which is what happened on our own
// CI machines. kernels/cpu/blas.cpp asks for the kernels the CPU's features allow unless the user
// chose (OPENBLAS_CORETYPE); this pins that the choice took effect.
TEST(CpuBlas, KernelsFollowTheCpuFeatures) {
  const std::string d = mg::cpu::blas::describe();
  std::printf("BLAS: %s\n", d.c_str());
  EXPECT_NE(d.find("OpenBLAS"), std::string::npos) << d;
  if (std::getenv("OPENBLAS_CORETYPE")) GTEST_SKIP() << "OPENBLAS_CORETYPE is set: the user's choice is kept";
  EXPECT_EQ(d.find("Prescott"), std::string::npos) << d;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd"))
    EXPECT_NE(d.find("SkylakeX"), std::string::npos) << d;
}

}  // namespace
