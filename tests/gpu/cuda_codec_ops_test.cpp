// The CUDA op checker, codec half: the ops EnCodec runs (conv1d, conv_transpose1d, pad1d,
// group_norm, lstm with and without carried state, vq_nearest) on the CPU backend and on the CUDA
// backend with the same random inputs, under the tolerances of cuda_ops_test.cpp's header.
// Every test skips when no CUDA device is present (this binary is built in every configuration).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_op_check.h"

using namespace mgcudatest;

TEST(CudaOps, GroupNorm) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { Shape x; int groups; };
  for (const Case& c : {Case{{2, 8, 37}, 1}, Case{{2, 8, 37}, 2}, Case{{2, 8, 37}, 8}, Case{{16, 100}, 4},
                        Case{{1, 32, 5000}, 1}}) {
    const int64_t ch = c.x[c.x.size() - 2];
    Tensor x = b.cpu->scale(random_tensor(c.x, 80), 3.0f);
    x = b.cpu->add(x, random_tensor({c.x.back()}, 83));
    Tensor g = random_tensor({ch}, 81), beta = random_tensor({ch}, 82);
    b.poison();
    Tensor got = b.down(b.gpu->group_norm(b.up(x), c.groups, b.up(g), b.up(beta), 1e-5f));
    expect_close(got, b.cpu->group_norm(x, c.groups, g, beta, 1e-5f), kTolElementwise,
                 "group_norm " + mg::shape_str(c.x) + " groups=" + std::to_string(c.groups));
  }
  EXPECT_THROW(b.gpu->group_norm(b.up(random_tensor({2, 6, 5}, 1)), 4, b.up(random_tensor({6}, 2)),
                                 b.up(random_tensor({6}, 3)), 1e-5f),
               mg::Error);
}

TEST(CudaOps, Conv1dStridesDilationsAndChunks) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { Shape x; int64_t cout, k; int stride, dilation; bool bias; };
  for (const Case& c : {Case{{1, 3, 50}, 5, 3, 1, 1, true}, Case{{2, 4, 101}, 6, 7, 2, 1, true},
                        Case{{2, 5, 97}, 3, 4, 4, 3, false}, Case{{1, 8, 33}, 16, 1, 1, 1, true},
                        Case{{8, 33}, 5, 1, 2, 1, true}, Case{{6, 29}, 4, 3, 1, 3, false},
                        // Cin*K*Tout = 224 * 79994 exceeds the 2^24-float column buffer: two chunks.
                        Case{{2, 32, 80000}, 8, 7, 1, 1, true}}) {
    const int64_t cin = c.x[c.x.size() - 2];
    Tensor x = random_tensor(c.x, 100), w = random_tensor({c.cout, cin, c.k}, 101, 0.3f);
    Tensor bias = random_tensor({c.cout}, 102);
    b.poison();
    Tensor want = b.cpu->conv1d(x, w, c.bias ? &bias : nullptr, c.stride, c.dilation);
    Tensor bd = b.up(bias);
    Tensor got = b.down(b.gpu->conv1d(b.up(x), b.up(w), c.bias ? &bd : nullptr, c.stride, c.dilation));
    expect_close(got, want, kTolGemm,
                 "conv1d x" + mg::shape_str(c.x) + " k=" + std::to_string(c.k) + " stride=" +
                     std::to_string(c.stride) + " dilation=" + std::to_string(c.dilation));
  }
  // Shorter than the kernel's span: the caller must pad first.
  EXPECT_THROW(b.gpu->conv1d(b.up(random_tensor({1, 2, 5}, 1)), b.up(random_tensor({3, 2, 4}, 2)), nullptr, 1, 2),
               mg::Error);
}

TEST(CudaOps, ConvTranspose1dStridesAndChunks) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { Shape x; int64_t cout, k; int stride; bool bias; };
  for (const Case& c : {Case{{1, 4, 10}, 3, 4, 2, true}, Case{{2, 5, 37}, 6, 8, 4, true},
                        Case{{1, 3, 17}, 2, 16, 8, false}, Case{{2, 6, 23}, 4, 3, 1, true},
                        Case{{5, 9}, 3, 2, 3, true},  // kernel shorter than stride: gaps hold the bias
                        // Cout*K*T = 256 * 70000 exceeds the column buffer: two chunks that overlap.
                        Case{{1, 4, 70000}, 16, 16, 8, true}}) {
    const int64_t cin = c.x[c.x.size() - 2];
    Tensor x = random_tensor(c.x, 110), w = random_tensor({cin, c.cout, c.k}, 111, 0.3f);
    Tensor bias = random_tensor({c.cout}, 112);
    b.poison();
    Tensor want = b.cpu->conv_transpose1d(x, w, c.bias ? &bias : nullptr, c.stride);
    Tensor bd = b.up(bias);
    Tensor got = b.down(b.gpu->conv_transpose1d(b.up(x), b.up(w), c.bias ? &bd : nullptr, c.stride));
    expect_close(got, want, kTolGemm,
                 "conv_transpose1d x" + mg::shape_str(c.x) + " k=" + std::to_string(c.k) + " stride=" +
                     std::to_string(c.stride));
  }
}

