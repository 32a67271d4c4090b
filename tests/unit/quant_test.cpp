// Block-quantized weights (kernels/quant.h) and the quantized CPU linear (kernels/cpu/linear_quant*):
// round-trip bounds, block edge cases, refused shapes, and every kernel path against the portable one;
// then weights interleaved by 16 rows (QuantLayout::Interleaved16, kernels/quant_interleave.cpp, read by
// kernels/cpu/linear_quant_x16.cpp): the repack round trip, and every output bit-identical to the
// row-order portable path for 1..16, 24 and 35 activation rows (passes of 16, 8, 4 and 3 rows), any
// thread count, and row counts that leave a tail of rows in row order, and repacked into a WeightArena
// (the CPU backend's) with the same bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/quant.h"
#include "kernels/weight_arena.h"
#include "test_util.h"

using namespace mg;

namespace {

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Tensor gaussian_matrix(int64_t rows, int64_t cols, uint32_t seed, float sigma = 1.0f) {
  return Tensor::from_vector(gaussian(size_t(rows * cols), seed, sigma), {rows, cols});
}

float block_scale(DType t, const Tensor& q, int64_t block) {
  uint16_t d;
  std::memcpy(&d, static_cast<const char*>(q.data) + dtype_nbytes(t, block * kQuantBlock), 2);
  return std::fabs(f16_to_f32(d));
}

const DType kTypes[] = {DType::Q8_0, DType::Q4_0};

}  // namespace

TEST(Quant, SizesAndNames) {
  EXPECT_EQ(dtype_nbytes(DType::Q8_0, 64), 68u);
  EXPECT_EQ(dtype_nbytes(DType::Q4_0, 64), 36u);
  EXPECT_STREQ(dtype_name(DType::Q8_0), "q8_0");
  EXPECT_STREQ(dtype_name(DType::Q4_0), "q4_0");
  Tensor t = Tensor::empty(DType::Q4_0, {3, 96});
  EXPECT_EQ(t.nbytes(), 3u * 3u * kQ4BlockBytes);
  Tensor s = t.slice0(1, 2);  // a row is whole blocks: slicing rows stays on block boundaries
  EXPECT_EQ(static_cast<char*>(s.data) - static_cast<char*>(t.data), long(3 * kQ4BlockBytes));
}

TEST(Quant, RoundTripWithinOneStep) {
  const int64_t rows = 8, k = 256;
  for (DType t : kTypes) {
    std::vector<float> v = gaussian(size_t(rows * k), 7, 0.05f);
    Tensor q = quantize(Tensor::from_vector(v, {rows, k}), t);
    std::vector<float> back = q.to_vector();
    double se = 0, sv = 0;
    for (int64_t b = 0; b < rows * k / kQuantBlock; ++b) {
      const float d = block_scale(t, q, b);
      // q8_0: round to nearest, so half a step (plus the f16 rounding of the scale at the edge);
      // q4_0: the largest magnitude is exact, the opposite extreme may clamp to +7: one step.
      const float bound = t == DType::Q8_0 ? 0.5f * d * 1.01f : d * 1.001f;
      for (int j = 0; j < kQuantBlock; ++j) {
        const size_t i = size_t(b * kQuantBlock + j);
        ASSERT_LE(std::fabs(back[i] - v[i]), bound) << dtype_name(t) << " block " << b << " value " << j;
        se += double(back[i] - v[i]) * (back[i] - v[i]);
        sv += double(v[i]) * v[i];
      }
    }
    // Relative RMS error of Gaussian weights: ~0.5% for q8_0, ~10% for q4_0.
    EXPECT_LT(std::sqrt(se / sv), t == DType::Q8_0 ? 0.01 : 0.15) << dtype_name(t);
  }
}

