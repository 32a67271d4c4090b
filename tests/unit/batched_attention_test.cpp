// The decode step's batched ops on the CPU backend: attention_rows must equal one attention() per
// row bit for bit (the decoder batches the CFG rows with it, and the greedy parity goldens were
// passed row by row), write_kv must land the k / v columns of the fused projection at the right
// cache positions, and a row of all-zero keys and values (a null CFG row's cross-attention)
// must give exactly zero output - the references zero that row, any rounding would show up.
#include <gtest/gtest.h>

#include "kernels/ops.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::Tensor;

TEST(BatchedAttention, RowsEqualPerRowAttention) {
  auto be = mg::make_cpu_backend(2);
  const int64_t R = 3, cap = 40, D = 32;
  for (int64_t S : {1, 4})
    for (bool causal : {true, false}) {
      Tensor q = mgtest::random_tensor({R, S, D}, 1), k = mgtest::random_tensor({R, cap, D}, 2),
             v = mgtest::random_tensor({R, cap, D}, 3);
      const int64_t T = 23;
      Tensor got = be->attention_rows(q, k, v, T, 4, 0.3f, causal);
      ASSERT_EQ(got.shape, (mg::Shape{R, S, D}));
      for (int64_t r = 0; r < R; ++r) {
        Tensor want = be->attention(q.slice0(r, 1).reshape({S, D}), k.slice0(r, 1).reshape({cap, D}),
                                    v.slice0(r, 1).reshape({cap, D}), T, 4, 0.3f, causal);
        for (int64_t i = 0; i < S * D; ++i) ASSERT_EQ(got.f32()[r * S * D + i], want.f32()[i]) << "row " << r;
      }
    }
}

TEST(BatchedAttention, ZeroKeysAndValuesGiveExactZero) {
  auto be = mg::make_cpu_backend(1);
  Tensor q = mgtest::random_tensor({2, 1, 16}, 4, 5.0f);
  Tensor kv = Tensor::zeros(DType::F32, {2, 9, 16});
  Tensor out = be->attention_rows(q, kv, kv, 9, 2, 0.25f, false);
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_EQ(out.f32()[i], 0.0f);
}

TEST(BatchedAttention, WriteKvPlacesTheFusedColumns) {
  auto be = mg::make_cpu_backend(1);
  const int64_t R = 2, S = 3, D = 4, cap = 10;
  Tensor src = mgtest::random_tensor({R * S, 3 * D}, 7);
  Tensor cache = Tensor::zeros(DType::F32, {R, cap, D});
  be->write_kv(cache, 5, src, 2 * D);  // the v block
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t d = 0; d < D; ++d)
        EXPECT_EQ(cache.f32()[(r * cap + 5 + s) * D + d], src.f32()[(r * S + s) * 3 * D + 2 * D + d]);
  EXPECT_EQ(cache.f32()[(0 * cap + 4) * D], 0.0f);
  EXPECT_THROW(be->write_kv(cache, 8, src, 0), mg::Error);       // past the capacity
  EXPECT_THROW(be->write_kv(cache, 0, src, 2 * D + 1), mg::Error);  // past the source columns
}

}  // namespace
