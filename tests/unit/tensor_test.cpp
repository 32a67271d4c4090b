// kernels/tensor.{h,cpp}: views (reshape, slice0), allocation, and the scalar f16/bf16
// conversions that every half weight goes through.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/host_buffer_cache.h"
#include "kernels/tensor.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::Tensor;

TEST(Tensor, EmptyZerosAndFromVector) {
  Tensor z = Tensor::zeros(DType::F32, {2, 3});
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.nbytes(), 24u);
  EXPECT_EQ(z.rows(), 2);
  EXPECT_EQ(z.cols(), 3);
  for (float v : z.to_vector()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z.data) % 64, 0u) << "allocations are 64-byte aligned for SIMD";
  Tensor e = Tensor::empty(DType::F32, {0, 5});
  EXPECT_TRUE(e.defined()) << "an empty tensor still has a (dummy) allocation";
  EXPECT_EQ(e.numel(), 0);
  EXPECT_THROW(Tensor::from_vector({1, 2, 3}, {2, 2}), mg::Error);
  EXPECT_THROW(Tensor::empty(DType::F32, {1, 1, 1, 1, 1}), mg::Error);
  EXPECT_THROW(Tensor::empty(DType::F32, {2, -1}), mg::Error);
  Tensor i = Tensor::zeros(DType::I64, {4});
  EXPECT_THROW(i.f32(), mg::Error);
}

TEST(Tensor, ReshapeSharesMemoryAndInfersOneDim) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  Tensor r = t.reshape({2, -1, 3});
  EXPECT_EQ(mg::shape_str(r.shape), "[2, 2, 3]");
  EXPECT_EQ(r.data, t.data);
  EXPECT_EQ(r.dim(-1), 3);
  EXPECT_THROW(r.dim(3), mg::Error);
  EXPECT_THROW(t.reshape({5, -1}), mg::Error);    // 12 is not a multiple of 5
  EXPECT_THROW(t.reshape({-1, -1}), mg::Error);   // two unknowns
  EXPECT_THROW(t.reshape({13}), mg::Error);       // count differs
  EXPECT_EQ(t.reshape({12}).numel(), 12);
}

TEST(Tensor, Slice0IsAViewOfRows) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 2, 2});
  Tensor s = t.slice0(1, 2);
  EXPECT_EQ(mg::shape_str(s.shape), "[2, 2, 2]");
  EXPECT_EQ(s.f32()[0], 4.0f);
  EXPECT_EQ(s.f32()[7], 11.0f);
  s.f32()[0] = 40.0f;
  EXPECT_EQ(t.f32()[4], 40.0f) << "slice0 must not copy";
  EXPECT_EQ(t.slice0(3, 0).numel(), 0);
  EXPECT_THROW(t.slice0(2, 2), mg::Error);
  EXPECT_THROW(t.slice0(-1, 1), mg::Error);
  Tensor c = t.clone();
  c.f32()[0] = 99.0f;
  EXPECT_EQ(t.f32()[0], 0.0f) << "clone must copy";
}

// Expected bits come from torch 2.x: torch.tensor([v]).half() / .bfloat16(), viewed as int16.
struct HalfCase {
  float value;
  uint16_t f16;
  uint16_t bf16;
};

const HalfCase kCases[] = {
    {1.0f, 0x3c00, 0x3f80},
    {-2.5f, 0xc100, 0xc020},
    {0.100000001f, 0x2e66, 0x3dcd},
    {1.00048828f, 0x3c00, 0x3f80},   // 1 + 2^-11: an f16 tie, rounds to even (down)
    {1.00146484f, 0x3c02, 0x3f80},   // 1 + 3*2^-11: an f16 tie, rounds to even (up)
    {1.00390625f, 0x3c04, 0x3f80},   // 1 + 2^-8: a bf16 tie, rounds to even (down)
    {1.01171875f, 0x3c0c, 0x3f82},   // 1 + 3*2^-8: a bf16 tie, rounds to even (up)
    {65504.0f, 0x7bff, 0x4780},      // largest f16
    {65520.0f, 0x7c00, 0x4780},      // rounds past the largest f16: inf
    {3.00000001e+38f, 0x7c00, 0x7f62},
    {5.99999979e-08f, 0x0001, 0x3381},   // smallest f16 subnormal
    {2.98000007e-08f, 0x0000, 0x3300},   // just under half the smallest subnormal: zero
    {2.99999989e-08f, 0x0001, 0x3301},   // just over: the smallest subnormal
    {9.99999975e-06f, 0x00a8, 0x3728},   // an f16 subnormal
    {-1.00000001e-07f, 0x8002, 0xb3d7},
    {9.9999461e-41f, 0x0000, 0x0001},    // an f32 subnormal
    {std::numeric_limits<float>::infinity(), 0x7c00, 0x7f80},
    {-std::numeric_limits<float>::infinity(), 0xfc00, 0xff80},
};

