// The GPU path fails safe (kernels/device_check.h, api/common_api.cpp): a device whose probe or
// self-check fails is not used; --device auto falls back to the CPU with one warning line saying
// why, --device cuda is a DeviceError. A machine without a GPU runs all of it: a CPU backend stands
// in for the device, and the self-check's failure is injected (MUSICGEN_CUDA_FAULTS=selfcheck).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "api/api_internal.h"
#include "kernels/cuda/fault_injection.h"
#include "kernels/device_check.h"
#include "test_util.h"

using mg::cuda::Fault;

namespace {

class DeviceFallback : public ::testing::Test {
 protected:
  void SetUp() override { mg::cuda::clear_faults(); }
  void TearDown() override { mg::cuda::clear_faults(); }
};

// A "GPU" that is a CPU backend: it passes the self-check unless a failure is injected.
std::unique_ptr<mg::Backend> cpu_as_device(int) { return mg::make_cpu_backend(1); }
// A GPU whose probe fails (make_cuda_backend's message for a card without kernels for it).
std::unique_ptr<mg::Backend> failing_device(int) {
  throw mg::Error("CUDA device 0 (Test card) cannot run a test kernel: cudaErrorNoKernelImageForDevice");
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_F(DeviceFallback, SelfCheckPassesOnAGoodBackend) {
  auto be = mg::make_cpu_backend(2);
  EXPECT_NO_THROW(mg::check_device_against_cpu(*be));
}

TEST_F(DeviceFallback, InjectedSelfCheckFailureNamesTheOpAndTheDifference) {
  auto be = mg::make_cpu_backend(1);
  mg::cuda::inject_fault(Fault::SelfCheck, 1);
  const std::string err = mgtest::error_of([&] { mg::check_device_against_cpu(*be); });
  EXPECT_NE(err.find("device self-check: linear on cpu differs from the CPU by"), std::string::npos) << err;
  EXPECT_NE(err.find("run with --device cpu"), std::string::npos) << err;
  EXPECT_NO_THROW(mg::check_device_against_cpu(*be));  // one failure was due, none is left
}

TEST_F(DeviceFallback, EnvironmentNameOfTheSelfCheckFault) {
  const auto faults = mg::cuda::parse_fault_list("probe,selfcheck");
  ASSERT_EQ(faults.size(), 2u);
  EXPECT_EQ(faults[1], Fault::SelfCheck);
  EXPECT_STREQ(mg::cuda::fault_name(Fault::SelfCheck), "selfcheck");
}

TEST_F(DeviceFallback, AutoUsesADeviceThatPassesTheSelfCheck) {
  bool cuda = false;
  testing::internal::CaptureStderr();
  auto be = mg::capi::make_model_backend_with(MUSICGEN_DEVICE_AUTO, 1, &cuda, true, &cpu_as_device);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(cuda);
}

TEST_F(DeviceFallback, AutoFallsBackToTheCpuWithOneWarningLineWhenTheSelfCheckFails) {
  mg::cuda::inject_fault(Fault::SelfCheck, -1);
  bool cuda = true;
  testing::internal::CaptureStderr();
  auto be = mg::capi::make_model_backend_with(MUSICGEN_DEVICE_AUTO, 1, &cuda, true, &cpu_as_device);
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(cuda);
  EXPECT_EQ(be->device(), mg::Device::CPU);
  EXPECT_EQ(count_lines(warning), 1) << warning;
  EXPECT_EQ(warning.rfind("libmusicgen: warning: CUDA not used (device self-check: linear", 0), 0u) << warning;
  EXPECT_NE(warning.find("); running on the CPU\n"), std::string::npos) << warning;
}

TEST_F(DeviceFallback, AutoFallsBackToTheCpuWhenTheDeviceCannotBeMade) {
  bool cuda = true;
  testing::internal::CaptureStderr();
  auto be = mg::capi::make_model_backend_with(MUSICGEN_DEVICE_AUTO, 1, &cuda, true, &failing_device);
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(cuda);
  EXPECT_EQ(count_lines(warning), 1) << warning;
  EXPECT_NE(warning.find("cannot run a test kernel"), std::string::npos) << warning;
}

TEST_F(DeviceFallback, ExplicitCudaIsADeviceErrorWithTheReason) {
  mg::cuda::inject_fault(Fault::SelfCheck, -1);
  bool cuda = false;
  testing::internal::CaptureStderr();
  try {
    mg::capi::make_model_backend_with(MUSICGEN_DEVICE_CUDA, 1, &cuda, true, &cpu_as_device);
    ADD_FAILURE() << "no error";
  } catch (const mg::capi::DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("device self-check: linear"), std::string::npos) << e.what();
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");  // an error, not a warning
  EXPECT_THROW(mg::capi::make_model_backend_with(MUSICGEN_DEVICE_CUDA, 1, &cuda, true, &failing_device),
               mg::capi::DeviceError);
}

TEST_F(DeviceFallback, NoDeviceMeansTheCpuWithoutAWarning) {
  bool cuda = true;
  testing::internal::CaptureStderr();
  auto be = mg::capi::make_model_backend_with(MUSICGEN_DEVICE_AUTO, 1, &cuda, false, &failing_device);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_FALSE(cuda);
}

TEST_F(DeviceFallback, AutoRetriesALoadThatFailsOnTheDeviceOnTheCpu) {
  mg::capi::ModelDevice dev;
  int loads = 0;
  testing::internal::CaptureStderr();
  const auto where = mg::capi::load_on_device(
      MUSICGEN_DEVICE_AUTO, 1, dev,
      [&](mg::Backend& be) {
        if (++loads == 1) throw mg::Error("cannot allocate 2.4 GB on the device");
        return std::make_unique<mg::Device>(be.device());
      },
      [](const mg::Device&, mg::Backend&) {}, true, &cpu_as_device);
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(*where, mg::Device::CPU);
  EXPECT_FALSE(dev.shared);
  EXPECT_EQ(count_lines(warning), 1) << warning;
  EXPECT_NE(warning.find("loading the model on it failed: cannot allocate 2.4 GB"), std::string::npos) << warning;
}

TEST_F(DeviceFallback, ExplicitCudaDoesNotRetryAFailedLoad) {
  mg::capi::ModelDevice dev;
  EXPECT_THROW(mg::capi::load_on_device(
                   MUSICGEN_DEVICE_CUDA, 1, dev,
                   [](mg::Backend&) -> std::unique_ptr<int> { throw mg::Error("no memory"); },
                   [](const int&, mg::Backend&) {}, true, &cpu_as_device),
               mg::Error);
}
