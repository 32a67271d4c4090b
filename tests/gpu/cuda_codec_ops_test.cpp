// The CUDA op checks of the codec's ops that are not "op against the CPU within a tolerance" (those
// are rows of the case table, tools/bench-device-ops/device_op_cases.h, run by
// cuda_op_cases_test.cpp): the contract's errors, the LSTM's carried state across chunks, and
// vq_nearest's exact ties. Every test skips when no CUDA device is present.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda_op_check.h"

using namespace mgcudatest;

TEST(CudaOps, CodecShapeErrorsThrow) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  EXPECT_THROW(b.gpu->group_norm(b.up(random_tensor({2, 6, 5}, 1)), 4, b.up(random_tensor({6}, 2)),
                                 b.up(random_tensor({6}, 3)), 1e-5f),
               mg::Error);
  // Shorter than the kernel's span: the caller must pad first.
  EXPECT_THROW(b.gpu->conv1d(b.up(random_tensor({1, 2, 5}, 1)), b.up(random_tensor({3, 2, 4}, 2)), nullptr, 1, 2),
               mg::Error);
  // Reflect pads as wide as the input itself throw rather than read out of bounds.
  EXPECT_THROW(b.gpu->pad1d(b.up(random_tensor({2, 5}, 1)), 5, 0, PadMode::Reflect), mg::Error);
  EXPECT_THROW(b.gpu->pad1d(b.up(random_tensor({2, 5}, 1)), -1, 0, PadMode::Constant), mg::Error);
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

TEST(CudaOps, VqNearestExactTiesTakeTheFirstIndex) {
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
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
