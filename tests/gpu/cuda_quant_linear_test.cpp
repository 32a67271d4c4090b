// The CUDA q8_0 / q4_0 linear (kernels/cuda/linear_q8.cu, linear_q4.cu) against the CPU: the GPU
// keeps the activations in f32, so it matches the CPU's f32 product with the dequantized weights
// to f32 rounding, and the CPU's quantized kernel (int8 activations) within the activations'
// rounding. Skips without a device.
#include <gtest/gtest.h>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "test_util.h"

namespace {

#define MG_SKIP_WITHOUT_CUDA()                                                                   \
  do {                                                                                           \
    if (!mg::cuda_available())                                                                   \
      GTEST_SKIP() << "no CUDA device: the quantized linear check needs a GPU (build with "      \
                      "-DMUSICGEN_CUDA=ON and run on a machine with one)";                       \
  } while (0)

}  // namespace

TEST(CudaQuantLinear, MatchesTheCpu) {
  MG_SKIP_WITHOUT_CUDA();
  auto gpu = mg::make_cuda_backend(0);
  for (mg::DType t : {mg::DType::Q8_0, mg::DType::Q4_0})
    for (int64_t m : {1, 2, 9}) {
      SCOPED_TRACE(std::string(mg::dtype_name(t)) + " m=" + std::to_string(m));
      const int64_t n = 77, k = 1024;
      mg::Tensor x = mgtest::random_tensor({m, k}, 1 + uint32_t(m));
      mg::Tensor w = mg::quantize(mgtest::random_tensor({n, k}, 2, 0.05f), t);
      mg::Tensor b = mgtest::random_tensor({n}, 3);
      mg::Tensor res = mgtest::random_tensor({m, n}, 4);
      mg::Tensor wf = mg::Tensor::from_vector(w.to_vector(), {n, k});
      mg::Tensor ref = mg::cpu::linear(x, wf, &b);
      mg::Tensor xd = gpu->upload(x), wd = gpu->upload(w), bd = gpu->upload(b), rd = gpu->upload(res);
      EXPECT_LT(mgtest::rel_err(gpu->download(gpu->linear(xd, wd, &bd)), ref), 1e-5);
      // Against the CPU's int8-activation kernel: the activations' rounding (~0.5% per value).
      EXPECT_LT(mgtest::rel_err(gpu->download(gpu->linear(xd, wd, &bd)), mg::cpu::linear(x, w, &b)), 2e-2);
      // GELU + residual fused, as the decode step's FFN uses them.
      mg::LinearFusion f;
      f.gelu = true;
      f.residual = &rd;
      mg::Tensor fused = gpu->download(gpu->linear_fused(xd, wd, &bd, f));
      mg::Tensor want = mg::cpu::add(res, mg::cpu::gelu(ref));
      EXPECT_LT(mgtest::rel_err(fused, want), 1e-5);
    }
}
