// The self-check of a model loaded on a GPU (lm/device_self_check.h, codec/device_self_check.h):
// one decode step of the loaded decoder and one codec frame, on the device and on the CPU,
// compared; a mismatch makes --device auto fall back to the CPU with one warning line and
// --device cuda a DeviceError (api/api_internal.h, load_on_device). A machine without a GPU runs
// all of it: a CPU backend stands in for the device, and the device's result is perturbed through
// the fault hooks "selfcheck-step" and "selfcheck-codec" (kernels/cuda/fault_injection.h).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "api/api_internal.h"
#include "codec/device_self_check.h"
#include "kernels/cuda/fault_injection.h"
#include "lm/device_self_check.h"
#include "test_util.h"

using mg::cuda::Fault;

namespace {

class ModelSelfCheck : public ::testing::Test {
 protected:
  void SetUp() override { mg::cuda::clear_faults(); }
  void TearDown() override { mg::cuda::clear_faults(); }
};

std::string tiny_musicgen() { return mgtest::data_dir() + "/models/musicgen_tiny"; }
std::string tiny_melody() { return mgtest::data_dir() + "/models/musicgen_melody_tiny"; }
std::string tiny_encodec() { return mgtest::data_dir() + "/models/encodec_32khz_tiny"; }

// A "GPU" that is a CPU backend: it passes every check unless a failure is injected.
std::unique_ptr<mg::Backend> cpu_as_device(int) { return mg::make_cpu_backend(1); }

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// musicgen_model_load's load and check, on `device` (the CPU standing in for a GPU).
std::unique_ptr<mg::MusicGen> load_musicgen(musicgen_device device, mg::capi::ModelDevice& dev,
                                            const std::string& path) {
  return mg::capi::load_on_device(
      device, 1, dev, [&](mg::Backend& be) { return mg::MusicGen::load(be, path); },
      [&](const mg::MusicGen& m, mg::Backend& be) { mg::check_musicgen_on_device(m, be, path); }, true,
      &cpu_as_device);
}

}  // namespace

TEST_F(ModelSelfCheck, PassesOnAGoodBackendAndKeepsTheDevice) {
  mg::capi::ModelDevice dev;
  testing::internal::CaptureStderr();
  auto m = load_musicgen(MUSICGEN_DEVICE_AUTO, dev, tiny_musicgen());
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(dev.shared);  // the "device" was kept
}

TEST_F(ModelSelfCheck, MelodyDecoderWithoutCrossAttentionPasses) {
  auto be = mg::make_cpu_backend(1);
  auto m = mg::MusicGen::load(*be, tiny_melody());
  EXPECT_NO_THROW(mg::check_musicgen_on_device(*m, *be, tiny_melody()));
}

TEST_F(ModelSelfCheck, LayerByLayerGroupsCoverEveryLayer) {
  auto be = mg::make_cpu_backend(1);
  auto m = mg::MusicGen::load(*be, tiny_musicgen());
  const size_t layers = m->decoder().layers.size();
  ASSERT_GE(layers, 2u);
  EXPECT_NO_THROW(mg::check_decoder_on_device(m->decoder(), *be, /*host_bytes=*/1));
  mg::cuda::inject_fault(Fault::StepCheck, -1);
  const std::string err = mgtest::error_of([&] { mg::check_decoder_on_device(m->decoder(), *be, 1); });
  EXPECT_NE(err.find("(layers 0 to 0 of " + std::to_string(layers) + ")"), std::string::npos) << err;
}

TEST_F(ModelSelfCheck, AutoFallsBackToTheCpuWithOneWarningLineWhenTheDecodeStepDiffers) {
  mg::cuda::inject_fault(Fault::StepCheck, -1);
  mg::capi::ModelDevice dev;
  testing::internal::CaptureStderr();
  auto m = load_musicgen(MUSICGEN_DEVICE_AUTO, dev, tiny_musicgen());
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(dev.shared);
  EXPECT_EQ(&m->backend(), dev.backend.get());  // the model was loaded again, on the CPU backend
  EXPECT_EQ(count_lines(warning), 1) << warning;
  EXPECT_EQ(warning.rfind("libmusicgen: warning: CUDA not used (device self-check: one decode step of the loaded "
                          "model (layers 0 to ",
                          0),
            0u)
      << warning;
  EXPECT_NE(warning.find("differs from the CPU by"), std::string::npos) << warning;
  EXPECT_NE(warning.find("tolerance 0.01"), std::string::npos) << warning;
  EXPECT_NE(warning.find("); running on the CPU\n"), std::string::npos) << warning;
}