TEST(Tensor, HalfConversionsMatchTorchRounding) {
  for (const HalfCase& c : kCases) {
    SCOPED_TRACE(c.value);
    EXPECT_EQ(mg::f32_to_f16(c.value), c.f16);
    EXPECT_EQ(mg::f32_to_bf16(c.value), c.bf16);
  }
  EXPECT_EQ(mg::f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(mg::f32_to_bf16(-0.0f), 0x8000);
}

TEST(Tensor, NanStaysNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(mg::f16_to_f32(mg::f32_to_f16(nan))));
  EXPECT_TRUE(std::isnan(mg::bf16_to_f32(mg::f32_to_bf16(nan))));
  EXPECT_TRUE(std::isnan(mg::f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::isnan(mg::bf16_to_f32(0x7fc0)));
}

// Every finite half value converts to f32 and back to itself: f32 holds both formats exactly.
TEST(Tensor, HalfRoundTripIsExactForAllFiniteValues) {
  int bad16 = 0, bad_bf = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t v = uint16_t(h);
    if ((v & 0x7c00) != 0x7c00 && mg::f32_to_f16(mg::f16_to_f32(v)) != v) ++bad16;
    if ((v & 0x7f80) != 0x7f80 && mg::f32_to_bf16(mg::bf16_to_f32(v)) != v) ++bad_bf;
  }
  EXPECT_EQ(bad16, 0);
  EXPECT_EQ(bad_bf, 0);
  EXPECT_EQ(mg::f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(mg::f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(mg::f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(mg::f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
}

TEST(Tensor, ToVectorReadsEveryDtype) {
  Tensor h = Tensor::empty(DType::F16, {2});
  h.ptr<uint16_t>()[0] = 0x3c00;
  h.ptr<uint16_t>()[1] = 0xc100;
  EXPECT_EQ(h.to_vector(), (std::vector<float>{1.0f, -2.5f}));
  Tensor b = Tensor::empty(DType::BF16, {1});
  b.ptr<uint16_t>()[0] = 0x3f80;
  EXPECT_EQ(b.to_vector(), (std::vector<float>{1.0f}));
  Tensor i = Tensor::empty(DType::I64, {2});
  i.ptr<int64_t>()[0] = 7;
  i.ptr<int64_t>()[1] = -3;
  EXPECT_EQ(i.to_vector(), (std::vector<float>{7.0f, -3.0f}));
  EXPECT_EQ(std::string(mg::dtype_name(DType::BF16)), "bf16");
  EXPECT_EQ(mg::dtype_size(DType::I64), 8u);
}

}  // namespace

// Trap: the host buffer cache (host_buffer_cache.h) must hand a buffer to one tensor at a time, keep
// nothing outside a HostBufferReuse scope (an idle application holds no extra memory) and never
// exceed its cap.
TEST(HostBufferReuse, ReusesLargeBuffersOnlyInsideAScopeAndEmptiesAfter) {
  const mg::Shape big = {1, 1 << 19};  // 2 MiB of f32
  {
    mg::Tensor a = mg::Tensor::empty(mg::DType::F32, big);
  }
  EXPECT_EQ(mg::detail::host_cache_bytes(), 0u) << "no scope: freed at once";
  {
    const mg::HostBufferReuse scope;
    void* first = nullptr;
    {
      mg::Tensor a = mg::Tensor::empty(mg::DType::F32, big);
      first = a.data;
    }
    EXPECT_GE(mg::detail::host_cache_bytes(), size_t(2) << 20);
    mg::Tensor b = mg::Tensor::empty(mg::DType::F32, {1, (1 << 19) - 1000});  // fits (<= 25% smaller)
    EXPECT_EQ(b.data, first);
    mg::Tensor c = mg::Tensor::empty(mg::DType::F32, big);  // the cached one is taken: a new buffer
    EXPECT_NE(c.data, b.data);
    std::fill(b.f32(), b.f32() + b.numel(), 1.0f);
    std::fill(c.f32(), c.f32() + c.numel(), 2.0f);
    EXPECT_EQ(b.f32()[0], 1.0f);
    {
      const mg::HostBufferReuse inner;  // nested scopes
      for (int i = 0; i < 150; ++i) mg::Tensor t = mg::Tensor::empty(mg::DType::F32, {int64_t(1) << 19, i + 1});
    }
    EXPECT_LE(mg::detail::host_cache_bytes(), mg::kHostCacheBytes);
  }
  EXPECT_EQ(mg::detail::host_cache_bytes(), 0u) << "the last scope frees what was kept";
}

// Trap: EnCodec's windows carry a frame or two of context more or less (160,640 or 161,280
// samples at 32 kHz), so one activation asks for a slightly larger size in the next window. A
// buffer kept at exactly its first size could not serve that, and each such miss is a fresh mapping
// whose every page faults again (490k faults and 1.1-1.4 s of system time in two 30 s encodes and
// decodes). Inside a scope a large buffer is made a size class larger, so the next window's
// slightly larger request takes it.
TEST(HostBufferReuse, ASlightlyLargerRequestTakesTheBufferKeptBefore) {
  const mg::HostBufferReuse scope;
  const int64_t frame = 640, channels = 64, window = 250 * frame;
  void* first = nullptr;
  {
    mg::Tensor a = mg::Tensor::empty(mg::DType::F32, {1, channels, window + frame});
    first = a.data;
  }
  mg::Tensor b = mg::Tensor::empty(mg::DType::F32, {1, channels, window + 2 * frame});
  EXPECT_EQ(b.data, first);
  std::fill(b.f32(), b.f32() + b.numel(), 1.0f);  // the whole buffer is there to write
  EXPECT_EQ(b.f32()[b.numel() - 1], 1.0f);
}