TEST(Quant, BlockEdgeCases) {
  for (DType t : kTypes) {
    std::vector<float> v(4 * kQuantBlock, 0.0f);  // block 0: all zero
    v[kQuantBlock + 5] = -3.0f;                   // block 1: one value, negative
    for (int j = 0; j < kQuantBlock; ++j) v[2 * kQuantBlock + j] = 0.25f;  // block 2: constant
    for (int j = 0; j < kQuantBlock; ++j) v[3 * kQuantBlock + j] = float(j - 16) / 16.0f;  // block 3: ramp
    std::vector<float> back = quantize(Tensor::from_vector(v, {int64_t(v.size())}), t).to_vector();
    for (int j = 0; j < kQuantBlock; ++j) EXPECT_EQ(back[j], 0.0f) << dtype_name(t);
    // The extreme is exact up to the f16 rounding of the scale (exact for q4_0: -8 * 3/8).
    EXPECT_NEAR(back[kQuantBlock + 5], -3.0f, 3.0f * 1e-3f) << dtype_name(t);
    EXPECT_EQ(back[kQuantBlock + 6], 0.0f) << dtype_name(t);
    EXPECT_NEAR(back[2 * kQuantBlock + 3], 0.25f, 0.25f * 1e-3f) << dtype_name(t);
    EXPECT_NEAR(back[3 * kQuantBlock], -1.0f, 1e-3f) << dtype_name(t);
  }
}

TEST(Quant, RowsNotAMultipleOf32AreRefused) {
  for (DType t : kTypes) {
    Tensor w = Tensor::from_vector(std::vector<float>(4 * 33, 1.0f), {4, 33});
    const std::string msg = mgtest::error_of([&] { quantize(w, t); });
    EXPECT_NE(msg.find("multiple of 32"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 33]"), std::string::npos) << msg;
    EXPECT_NE(mgtest::error_of([&] { Tensor::empty(t, {2, 40}); }).find("multiple of 32"), std::string::npos);
    EXPECT_NE(mgtest::error_of([&] { Tensor::empty(t, {2, 0}); }).find("multiple of 32"), std::string::npos);
  }
}

TEST(Quant, ActivationsRoundTrip) {
  std::vector<float> x = gaussian(96, 3);
  std::vector<int8_t> q(96);
  float d[3];
  quantize_activations(x.data(), 96, q.data(), d);
  for (int i = 0; i < 96; ++i) EXPECT_LE(std::fabs(q[i] * d[i / 32] - x[i]), 0.5f * d[i / 32] * 1.0001f);
}

// The SIMD quantizer (what every linear call uses) against the portable one: every q and d bit, on
// blocks of gaussians at scales from denormal to 1e30, all-zero and -0 blocks, exact ties (amax
// 127, so x * inv = x: halves round to even in both), and blocks holding NaN or +-inf.
TEST(Quant, ActivationsSimdGiveThePortableBits) {
  const int64_t k = 32 * 64;
  std::vector<float> x = gaussian(size_t(k), 21);
  for (int64_t b = 0; b < k / 32; ++b) {
    float* blk = x.data() + b * 32;
    const float scale = std::ldexp(1.0f, int(b % 16) * 13 - 140);  // 2^-140 .. 2^55
    for (int j = 0; j < 32; ++j) blk[j] *= scale;
    if (b % 16 == 3) std::fill(blk, blk + 32, 0.0f);
    if (b % 16 == 5) std::fill(blk, blk + 32, -0.0f);
    if (b % 16 == 7)
      for (int j = 0; j < 32; ++j) blk[j] = j == 0 ? -127.0f : float(j % 9) - 4.5f + float(j / 9);
    if (b % 16 == 9) blk[b % 32] = std::nanf("");
    if (b % 16 == 10) blk[31 - b % 32] = b % 3 ? INFINITY : -INFINITY;
  }
  std::vector<int8_t> q(static_cast<size_t>(k)), q_ref(static_cast<size_t>(k));
  std::vector<float> d(static_cast<size_t>(k / 32)), d_ref(static_cast<size_t>(k / 32));
  quantize_activations(x.data(), k, q.data(), d.data());
  quantize_activations_portable(x.data(), k, q_ref.data(), d_ref.data());
  EXPECT_EQ(std::memcmp(q.data(), q_ref.data(), q.size()), 0);
  EXPECT_EQ(std::memcmp(d.data(), d_ref.data(), d.size() * sizeof(float)), 0);
}

namespace {

// The quantized linear on one path, with a pool of `threads` (0: none).
Tensor run_linear(const Tensor& x, const Tensor& w, const Tensor* b, cpu::KernelPath p, int threads) {
  cpu::Exec ex;
  std::unique_ptr<cpu::ThreadPool> pool;
  if (threads > 0) {
    pool = std::make_unique<cpu::ThreadPool>(threads);
    ex.pool = pool.get();
  }
  return cpu::linear_quantized(x, w, b, ex, p);
}

void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape, b.shape) << what;
  ASSERT_EQ(std::memcmp(a.data, b.data, a.nbytes()), 0) << what;
}