TEST(CudaOps, Pad1dModes) {
  // Trap: reflect excludes the edge sample (torch's 'reflect', not numpy's 'symmetric'), and
  // pads as wide as the input itself must throw rather than read out of bounds.
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { Shape x; int left, right; };
  for (const Case& c : {Case{{3, 10}, 0, 0}, Case{{3, 10}, 2, 3}, Case{{2, 3, 10}, 9, 9}, Case{{1, 2}, 1, 1},
                        Case{{4, 1001}, 7, 0}}) {
    Tensor x = random_tensor(c.x, 120);
    Tensor xd = b.up(x);
    for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Replicate}) {
      b.poison();
      expect_bit_equal(b.down(b.gpu->pad1d(xd, c.left, c.right, mode, 0.5f)),
                       b.cpu->pad1d(x, c.left, c.right, mode, 0.5f),
                       "pad1d " + mg::shape_str(c.x) + " mode " + std::to_string(int(mode)));
    }
  }
  Tensor one = random_tensor({2, 1}, 121);
  expect_bit_equal(b.down(b.gpu->pad1d(b.up(one), 4, 2, PadMode::Replicate)), b.cpu->pad1d(one, 4, 2, PadMode::Replicate),
                   "replicate of a single sample");
  EXPECT_THROW(b.gpu->pad1d(b.up(random_tensor({2, 5}, 1)), 5, 0, PadMode::Reflect), mg::Error);
  EXPECT_THROW(b.gpu->pad1d(b.up(random_tensor({2, 5}, 1)), -1, 0, PadMode::Constant), mg::Error);
}

TEST(CudaOps, LstmLayer) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { int64_t t, in, h; DType wt; };
  for (const Case& c : {Case{37, 16, 24, DType::F32}, Case{1, 8, 8, DType::F32}, Case{20, 3, 33, DType::F32},
                        Case{50, 64, 64, DType::F32}, Case{12, 16, 24, DType::F16}}) {
    Tensor x = random_tensor({c.t, c.in}, 170);
    mg::LstmLayerWeights w{to_dtype(random_tensor({4 * c.h, c.in}, 171, 0.3f), c.wt),
                           to_dtype(random_tensor({4 * c.h, c.h}, 172, 0.3f), c.wt),
                           to_dtype(random_tensor({4 * c.h}, 173, 0.3f), c.wt),
                           to_dtype(random_tensor({4 * c.h}, 174, 0.3f), c.wt)};
    mg::LstmLayerWeights wd{b.up(w.w_ih), b.up(w.w_hh), b.up(w.b_ih), b.up(w.b_hh)};
    b.poison();
    Tensor want = b.cpu->lstm(x, w);
    Tensor got = b.down(b.gpu->lstm(b.up(x), wd));
    expect_close(got, want, c.wt == DType::F32 ? kTolGemm : kTolHalfWeights,
                 "lstm T=" + std::to_string(c.t) + " In=" + std::to_string(c.in) + " H=" + std::to_string(c.h) +
                     " " + mg::dtype_name(c.wt));
  }
}

// The carried state (EnCodec's windowed codec): the GPU run in chunks, each from the (h, c) the
// previous chunk returned on the device, against the CPU's one-shot run; and a given initial
// state on both backends. T = 0 leaves the state as it was.
TEST(CudaOps, LstmCarriedState) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  for (int64_t H : {int64_t(24), int64_t(33), int64_t(130)}) {
    const int64_t T = 29, In = 16, chunk = 7;
    const std::string what = "lstm state H=" + std::to_string(H);
    const Tensor x = random_tensor({T, In}, 175);
    const mg::LstmLayerWeights w{random_tensor({4 * H, In}, 176, 0.25f), random_tensor({4 * H, H}, 177, 0.1f),
                                 random_tensor({4 * H}, 178, 0.3f), random_tensor({4 * H}, 179, 0.3f)};
    const mg::LstmLayerWeights wd{b.up(w.w_ih), b.up(w.w_hh), b.up(w.b_ih), b.up(w.b_hh)};
    Tensor h_cpu, c_cpu;
    const Tensor want = b.cpu->lstm(x, w, &h_cpu, &c_cpu);
    b.poison();
    Tensor hg, cg;
    Tensor got = Tensor::empty(DType::F32, {T, H});
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      const int64_t n = std::min(chunk, T - t0);
      Tensor xs = Tensor::empty(DType::F32, {n, In});
      std::memcpy(xs.data, x.f32() + t0 * In, size_t(n * In) * sizeof(float));
      const Tensor y = b.down(b.gpu->lstm(b.up(xs), wd, &hg, &cg));
      std::memcpy(got.f32() + t0 * H, y.data, y.nbytes());
    }
    expect_close(got, want, kTolGemm, what + " chunked output");
    expect_close(b.down(hg), h_cpu, kTolGemm, what + " final h");
    expect_close(b.down(cg), c_cpu, kTolGemm, what + " final c");

    const Tensor h0 = random_tensor({H}, 180, 0.8f), c0 = random_tensor({H}, 181, 2.0f);
    Tensor hc = h0, cc = c0;
    const Tensor want0 = b.cpu->lstm(x, w, &hc, &cc);
    Tensor hd = b.up(h0), cd = b.up(c0);
    expect_close(b.down(b.gpu->lstm(b.up(x), wd, &hd, &cd)), want0, kTolGemm, what + " from a given state");
    expect_close(b.down(cd), cc, kTolGemm, what + " final c from a given state");

    const void* before = hd.data;
    b.gpu->lstm(b.up(Tensor::empty(DType::F32, {0, In})), wd, &hd, &cd);
    EXPECT_EQ(hd.data, before) << what << ": T = 0 must leave the state as it was";
    Tensor bad = b.up(random_tensor({H + 1}, 182));
    EXPECT_THROW(b.gpu->lstm(b.up(x), wd, &bad, nullptr), mg::Error) << what;
  }
}

