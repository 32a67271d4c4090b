// The CUDA backend's failure paths, which a healthy GPU never takes, forced with the fault hooks
// of kernels/cuda/fault_injection.h (each makes the real CUDA call fail), and the memory rules
// around recordings and uploads:
//  - a failed allocation is retried once after the memory pool gave its cached blocks back, and
//    when it fails for good the error is reported once: the next kernel's launch check must not
//    report an "out of memory" that happened earlier;
//  - a card without kernels for it (the probe) is "not available" and make_cuda_backend says why;
//  - an older recording's arena dropped during a capture is freed after the capture;
//  - an upload may be followed at once by freeing or overwriting the host tensor.
// Skips without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "api/api_internal.h"
#include "conditioning/chroma.h"
#include "cuda_op_check.h"  // MG_SKIP_WITHOUT_CUDA
#include "kernels/cuda/arch_list.h"
#include "kernels/cuda/fault_injection.h"
#include "kernels/device_check.h"
#include "kernels/ops.h"
#include "lm/device_self_check.h"
#include "musicgen.h"
#include "test_util.h"

using mg::cuda::Fault;

namespace {

// Faults left behind by a failing test must not leak into the next.
class CudaFailure : public ::testing::Test {
 protected:
  void SetUp() override { mg::cuda::clear_faults(); }
  void TearDown() override { mg::cuda::clear_faults(); }
};

// A kernel launch and a download that must work: no earlier error may surface here.
void expect_backend_works(mg::Backend& gpu, const std::string& after) {
  const Tensor x = random_tensor({257}, 21);
  std::vector<float> want = x.to_vector();
  for (float& v : want) v *= 2.0f;
  std::vector<float> got;
  const std::string err = mgtest::error_of([&] { got = gpu.download(gpu.scale(gpu.upload(x), 2.0f)).to_vector(); });
  EXPECT_EQ(err, "(no error)") << "after " << after;
  EXPECT_EQ(got, want) << "after " << after;
}

}  // namespace

TEST_F(CudaFailure, PoolAllocationRetriedOnceThenReportedOnce) {
  MG_SKIP_WITHOUT_CUDA();
  auto gpu = mg::make_cuda_backend(0);
  mg::cuda::inject_fault(Fault::PoolAlloc, 1);
  EXPECT_NO_THROW(gpu->alloc(DType::F32, {1024}));  // the retry after the pool's release succeeds
  mg::cuda::inject_fault(Fault::PoolAlloc, 2);
  const std::string err = mgtest::error_of([&] { gpu->alloc(DType::F32, {1024}); });
  EXPECT_NE(err.find("cannot allocate"), std::string::npos) << err;
  expect_backend_works(*gpu, "a failed pool allocation");
}

TEST_F(CudaFailure, ArenaAllocationRetriedOnceThenReportedOnce) {
  MG_SKIP_WITHOUT_CUDA();
  auto gpu = mg::make_cuda_backend(0);
  Tensor x = gpu->upload(random_tensor({64}, 22));
  Tensor y;
  mg::cuda::inject_fault(Fault::ArenaAlloc, 1);
  auto rec = gpu->record([&] { y = gpu->scale(x, 3.0f); });
  rec->replay();
  EXPECT_EQ(gpu->download(y).to_vector(), gpu->download(gpu->scale(x, 3.0f)).to_vector());
  mg::cuda::inject_fault(Fault::ArenaAlloc, 2);
  const std::string err = mgtest::error_of([&] { gpu->record([&] { y = gpu->scale(x, 3.0f); }); });
  EXPECT_NE(err.find("recording's activations"), std::string::npos) << err;
  expect_backend_works(*gpu, "a failed arena allocation");
  rec->replay();  // the earlier recording is untouched
  gpu->synchronize();
}