// Each row of x through w alone (no pool) gives the bits it has in the whole batch (2 threads), on
// every one of `paths` this CPU runs: a server's shared step must not change a request's output.
void expect_rows_independent_of_batch(const Tensor& x, const Tensor& w, std::initializer_list<cpu::KernelPath> paths) {
  const int64_t n = w.dim(0);
  for (cpu::KernelPath p : paths) {
    if (!cpu::kernel_path_supported(p)) continue;
    Tensor all = run_linear(x, w, nullptr, p, 2);
    for (int64_t r = 0; r < x.dim(0); ++r) {
      Tensor one = run_linear(x.slice0(r, 1), w, nullptr, p, 0);
      ASSERT_EQ(std::memcmp(one.data, all.f32() + r * n, size_t(n) * 4), 0)
          << dtype_name(w.dtype) << " " << cpu::kernel_path_name(p) << " row " << r;
    }
  }
}

}  // namespace

TEST(QuantLinear, CloseToTheDequantizedProduct) {
  const int64_t m = 3, n = 37, k = 320;
  Tensor x = Tensor::from_vector(gaussian(size_t(m * k), 11), {m, k});
  Tensor wf = Tensor::from_vector(gaussian(size_t(n * k), 12, 0.05f), {n, k});
  Tensor bias = Tensor::from_vector(gaussian(size_t(n), 13), {n});
  for (DType t : kTypes) {
    Tensor w = quantize(wf, t);
    Tensor ref = cpu::linear(x, Tensor::from_vector(w.to_vector(), {n, k}), &bias);
    Tensor y = run_linear(x, w, &bias, cpu::KernelPath::Portable, 0);
    // The only difference is the activations' int8 rounding: at most half a step per value.
    std::vector<float> xv = x.to_vector(), wv = w.to_vector();
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double bound = 0;
        for (int64_t j = 0; j < k; ++j) bound += std::fabs(wv[c * k + j]) * 0.5 * 3.5 / 127.0 * 1.5;
        EXPECT_NEAR(y.f32()[r * n + c], ref.f32()[r * n + c], bound + 1e-4) << dtype_name(t);
      }
  }
}

TEST(QuantLinear, EveryPathGivesThePortableBits) {
  for (DType t : kTypes)
    for (int64_t k : {32, 96, 1024})
      for (int64_t m : {1, 2, 3, 4, 5, 9}) {
        const int64_t n = 45;
        Tensor x = Tensor::from_vector(gaussian(size_t(m * k), uint32_t(k + m)), {m, k});
        Tensor w = quantize(Tensor::from_vector(gaussian(size_t(n * k), 5, 0.05f), {n, k}), t);
        Tensor ref = run_linear(x, w, nullptr, cpu::KernelPath::Portable, 0);
        for (cpu::KernelPath p : {cpu::KernelPath::Avx2, cpu::KernelPath::Avx512}) {
          if (!cpu::kernel_path_supported(p)) {
            std::cout << "[ note ] " << cpu::kernel_path_name(p) << " not supported here: not compared\n";
            continue;
          }
          const std::string what = std::string(dtype_name(t)) + " " + cpu::kernel_path_name(p) +
                                   " m=" + std::to_string(m) + " k=" + std::to_string(k);
          expect_same_bits(run_linear(x, w, nullptr, p, 0), ref, what);
          expect_same_bits(run_linear(x, w, nullptr, p, 3), ref, what + " 3 threads");
        }
      }
}

TEST(QuantLinear, RowsDoNotDependOnTheBatch) {
  const int64_t n = 70, k = 256, m = 16;
  Tensor x = Tensor::from_vector(gaussian(size_t(m * k), 21), {m, k});
  for (DType t : kTypes) {
    Tensor w = quantize(Tensor::from_vector(gaussian(size_t(n * k), 22, 0.05f), {n, k}), t);
    expect_rows_independent_of_batch(x, w, {cpu::KernelPath::Portable, cpu::KernelPath::Avx2, cpu::KernelPath::Avx512});
  }
}

TEST(QuantLinear, ThroughTheBackend) {
  auto be = make_cpu_backend(1);
  Tensor x = Tensor::from_vector(gaussian(2 * 64, 31), {2, 64});
  Tensor w = quantize(Tensor::from_vector(gaussian(8 * 64, 32), {8, 64}), DType::Q8_0);
  Tensor y = be->linear(x, w, nullptr);
  expect_same_bits(y, cpu::linear(x, w, nullptr), "backend");
  EXPECT_NE(mgtest::error_of([&] { be->linear(Tensor::from_vector(gaussian(2 * 32, 1), {2, 32}), w, nullptr); })
                .find("does not match"),
            std::string::npos);
}

