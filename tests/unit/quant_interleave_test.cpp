// q8_0/q4_0 weights interleaved by 16 rows (QuantLayout::Interleaved16, kernels/quant.h) and the
// linear that reads them (kernels/cpu/linear_quant_x16.cpp): the repack round trip, and every
// output bit-identical to the row-order portable path for 1..16 activation rows, any thread count,
// and row counts that leave a tail of rows in row order.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/quant.h"
#include "test_util.h"

using namespace mg;

namespace {

const DType kTypes[] = {DType::Q8_0, DType::Q4_0};

Tensor gaussian(int64_t rows, int64_t cols, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(size_t(rows * cols));
  for (float& x : v) x = dist(rng);
  return Tensor::from_vector(v, {rows, cols});
}

Tensor run_linear(const Tensor& x, const Tensor& w, cpu::KernelPath p, int threads) {
  cpu::Exec ex;
  std::unique_ptr<cpu::ThreadPool> pool;
  if (threads > 0) {
    pool = std::make_unique<cpu::ThreadPool>(threads);
    ex.pool = pool.get();
  }
  return cpu::linear_quantized(x, w, nullptr, ex, p);
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape == b.shape && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

}  // namespace

TEST(QuantInterleave, RoundTripKeepsEveryByte) {
  for (DType t : kTypes)
    for (int64_t n : {16, 37, 64}) {
      Tensor w = quantize(gaussian(n, 96, 1, 0.05f), t);
      Tensor packed = interleave_rows16(w);
      EXPECT_EQ(packed.layout, QuantLayout::Interleaved16);
      EXPECT_EQ(packed.nbytes(), w.nbytes());
      EXPECT_NE(packed.data, w.data);
      EXPECT_NE(std::memcmp(packed.data, w.data, w.nbytes()), 0) << "the groups must be reordered";
      Tensor back = deinterleave_rows16(packed);
      EXPECT_EQ(back.layout, QuantLayout::Rows);
      EXPECT_EQ(std::memcmp(back.data, w.data, w.nbytes()), 0) << dtype_name(t) << " n=" << n;
      EXPECT_EQ(packed.to_vector(), w.to_vector());
      EXPECT_EQ(packed.clone().layout, QuantLayout::Interleaved16);
    }
}

TEST(QuantInterleave, FewerThan16RowsStayInRowOrder) {
  Tensor w = quantize(gaussian(15, 64, 2), DType::Q4_0);
  Tensor packed = interleave_rows16(w);
  EXPECT_EQ(packed.layout, QuantLayout::Rows);
  EXPECT_EQ(packed.data, w.data);
}

TEST(QuantInterleave, SlicesOnlyWholeGroups) {
  Tensor packed = interleave_rows16(quantize(gaussian(40, 64, 3), DType::Q8_0));
  EXPECT_NO_THROW(packed.slice0(16, 16));
  EXPECT_NO_THROW(packed.slice0(32, 8));  // the group-less tail, to the end
  EXPECT_NE(message_of([&] { packed.slice0(8, 16); }).find("whole groups of 16 rows"), std::string::npos);
  EXPECT_NE(message_of([&] { interleave_rows16(packed); }).find("row order"), std::string::npos);
}

TEST(QuantInterleave, EveryPathGivesThePortableRowOrderBits) {
  for (DType t : kTypes)
    for (int64_t k : {32, 96, 1024})
      for (int64_t n : {16, 45, 64}) {
        Tensor w = quantize(gaussian(n, k, uint32_t(n + k), 0.05f), t);
        Tensor packed = interleave_rows16(w);
        for (int64_t m = 1; m <= 16; ++m) {
          Tensor x = gaussian(m, k, uint32_t(7 * m + k));
          Tensor ref = run_linear(x, w, cpu::KernelPath::Portable, 0);
          const std::string what =
              std::string(dtype_name(t)) + " k=" + std::to_string(k) + " n=" + std::to_string(n) + " m=" + std::to_string(m);
          EXPECT_TRUE(same_bits(run_linear(x, packed, cpu::KernelPath::Portable, 0), ref)) << what << " portable";
          for (cpu::KernelPath p : {cpu::KernelPath::Avx2, cpu::KernelPath::Avx512}) {
            if (!cpu::kernel_path_supported(p)) continue;
            EXPECT_TRUE(same_bits(run_linear(x, packed, p, 0), ref)) << what << " " << cpu::kernel_path_name(p);
            EXPECT_TRUE(same_bits(run_linear(x, packed, p, 3), ref)) << what << " " << cpu::kernel_path_name(p) << " 3 threads";
          }
        }
      }
  if (!cpu::kernel_path_supported(cpu::KernelPath::Avx512))
    std::cout << "[ note ] avx512-vnni not supported here: its interleaved kernel not compared\n";
}

TEST(QuantInterleave, RowsDoNotDependOnTheBatch) {
  const int64_t n = 70, k = 256, m = 16;
  Tensor x = gaussian(m, k, 21);
  for (DType t : kTypes) {
    Tensor packed = interleave_rows16(quantize(gaussian(n, k, 22, 0.05f), t));
    for (cpu::KernelPath p : {cpu::KernelPath::Portable, cpu::KernelPath::Avx512}) {
      if (!cpu::kernel_path_supported(p)) continue;
      Tensor all = run_linear(x, packed, p, 2);
      for (int64_t r = 0; r < m; ++r) {
        Tensor one = run_linear(x.slice0(r, 1), packed, p, 0);
        ASSERT_EQ(std::memcmp(one.data, all.f32() + r * n, size_t(n) * 4), 0)
            << dtype_name(t) << " " << cpu::kernel_path_name(p) << " row " << r;
      }
    }
  }
}

TEST(QuantInterleave, TheCpuBackendRepacksOnlyForItsAvx512Path) {
  auto be = make_cpu_backend(2);
  Tensor x = gaussian(2, 128, 31);
  for (DType t : kTypes) {
    Tensor w = quantize(gaussian(48, 128, 32, 0.05f), t);
    Tensor up = be->upload_linear_weight(w);
    const bool avx512 = cpu::selected_kernel_path() == cpu::KernelPath::Avx512;
    EXPECT_EQ(up.layout, avx512 ? QuantLayout::Interleaved16 : QuantLayout::Rows) << dtype_name(t);
    EXPECT_TRUE(same_bits(be->linear(x, up, nullptr), be->linear(x, w, nullptr))) << dtype_name(t);
  }
  Tensor f = gaussian(16, 64, 33);
  EXPECT_EQ(be->upload_linear_weight(f).data, f.data);  // not quantized: as it is
}

TEST(QuantInterleave, RepacksInPlaceOnlyWhatNobodyElseHolds) {
  Tensor w = quantize(gaussian(32, 64, 41, 0.05f), DType::Q4_0);
  const std::vector<float> values = w.to_vector();
  Tensor copy = interleave_rows16(w);  // w still holds the buffer: a copy, w untouched
  EXPECT_NE(copy.data, w.data);
  EXPECT_EQ(w.to_vector(), values);
  void* buffer = w.data;
  Tensor moved = interleave_rows16(std::move(w));  // the only reference: the same buffer
  EXPECT_EQ(moved.data, buffer);
  EXPECT_EQ(moved.layout, QuantLayout::Interleaved16);
  EXPECT_EQ(std::memcmp(moved.data, copy.data, copy.nbytes()), 0);
  EXPECT_EQ(moved.to_vector(), values);
}
