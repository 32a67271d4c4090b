// The CUDA op checks that are not "op against the CPU within a tolerance" (those are the rows of
// the case table, tools/bench-device-ops/device_op_cases.h, run by cuda_op_cases_test.cpp): memory
// round trips, masked softmax rows that must be exact zeros, out-of-range ids that must throw and
// leave the backend usable, the contract's errors on device tensors, and empty tensors.
// Every test skips when no CUDA device is present (this binary is built in every configuration).
#include <gtest/gtest.h>

#include <limits>
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

TEST(CudaOps, SoftmaxMaskedRowsGiveExactZeros) {
  // Trap: a row whose entries are all -inf (a fully masked attention row) must give zeros, not
  // NaN (exp(-inf - -inf)); rows with some -inf entries must give those entries exactly 0.
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
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

TEST(CudaOps, OutOfRangeIdsThrowAndTheBackendStaysUsable) {
  // Trap: an out-of-range id (MusicGen's special token 2048 against a 2048-row table, say) must
  // throw instead of reading another tensor's memory; the backend must stay usable afterwards.
  // The lookup itself does not wait for the device: the error comes at the next synchronisation
  // point (download / synchronize), naming the op, the id and where it was.
  MG_SKIP_WITHOUT_CUDA();
  Backends b;
  Tensor table = random_tensor({100, 24}, 142);
  Tensor td = b.up(table);
  for (int64_t bad : {int64_t(100), int64_t(-1)}) {
    Tensor ids = ids_tensor(DType::I64, {9}, 100, 143);
    ids.ptr<int64_t>()[4] = bad;
    Tensor y = b.gpu->embedding(td, b.up(ids));  // no wait, no throw yet
    const std::string err = mgtest::error_of([&] { b.down(y); });
    EXPECT_NE(err.find("cuda embedding: id " + std::to_string(bad) + " at [0, 4]"), std::string::npos) << err;
  }
  Tensor ok = ids_tensor(DType::I32, {9}, 100, 144);
  expect_close(b.down(b.gpu->embedding(td, b.up(ok))), b.cpu->embedding(table, ok), kTolElementwise,
               "embedding after a failed lookup");

  std::vector<Tensor> dev;
  for (int k = 0; k < 4; ++k) dev.push_back(b.up(random_tensor({2049, 48}, 150 + k)));
  std::vector<const Tensor*> dp;
  for (const Tensor& t : dev) dp.push_back(&t);
  Tensor bad = ids_tensor(DType::I64, {4, 6}, 2049, 161);
  bad.ptr<int64_t>()[2 * 6 + 3] = 2049;
  // The first failing lookup is named, not a later one: a good lookup after it changes nothing.
  b.gpu->embedding_sum(dp, b.up(bad));
  b.gpu->embedding_sum(dp, b.up(ids_tensor(DType::I64, {4, 6}, 2049, 163)));
  const std::string err = mgtest::error_of([&] { b.gpu->synchronize(); });
  EXPECT_NE(err.find("embedding_sum: id 2049 at [2, 3] is outside table 2 of size 2049"), std::string::npos) << err;
  b.gpu->synchronize();  // reported once
  EXPECT_THROW(b.gpu->embedding_sum(dp, b.up(ids_tensor(DType::I64, {3, 6}, 2049, 162))), mg::Error);  // K != 4
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
  // Collected from the ops' own checks: each must throw on the device as on the CPU.
  EXPECT_THROW(b.gpu->matmul(b.up(random_tensor({3, 4}, 1)), b.up(random_tensor({5, 6}, 2)), false), mg::Error);
  EXPECT_THROW(b.gpu->matmul(b.up(random_tensor({2, 3, 4}, 1)), b.up(random_tensor({3, 4, 6}, 2)), false), mg::Error);
  EXPECT_THROW(b.gpu->add(b.up(random_tensor({3, 5}, 1)), b.up(random_tensor({3}, 2))), mg::Error);
  EXPECT_THROW(b.gpu->add(random_tensor({3}, 1), b.up(random_tensor({3}, 2))), mg::Error);  // a on the CPU
  Tensor big = Tensor::empty(DType::I64, {2});
  big.ptr<int64_t>()[0] = 1;
  big.ptr<int64_t>()[1] = int64_t(1) << 40;
  EXPECT_THROW(b.down(b.gpu->cast(b.up(big), DType::I32)), mg::Error);  // found at the download
  EXPECT_THROW(b.gpu->cast(b.up(random_tensor({5, 7}, 60)), DType::I32), mg::Error);
  EXPECT_THROW(b.gpu->layer_norm(b.up(random_tensor({2, 8}, 1)), b.up(random_tensor({7}, 2)), nullptr, 1e-5f),
               mg::Error);
  Tensor n = b.up(random_tensor({2, 10}, 182));
  EXPECT_THROW(b.gpu->narrow_last(n, 6, 5), mg::Error);
  EXPECT_THROW(b.gpu->narrow_last(n, -1, 2), mg::Error);
  EXPECT_THROW(b.gpu->narrow_last(random_tensor({2, 10}, 182), 0, 2), mg::Error);  // on the CPU
  Tensor d = b.up(random_tensor({10, 6}, 194));
  EXPECT_THROW(b.gpu->copy_rows(d, 8, b.up(random_tensor({3, 6}, 1))), mg::Error);             // past the end
  EXPECT_THROW(b.gpu->copy_rows(d, 0, b.up(random_tensor({3, 5}, 1))), mg::Error);             // row size
  EXPECT_THROW(b.gpu->copy_rows(d, 0, b.up(ids_tensor(DType::I32, {3, 6}, 9, 1))), mg::Error);  // dtype
  EXPECT_THROW(b.gpu->copy_rows(d, 0, random_tensor({3, 6}, 1)), mg::Error);                   // src on the CPU
  Tensor q = b.up(random_tensor({2, 8}, 1)), k = b.up(random_tensor({4, 8}, 2));
  EXPECT_THROW(b.gpu->attention(q, k, k, 5, 2, 1.0f, true), mg::Error);  // T beyond k's rows
  EXPECT_THROW(b.gpu->attention(q, k, k, 1, 2, 1.0f, true), mg::Error);  // 2 causal queries, 1 key
  EXPECT_THROW(b.gpu->attention(q, k, k, 4, 3, 1.0f, true), mg::Error);  // 8 not divisible by 3 heads
  Tensor wide = b.up(random_tensor({2, 257}, 3));
  EXPECT_THROW(b.gpu->attention(wide, wide, wide, 2, 1, 1.0f, false), mg::Error);  // head size > 256
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
