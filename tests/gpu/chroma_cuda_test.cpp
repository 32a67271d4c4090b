// The cuFFT chroma (kernels/cuda/chroma.cu) against the CPU FFTW path (itself pinned to transformers
// by tests/parity/chroma_test.cpp), on the stored bach input, noise, an input shorter than n_fft,
// one longer than 30 s and silence.
//
// Trap: only the FFT differs between the two paths (same prepared input, window, filter bank and
// double accumulation), so the features must agree to 1e-5 relative; the one-hot frames must be
// identical except where the CPU's two largest bins tie within 1e-5 (counted and printed). Skips
// without a CUDA device (this binary is built in every configuration).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "conditioning/chroma.h"
#include "kernels/ops.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

#define MG_SKIP_WITHOUT_CUDA()                                                                   \
  do {                                                                                           \
    if (!mg::cuda_available())                                                                   \
      GTEST_SKIP() << "no CUDA device: the CUDA chroma check needs a GPU (build with "           \
                      "-DMUSICGEN_CUDA=ON and run on a machine with one)";                       \
  } while (0)

void compare(const std::string& what, const std::vector<float>& x) {
  SCOPED_TRACE(what);
  const mg::Tensor cpu = mg::chroma_features(x, mg::ChromaDevice::CPU);
  const mg::Tensor gpu = mg::chroma_features(x, mg::ChromaDevice::CUDA);
  ASSERT_EQ(cpu.shape, gpu.shape);
  const double rel = mgtest::rel_err(gpu, cpu);
  const double maxabs = mgtest::max_abs_diff(gpu.to_vector(), cpu.to_vector());
  EXPECT_LT(rel, 1e-5);
  EXPECT_LT(maxabs, 1e-5);
  const mg::Tensor oh_gpu = mg::chroma_one_hot(x, mg::ChromaDevice::CUDA);  // the device argmax
  const int64_t frames = cpu.dim(0);
  int ties = 0;
  for (int64_t t = 0; t < frames; ++t) {
    const float* c = cpu.f32() + t * 12;
    const float* g = oh_gpu.f32() + t * 12;
    const int ref = int(std::max_element(c, c + 12) - c);
    const int ours = int(std::max_element(g, g + 12) - g);
    EXPECT_EQ(g[ours], 1.0f);
    if (ours == ref) continue;
    if (c[ref] - c[ours] <= 1e-5f) {
      ++ties;
      std::printf("[tie] %s frame %lld: CPU bin %d, CUDA bin %d (%.9g vs %.9g)\n", what.c_str(), (long long)t, ref,
                  ours, c[ref], c[ours]);
    } else {
      ADD_FAILURE() << "frame " << t << ": CPU bin " << ref << ", CUDA bin " << ours;
    }
  }
  std::printf("%s: %lld frames, rel err %.3g, max abs diff %.3g, tie frames %d\n", what.c_str(), (long long)frames,
              rel, maxabs, ties);
}

TEST(ChromaCuda, MatchesCpu) {
  MG_SKIP_WITHOUT_CUDA();
  const auto g = mg::load_safetensors(mgtest::golden_dir() + "/chroma/synthetic.safetensors");
  const std::vector<float> bach = g.at("bach.input").to_vector();
  compare("bach", bach);
  std::vector<float> x4;
  for (int i = 0; i < 4; ++i) x4.insert(x4.end(), bach.begin(), bach.end());
  compare("bach_x4 (truncated to 30 s)", x4);
  compare("noise", mgtest::random_vector(123457, 5));
  compare("short", g.at("short.input").to_vector());
  compare("silence", std::vector<float>(1000, 0.0f));
}

// Without a device (or a CUDA build) asking for CUDA is a clear mg::Error, never a crash.
TEST(ChromaCuda, NoDeviceIsAnError) {
  if (mg::cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_THROW(mg::chroma_features(std::vector<float>(20000, 0.1f), mg::ChromaDevice::CUDA), mg::Error);
}

}  // namespace