namespace {

// |x - e|^2 in double: the distance a near-tie is judged by.
double sq_dist(const float* x, const float* e, int64_t D) {
  double s = 0;
  for (int64_t d = 0; d < D; ++d) s += (double(x[d]) - e[d]) * (double(x[d]) - e[d]);
  return s;
}

}  // namespace

TEST(CudaOps, VqNearestIdsEqualHost) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  struct Case { int64_t n, v, d; };
  for (const Case& c : {Case{1, 2048, 4}, Case{37, 1024, 128}, Case{300, 2048, 128}, Case{50, 3, 8},
                        Case{4100, 64, 16}}) {  // 4100 rows: two GEMM slices of at most 4096 rows
    Tensor x = random_tensor({c.n, c.d}, 200), e = random_tensor({c.v, c.d}, 201);
    b.poison();
    Tensor want = b.cpu->vq_nearest(x, e);
    Tensor got = b.down(b.gpu->vq_nearest(b.up(x), b.up(e)));
    ASSERT_EQ(got.dtype, DType::I64);
    ASSERT_EQ(got.numel(), c.n);
    int64_t differ = 0;
    for (int64_t n = 0; n < c.n; ++n) {
      const int64_t g = got.ptr<int64_t>()[n], w = want.ptr<int64_t>()[n];
      ASSERT_TRUE(g >= 0 && g < c.v) << "row " << n << " id " << g;
      if (g == w) continue;
      ++differ;
      const double dg = sq_dist(x.f32() + n * c.d, e.f32() + g * c.d, c.d);
      const double dw = sq_dist(x.f32() + n * c.d, e.f32() + w * c.d, c.d);
      EXPECT_LE(std::abs(dg - dw), 1e-5 * std::max(dg, dw) + 1e-7)
          << "row " << n << ": gpu id " << g << " (" << dg << ") vs cpu id " << w << " (" << dw << ") is no near-tie";
    }
    EXPECT_LE(differ, c.n / 100) << differ << " of " << c.n << " ids differ (n=" << c.n << " v=" << c.v << ")";
  }
  // Exact ties: duplicated codewords, x equal to one of them: the first index must win.
  Tensor e = random_tensor({64, 16}, 202);
  std::memcpy(e.f32() + 40 * 16, e.f32() + 7 * 16, 16 * sizeof(float));
  std::memcpy(e.f32() + 63 * 16, e.f32() + 7 * 16, 16 * sizeof(float));
  Tensor x = Tensor::empty(DType::F32, {2, 16});
  std::memcpy(x.f32(), e.f32() + 7 * 16, 16 * sizeof(float));
  std::memcpy(x.f32() + 16, e.f32() + 40 * 16, 16 * sizeof(float));
  Tensor got = b.down(b.gpu->vq_nearest(b.up(x), b.up(e)));
  EXPECT_EQ(got.ptr<int64_t>()[0], 7);
  EXPECT_EQ(got.ptr<int64_t>()[1], 7);
  expect_bit_equal(got, b.cpu->vq_nearest(x, e), "vq_nearest ties");
  EXPECT_THROW(b.gpu->vq_nearest(b.up(random_tensor({3, 8}, 1)), b.up(random_tensor({5, 7}, 2))), mg::Error);
  EXPECT_EQ(b.down(b.gpu->vq_nearest(b.gpu->alloc(DType::F32, {0, 8}), b.up(random_tensor({5, 8}, 2)))).numel(), 0);
}
