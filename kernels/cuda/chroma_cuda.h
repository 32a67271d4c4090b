// cuFFT chroma (kernels/cuda/chroma.cu), the CUDA mirror of conditioning/chroma.cpp's CPU path.
// Plain C++ types only, so conditioning/chroma.cpp can include it from a g++ translation unit; it
// is compiled and linked only when the library is built with CUDA (MUSICGEN_HAVE_CUDA).
#pragma once

#include <cstdint>
#include <vector>

namespace mg {
namespace cuda {

struct ChromaCudaResult {
  std::vector<float> features;  // [frames, n_chroma], each frame divided by max(its max, eps)
  std::vector<int32_t> argmax;  // [frames], the first maximum of each frame (torch.argmax)
};

// signal: the prepared input (conditioning's chroma_prepare_input: at least n_fft samples), reflect-
// padded by n_fft/2 on both sides here; window: n_fft samples; filters: [n_chroma, n_fft/2 + 1];
// window_norm: sqrt(sum window^2) (torchaudio normalized=True divides the complex STFT by it).
// Runs on the current device; throws mg::Error on any CUDA/cuFFT failure or bad size.
ChromaCudaResult chroma_features_cuda(const float* signal, int64_t n, const float* window, float window_norm,
                                      const float* filters, int n_fft, int hop, int n_chroma, float eps);

}  // namespace cuda
}  // namespace mg
