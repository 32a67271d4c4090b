// The CPU backend's linear_fused (kernels/cpu/cpu_backend.cpp: GELU and the residual add in place on
// the linear's output) against the host default it replaces, linear then gelu then add as separate
// ops: the same bits, for f32, half and quantized weights, one row (a decode step) and many, with a
// length that leaves a scalar tail after the SIMD lanes.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "kernels/ops.h"
#include "kernels/quant.h"
#include "test_util.h"

namespace {

TEST(CpuLinearFused, SameBitsAsSeparateOps) {
  for (int threads : {1, 2}) {
    auto be = mg::make_cpu_backend(threads);
    for (mg::DType dt : {mg::DType::F32, mg::DType::BF16, mg::DType::Q4_0}) {
      const int64_t K = 256, N = dt == mg::DType::Q4_0 ? 4096 : 4099;
      mg::Tensor w = mgtest::random_tensor({N, K}, 3, 0.1f);
      w = mg::dtype_is_quantized(dt) ? be->upload_linear_weight(mg::quantize(w, dt))
                                     : (dt == mg::DType::F32 ? w : be->cast(w, dt));
      for (int64_t M : {1, 2, 16}) {
        mg::Tensor x = mgtest::random_tensor({M, K}, 4), res = mgtest::random_tensor({M, N}, 5);
        for (int variant = 0; variant < 3; ++variant) {
          mg::LinearFusion f;
          f.gelu = variant != 1;
          if (variant >= 1) f.residual = &res;
          mg::Tensor want = be->linear(x, w, nullptr);
          if (f.gelu) want = be->gelu(want);
          if (f.residual) want = be->add(res, want);
          const mg::Tensor got = be->linear_fused(x, w, nullptr, f);
          ASSERT_EQ(got.shape, want.shape);
          EXPECT_EQ(std::memcmp(got.data, want.data, want.nbytes()), 0)
              << "threads " << threads << " dtype " << int(dt) << " rows " << M << " variant " << variant;
        }
      }
    }
  }
}

}  // namespace