TEST_F(CudaFailure, ChromaBuffersRetriedOnceThenReportedOnce) {
  MG_SKIP_WITHOUT_CUDA();
  const std::vector<float> x = mgtest::random_vector(48000, 23);
  const Tensor want = mg::chroma_features(x, mg::ChromaDevice::CPU);
  mg::cuda::inject_fault(Fault::ChromaAlloc, 1);
  EXPECT_LE(mgtest::rel_err(mg::chroma_features(x, mg::ChromaDevice::CUDA), want), 1e-5);
  mg::cuda::inject_fault(Fault::ChromaAlloc, 2);
  EXPECT_THROW(mg::chroma_features(x, mg::ChromaDevice::CUDA), mg::Error);
  auto gpu = mg::make_cuda_backend(0);
  expect_backend_works(*gpu, "a failed chroma allocation");
  EXPECT_LE(mgtest::rel_err(mg::chroma_features(x, mg::ChromaDevice::CUDA), want), 1e-5);
}

TEST_F(CudaFailure, ChromaReusesItsPlansAcrossCallsAndSizes) {
  // Trap: one backend caches a plan and its buffers per size (a few): a cached plan must give the
  // same result again, and evicting one (five sizes here) must not disturb the others.
  MG_SKIP_WITHOUT_CUDA();
  auto cpu = mg::make_cpu_backend(1);
  auto gpu = mg::make_cuda_backend(0);
  const int n_fft = 1024, hop = 256;
  Tensor window = random_tensor({n_fft}, 25);
  for (int64_t i = 0; i < n_fft; ++i) window.f32()[i] = 0.5f + 0.5f * std::abs(window.f32()[i]);
  Tensor filters = random_tensor({12, n_fft / 2 + 1}, 26);
  for (int64_t i = 0; i < filters.numel(); ++i) filters.f32()[i] = std::abs(filters.f32()[i]);
  const Tensor dwindow = gpu->upload(window), dfilters = gpu->upload(filters);
  for (int round = 0; round < 2; ++round)
    for (int64_t n : {int64_t(2000), int64_t(5000), int64_t(9000), int64_t(13000), int64_t(17000), int64_t(2000)}) {
      const Tensor x = random_tensor({n}, uint32_t(n));
      const Tensor want = cpu->chroma(x, window, 7.0f, filters, hop, 1e-6f);
      const Tensor got = gpu->download(gpu->chroma(gpu->upload(x), dwindow, 7.0f, dfilters, hop, 1e-6f));
      EXPECT_LE(mgtest::rel_err(got, want), 1e-4) << n << " samples, round " << round;
    }
}

TEST_F(CudaFailure, ACardWithoutKernelsIsNotAvailableAndSaysWhy) {
  MG_SKIP_WITHOUT_CUDA();
  mg::cuda::inject_fault(Fault::Probe, 1);
  EXPECT_FALSE(mg::cuda_available());  // so --device auto picks the CPU
  mg::cuda::inject_fault(Fault::Probe, 1);
  const std::string err = mgtest::error_of([] { mg::make_cuda_backend(0); });
  EXPECT_NE(err.find("compute capability"), std::string::npos) << err;
  EXPECT_NE(err.find(mg::cuda::built_arch_list().text), std::string::npos) << err;
  EXPECT_NE(err.find("-DCMAKE_CUDA_ARCHITECTURES="), std::string::npos) << err;
  EXPECT_TRUE(mg::cuda_available());  // the real probe passed and is remembered
  auto gpu = mg::make_cuda_backend(0);
  expect_backend_works(*gpu, "a failed probe");
}

TEST_F(CudaFailure, AnOlderRecordingsArenaDroppedDuringACaptureIsFreedAfterIt) {
  // Trap: `out` holds the last reference to recording A's arena once A is gone; recording B
  // reassigns it while capturing, and the arena's cudaFree must wait for B's capture to end.
  MG_SKIP_WITHOUT_CUDA();
  auto gpu = mg::make_cuda_backend(0);
  Tensor x = gpu->upload(random_tensor({512}, 24));
  Tensor out;
  auto a = gpu->record([&] { out = gpu->scale(x, 2.0f); });
  a->replay();
  a.reset();  // out alone keeps A's arena now
  auto b = gpu->record([&] { out = gpu->scale(x, 4.0f); });
  b->replay();
  std::vector<float> want = random_tensor({512}, 24).to_vector();
  for (float& v : want) v *= 4.0f;
  EXPECT_EQ(gpu->download(out).to_vector(), want);
  expect_backend_works(*gpu, "an arena freed after a capture");
}

