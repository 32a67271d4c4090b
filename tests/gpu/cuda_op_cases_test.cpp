// The CUDA op checker: every row of the device op case table (tools/bench-device-ops/
// device_op_cases.h, which states each op's tolerance and why) runs at its small sizes on the CPU
// backend (the reference) and on the CUDA backend with the same inputs, the device memory poisoned
// with NaN before each run. One test per row, named after it. What the table cannot say (errors
// thrown, in-place state, exact ties) is in cuda_ops_test.cpp and cuda_codec_ops_test.cpp.
// Every test skips when no CUDA device is present (this binary is built in every configuration).
#include <gtest/gtest.h>

#include <cctype>
#include <memory>
#include <string>

#include "cuda_op_check.h"
#include "tools/bench-device-ops/device_op_cases.h"

namespace {

class CudaOpCase : public ::testing::TestWithParam<size_t> {};

TEST_P(CudaOpCase, MatchesTheCpu) {
  MG_SKIP_WITHOUT_CUDA();
  const mgcases::DeviceOpCase& c = mgcases::device_op_cases()[GetParam()];
  auto cpu = mg::make_cpu_backend(2);
  auto gpu = mg::make_cuda_backend(0);
  for (const mgcases::OpInputs& in : c.inputs(mgcases::Size::Small)) {
    const double err = mgcases::check_against_cpu(c, in, *gpu, *cpu);
    EXPECT_LE(err, c.tol) << c.name << " " << in.tag << ": error " << err << " against the CPU";
  }
}

// "linear_fused bf16" -> "linear_fused_bf16": gtest names take letters, digits and underscores.
std::string case_name(const ::testing::TestParamInfo<size_t>& info) {
  std::string n = mgcases::device_op_cases()[info.param].name;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(CudaOps, CudaOpCase, ::testing::Range(size_t(0), mgcases::device_op_cases().size()),
                         case_name);

}  // namespace
