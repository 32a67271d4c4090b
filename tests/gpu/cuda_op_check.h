// Shared by the CUDA op tests that are not rows of the case table (cuda_ops_test.cpp,
// cuda_codec_ops_test.cpp, cuda_recording_test.cpp, cuda_failure_test.cpp): the skip macro, the tolerances (the table's,
// tools/bench-device-ops/device_op_cases.h says why each), the CPU/GPU backend pair with NaN
// poisoning, and the comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "test_util.h"
#include "tools/bench-device-ops/device_op_cases.h"

using mg::DType;
using mg::PadMode;
using mg::Shape;
using mg::Tensor;
using mgtest::random_tensor;

#define MG_SKIP_WITHOUT_CUDA()                                                                        \
  do {                                                                                                \
    if (!mg::cuda_available())                                                                        \
      GTEST_SKIP() << "no CUDA device: the CUDA op checks need a GPU (build with -DMUSICGEN_CUDA=ON " \
                      "and run on a machine with one, e.g. tools/gpu-check.sh)";                      \
  } while (0)

namespace mgcudatest {

using mgcases::kTolAttention;
using mgcases::kTolElementwise;
using mgcases::kTolGemm;
using mgcases::kTolHalfWeights;

struct Backends {
  std::unique_ptr<mg::Backend> cpu = mg::make_cpu_backend(2);
  std::unique_ptr<mg::Backend> gpu = mg::make_cuda_backend(0);

  Tensor up(const Tensor& t) { return gpu->upload(t); }
  Tensor down(const Tensor& t) { return gpu->download(t); }

  // Unwritten elements of the next outputs read back as NaN (mgcases::poison).
  void poison() { mgcases::poison(*gpu); }
};

inline Tensor to_dtype(const Tensor& f32, DType t) { return mg::make_cpu_backend(1)->cast(f32, t); }

inline Tensor ids_tensor(DType t, const Shape& s, int64_t vocab, uint32_t seed) {
  Tensor ids = Tensor::empty(t, s);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> u(0, vocab - 1);
  for (int64_t i = 0; i < ids.numel(); ++i) {
    if (t == DType::I32) ids.ptr<int32_t>()[i] = int32_t(u(rng));
    else ids.ptr<int64_t>()[i] = u(rng);
  }
  return ids;
}

// Compares a downloaded GPU result with the CPU one: same shape, rel_err within tol, no NaN.
inline void expect_close(const Tensor& gpu_host, const Tensor& cpu, double tol, const std::string& what) {
  ASSERT_EQ(mg::shape_str(gpu_host.shape), mg::shape_str(cpu.shape)) << what;
  ASSERT_EQ(gpu_host.dtype, cpu.dtype) << what;
  const double err = mgtest::rel_err(gpu_host, cpu);
  EXPECT_LE(err, tol) << what << ": rel_err " << err;  // NaN fails this too
}

// Layout ops and casts move bits: they must match exactly.
inline void expect_bit_equal(const Tensor& gpu_host, const Tensor& cpu, const std::string& what) {
  ASSERT_EQ(mg::shape_str(gpu_host.shape), mg::shape_str(cpu.shape)) << what;
  ASSERT_EQ(gpu_host.dtype, cpu.dtype) << what;
  EXPECT_EQ(std::memcmp(gpu_host.data, cpu.data, cpu.nbytes()), 0) << what << ": bytes differ";
}

}  // namespace mgcudatest