TEST(Quant, LargeTensorsSplitOverThreadsGiveTheRowBytes) {
  const int64_t rows = 40, k = 32768;  // 1.3 M values: quantize() splits the rows over threads
  for (DType t : kTypes) {
    Tensor w = Tensor::from_vector(gaussian(size_t(rows * k), 41, 0.05f), {rows, k});
    Tensor q = quantize(w, t);
    std::vector<char> row(dtype_nbytes(t, k));
    for (int64_t r = 0; r < rows; r += 13) {
      quantize_row(t, w.f32() + r * k, row.data(), k);
      ASSERT_EQ(std::memcmp(row.data(), static_cast<const char*>(q.data) + r * row.size(), row.size()), 0)
          << dtype_name(t) << " row " << r;
    }
  }
}

TEST(QuantInterleave, RoundTripKeepsEveryByte) {
  for (DType t : kTypes)
    for (int64_t n : {16, 37, 64}) {
      Tensor w = quantize(gaussian_matrix(n, 96, 1, 0.05f), t);
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

// The CPU backend repacks into its WeightArena (2 MiB pages): a copy with the same bytes, the
// source left as it was even when nobody else holds it.
TEST(QuantInterleave, IntoAWeightArenaGivesTheSameBytes) {
  WeightArena arena;
  for (DType t : kTypes)
    for (int64_t n : {16, 37, 64}) {
      const Tensor w = quantize(gaussian_matrix(n, 96, 3, 0.05f), t);
      const Tensor expected = interleave_rows16(w.clone());
      Tensor source = w.clone();
      const void* source_bytes = source.data;
      const Tensor packed = interleave_rows16(std::move(source), &arena);
      EXPECT_NE(packed.data, source_bytes);
      EXPECT_EQ(packed.layout, QuantLayout::Interleaved16);
      ASSERT_EQ(packed.nbytes(), expected.nbytes());
      EXPECT_EQ(std::memcmp(packed.data, expected.data, expected.nbytes()), 0) << dtype_name(t) << " n " << n;
    }
}

TEST(QuantInterleave, FewerThan16RowsStayInRowOrder) {
  Tensor w = quantize(gaussian_matrix(15, 64, 2), DType::Q4_0);
  Tensor packed = interleave_rows16(w);
  EXPECT_EQ(packed.layout, QuantLayout::Rows);
  EXPECT_EQ(packed.data, w.data);
}

TEST(QuantInterleave, SlicesOnlyWholeGroups) {
  Tensor packed = interleave_rows16(quantize(gaussian_matrix(40, 64, 3), DType::Q8_0));
  EXPECT_NO_THROW(packed.slice0(16, 16));
  EXPECT_NO_THROW(packed.slice0(32, 8));  // the group-less tail, to the end
  EXPECT_NE(mgtest::error_of([&] { packed.slice0(8, 16); }).find("whole groups of 16 rows"), std::string::npos);
  EXPECT_NE(mgtest::error_of([&] { interleave_rows16(packed); }).find("row order"), std::string::npos);
}

TEST(QuantInterleave, EveryPathGivesThePortableRowOrderBits) {
  for (DType t : kTypes)
    for (int64_t k : {32, 96, 1024})
      for (int64_t n : {16, 45, 64}) {
        Tensor w = quantize(gaussian_matrix(n, k, uint32_t(n + k), 0.05f), t);
        Tensor packed = interleave_rows16(w);
        std::vector<int64_t> row_counts = {24, 35};  // several passes over a group
        for (int64_t m = 1; m <= 16; ++m) row_counts.push_back(m);
        for (int64_t m : row_counts) {
          Tensor x = gaussian_matrix(m, k, uint32_t(7 * m + k));
          Tensor ref = run_linear(x, w, nullptr, cpu::KernelPath::Portable, 0);
          const std::string what = std::string(dtype_name(t)) + " k=" + std::to_string(k) +
                                   " n=" + std::to_string(n) + " m=" + std::to_string(m);
          expect_same_bits(run_linear(x, packed, nullptr, cpu::KernelPath::Portable, 0), ref, what + " portable");
          for (cpu::KernelPath p : {cpu::KernelPath::Avx2, cpu::KernelPath::Avx512}) {
            if (!cpu::kernel_path_supported(p)) continue;
            expect_same_bits(run_linear(x, packed, nullptr, p, 0), ref, what + " " + cpu::kernel_path_name(p));
            expect_same_bits(run_linear(x, packed, nullptr, p, 3), ref,
                             what + " " + cpu::kernel_path_name(p) + " 3 threads");
          }
        }
      }
  if (!cpu::kernel_path_supported(cpu::KernelPath::Avx512))
    std::cout << "[ note ] avx512-vnni not supported here: its interleaved kernel not compared\n";
}

TEST(QuantInterleave, RowsDoNotDependOnTheBatch) {
  const int64_t n = 70, k = 256, m = 16;
  Tensor x = gaussian_matrix(m, k, 21);
  for (DType t : kTypes) {
    Tensor packed = interleave_rows16(quantize(gaussian_matrix(n, k, 22, 0.05f), t));
    expect_rows_independent_of_batch(x, packed, {cpu::KernelPath::Portable, cpu::KernelPath::Avx512});
  }
}

TEST(QuantInterleave, TheCpuBackendRepacksOnlyForItsAvx512Path) {
  auto be = make_cpu_backend(2);
  Tensor x = gaussian_matrix(2, 128, 31);
  for (DType t : kTypes) {
    Tensor w = quantize(gaussian_matrix(48, 128, 32, 0.05f), t);
    Tensor up = be->upload_linear_weight(w);
    const bool avx512 = cpu::selected_kernel_path() == cpu::KernelPath::Avx512;
    EXPECT_EQ(up.layout, avx512 ? QuantLayout::Interleaved16 : QuantLayout::Rows) << dtype_name(t);
    expect_same_bits(be->linear(x, up, nullptr), be->linear(x, w, nullptr), dtype_name(t));
  }
  Tensor f = gaussian_matrix(16, 64, 33);
  Tensor up = be->upload_linear_weight(f);  // not quantized: the same values in rows (a copy in 2 MiB pages)
  EXPECT_EQ(up.dtype, DType::F32);
  EXPECT_EQ(up.layout, QuantLayout::Rows);
  EXPECT_EQ(up.to_vector(), f.to_vector());
}

// Fused projections (q|k|v) kept as stored reach the backend as parts: the CPU backend copies them
// straight into its 2 MiB pages, which must give exactly the stacked tensor the default gives
// (upload_linear_weight of concat_rows), for each float dtype; parts it cannot place (mixed
// dtypes) take the default, stacked as f32.
TEST(LinearWeightRows, TheCpuBackendStacksThePartsAsConcatRowsDoes) {
  auto be = make_cpu_backend(2);
  auto cast_host = [&](const Tensor& x, DType t) { return t == DType::F32 ? x : be->cast(x, t); };
  for (DType t : {DType::F32, DType::BF16, DType::F16}) {
    const std::vector<Tensor> parts = {cast_host(gaussian_matrix(48, 64, 51), t),
                                       cast_host(gaussian_matrix(16, 64, 52), t),
                                       cast_host(gaussian_matrix(48, 64, 53), t)};
    const Tensor up = be->upload_linear_weight_rows(parts);
    const Tensor expected = concat_rows(parts);
    ASSERT_EQ(up.shape, (Shape{112, 64})) << dtype_name(t);
    EXPECT_EQ(up.dtype, t);
    EXPECT_EQ(up.layout, QuantLayout::Rows);
    EXPECT_EQ(std::memcmp(up.data, expected.data, expected.nbytes()), 0) << dtype_name(t);
    for (const Tensor& p : parts) EXPECT_NE(up.data, p.data);
  }
  const Tensor mixed =
      be->upload_linear_weight_rows({gaussian_matrix(16, 64, 54), cast_host(gaussian_matrix(16, 64, 55), DType::BF16)});
  EXPECT_EQ(mixed.dtype, DType::F32);
  EXPECT_EQ(mixed.shape, (Shape{32, 64}));
  const std::string err =
      mgtest::error_of([] { concat_rows({gaussian_matrix(4, 64, 56), gaussian_matrix(4, 32, 57)}); });
  EXPECT_NE(err.find("does not stack"), std::string::npos) << err;
}

TEST(QuantInterleave, RepacksInPlaceOnlyWhatNobodyElseHolds) {
  Tensor w = quantize(gaussian_matrix(32, 64, 41, 0.05f), DType::Q4_0);
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