TEST_F(ModelSelfCheck, AutoFallsBackToTheCpuWhenTheCodecFrameDiffers) {
  mg::cuda::inject_fault(Fault::CodecCheck, -1);
  mg::capi::ModelDevice dev;
  testing::internal::CaptureStderr();
  auto m = load_musicgen(MUSICGEN_DEVICE_AUTO, dev, tiny_musicgen());
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(dev.shared);
  EXPECT_EQ(count_lines(warning), 1) << warning;
  EXPECT_NE(warning.find("CUDA not used (device self-check: one EnCodec frame decoded by the loaded model on cpu "
                         "differs from the CPU by"),
            std::string::npos)
      << warning;
}

TEST_F(ModelSelfCheck, ExplicitCudaIsADeviceErrorWithTheReason) {
  mg::cuda::inject_fault(Fault::StepCheck, -1);
  mg::capi::ModelDevice dev;
  testing::internal::CaptureStderr();
  try {
    load_musicgen(MUSICGEN_DEVICE_CUDA, dev, tiny_musicgen());
    ADD_FAILURE() << "no error";
  } catch (const mg::capi::DeviceError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("device self-check: one decode step of the loaded model"), std::string::npos) << what;
    EXPECT_NE(what.find("run with --device cpu"), std::string::npos) << what;
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");  // an error, not a warning
}

TEST_F(ModelSelfCheck, EncodecLoadChecksOneFrame) {
  const std::string path = tiny_encodec();
  auto load = [&](musicgen_device device, mg::capi::ModelDevice& dev) {
    return mg::capi::load_on_device(
        device, 1, dev, [&](mg::Backend& be) { return mg::EncodecModel::load(be, path); },
        [&](const mg::EncodecModel& m, mg::Backend& be) { mg::check_codec_on_device(m, be, path); }, true,
        &cpu_as_device);
  };
  mg::capi::ModelDevice good;
  EXPECT_NE(load(MUSICGEN_DEVICE_AUTO, good), nullptr);
  EXPECT_TRUE(good.shared);

  mg::cuda::inject_fault(Fault::CodecCheck, -1);
  mg::capi::ModelDevice fallback;
  testing::internal::CaptureStderr();
  EXPECT_NE(load(MUSICGEN_DEVICE_AUTO, fallback), nullptr);
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(fallback.shared);
  EXPECT_NE(warning.find("one EnCodec frame decoded by the loaded model"), std::string::npos) << warning;
  mg::capi::ModelDevice strict;
  EXPECT_THROW(load(MUSICGEN_DEVICE_CUDA, strict), mg::capi::DeviceError);
}

TEST_F(ModelSelfCheck, CodecFrameIsOneFrameOfEveryCodebook) {
  auto be = mg::make_cpu_backend(1);
  auto codec = mg::EncodecModel::load(*be, tiny_encodec());
  const mg::Tensor codes = mg::self_check_codec_frame(codec->config());
  EXPECT_EQ(codes.dim(0), codec->config().num_quantizers());
  EXPECT_EQ(codes.dim(1), 1);
  const mg::Tensor audio = be->download(codec->decode_segment(*be, codes));
  EXPECT_EQ(audio.dim(2), codec->config().hop_length());
}

TEST_F(ModelSelfCheck, EnvironmentNamesOfTheModelFaults) {
  const auto faults = mg::cuda::parse_fault_list("selfcheck-step,selfcheck-codec");
  ASSERT_EQ(faults.size(), 2u);
  EXPECT_EQ(faults[0], Fault::StepCheck);
  EXPECT_EQ(faults[1], Fault::CodecCheck);
}