TEST_F(CudaFailure, UploadsDoNotNeedTheHostTensorAfterwards) {
  // The upload does not wait for the device: the host tensor is overwritten and freed right after.
  MG_SKIP_WITHOUT_CUDA();
  auto gpu = mg::make_cuda_backend(0);
  std::vector<Tensor> dev;
  std::vector<std::vector<float>> want;
  for (int i = 0; i < 8; ++i) {
    Tensor h = random_tensor({int64_t(1) << (10 + i)}, uint32_t(30 + i));
    want.push_back(h.to_vector());
    dev.push_back(gpu->upload(h));
    std::fill(h.f32(), h.f32() + h.numel(), -1.0f);
  }
  for (int i = 0; i < 8; ++i) EXPECT_EQ(gpu->download(dev[size_t(i)]).to_vector(), want[size_t(i)]) << "upload " << i;
}

// A real device that passes the load's self-check is used; one whose self-check fails is not:
// auto falls back to the CPU with one warning line, cuda is an error (kernels/device_check.h).
TEST_F(CudaFailure, SelfCheckOnTheDeviceDecidesWhetherItIsUsed) {
  MG_SKIP_WITHOUT_CUDA();
  auto gpu = mg::make_cuda_backend(0);
  EXPECT_NO_THROW(mg::check_device_against_cpu(*gpu));
  mg::cuda::inject_fault(Fault::SelfCheck, -1);
  bool cuda = true;
  testing::internal::CaptureStderr();
  auto be = mg::capi::make_model_backend(MUSICGEN_DEVICE_AUTO, 1, &cuda);
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(cuda);
  EXPECT_EQ(be->device(), mg::Device::CPU);
  EXPECT_NE(warning.find("CUDA not used (device self-check:"), std::string::npos) << warning;
  EXPECT_THROW(mg::capi::make_model_backend(MUSICGEN_DEVICE_CUDA, 1, &cuda), mg::capi::DeviceError);
}

// The loaded model's self-check on a real device (lm/device_self_check.h): a healthy GPU passes it
// in every weight dtype a load can use, and an injected difference makes musicgen_model_load fall
// back (auto) or fail (cuda), through the C API itself.
TEST_F(CudaFailure, LoadedModelSelfCheckPassesAndItsFailureFallsBack) {
  MG_SKIP_WITHOUT_CUDA();
  const std::string path = mgtest::data_dir() + "/models/musicgen_tiny";
  auto gpu = mg::make_cuda_backend(0);
  for (mg::DType wd : {mg::DType::F32, mg::DType::F16, mg::DType::BF16}) {
    auto m = mg::MusicGen::load(*gpu, path, wd);
    EXPECT_NO_THROW(mg::check_musicgen_on_device(*m, *gpu, path)) << mg::dtype_name(wd);
  }
  musicgen_model_params p = musicgen_model_default_params();
  musicgen_model* model = nullptr;
  mg::cuda::inject_fault(Fault::StepCheck, -1);
  testing::internal::CaptureStderr();
  ASSERT_EQ(musicgen_model_load(path.c_str(), &p, &model), MUSICGEN_OK);
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_STREQ(musicgen_model_device_name(model), "cpu");
  EXPECT_NE(warning.find("CUDA not used (device self-check: one decode step of the loaded model"), std::string::npos)
      << warning;
  musicgen_model_free(model);
  p.device = MUSICGEN_DEVICE_CUDA;
  EXPECT_EQ(musicgen_model_load(path.c_str(), &p, &model), MUSICGEN_ERROR_DEVICE);
  EXPECT_NE(std::string(musicgen_last_error()).find("one decode step of the loaded model"), std::string::npos);
}
