// cuFFT chroma (Backend::chroma): the CUDA mirror of the CPU op (kernels/cpu/chroma.cpp). Frames
// are cut from the reflect-padded signal and windowed by one kernel, transformed by one batched cuFFT R2C plan, and a
// block per frame applies the power normalisation, the filter bank (accumulated in double, as the
// CPU path does), the inf-norm and the argmax. Only the FFT's rounding differs from the CPU path.
#include <cufft.h>

#include <cmath>
#include <memory>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

#define CUFFT_CHECK(call)                                                                             \
  do {                                                                                                \
    cufftResult mg_fr_ = (call);                                                                      \
    if (mg_fr_ != CUFFT_SUCCESS)                                                                      \
      throw ::mg::Error(::mg::strcat("cuFFT error at ", __FILE__, ":", __LINE__, " in ", #call,      \
                                     ": status ", int(mg_fr_)));                                      \
  } while (0)

namespace mg {
namespace cuda {
namespace {

constexpr int kChromaThreads = 256;

struct FftPlan {
  cufftHandle h = 0;
  bool made = false;
  ~FftPlan() {
    if (made) cufftDestroy(h);
  }
};

// frames[t, k] = x[reflect(t * hop - n_fft / 2 + k)] * window[k] (torch pad_mode="reflect").
__global__ void frame_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ window,
                             float* __restrict__ frames, int64_t num_frames, int n_fft, int hop) {
  const int64_t total = num_frames * n_fft;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / n_fft, k = i % n_fft;
    int64_t j = t * hop - n_fft / 2 + k;
    if (j < 0) j = -j;
    if (j >= n) j = 2 * (n - 1) - j;
    frames[i] = x[j] * window[k];
  }
}

__device__ __forceinline__ double warp_sum_d(double v) {
  for (int off = kWarp / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// One block per frame: power = |X / window_norm|^2, raw[c] = sum_f filters[c, f] * power[f],
// features = raw / max(max |raw|, eps), argmax = first maximum.
__global__ void chroma_kernel(const cufftComplex* __restrict__ spec, int nbins, const float* __restrict__ filters,
                              int n_chroma, float window_norm, float eps, float* __restrict__ features,
                              int32_t* __restrict__ argmax) {
  __shared__ double partial[kMaxChroma][kChromaThreads / kWarp];
  const int64_t t = blockIdx.x;
  const cufftComplex* row = spec + t * nbins;
  double acc[kMaxChroma];
  for (int c = 0; c < n_chroma; ++c) acc[c] = 0.0;
  for (int f = threadIdx.x; f < nbins; f += blockDim.x) {
    const float re = row[f].x / window_norm, im = row[f].y / window_norm;
    const float mag = hypotf(re, im);
    const double p = double(mag * mag);
    for (int c = 0; c < n_chroma; ++c) acc[c] += double(filters[int64_t(c) * nbins + f]) * p;
  }
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  for (int c = 0; c < n_chroma; ++c) {
    const double s = warp_sum_d(acc[c]);
    if (lane == 0) partial[c][warp] = s;
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  float raw[kMaxChroma];
  float m = 0.0f;
  for (int c = 0; c < n_chroma; ++c) {
    double s = 0.0;
    for (int w = 0; w < kChromaThreads / kWarp; ++w) s += partial[c][w];
    raw[c] = float(s);
    m = fmaxf(m, fabsf(raw[c]));
  }
  const float d = fmaxf(m, eps);
  int best = 0;
  for (int c = 0; c < n_chroma; ++c) {
    raw[c] = raw[c] / d;
    features[t * n_chroma + c] = raw[c];
    if (raw[c] > raw[best]) best = c;  // strict: the first maximum wins, as torch.argmax
  }
  argmax[t] = best;
}

}  // namespace

void chroma(cudaStream_t s, const float* signal, int64_t n, const float* window, float window_norm,
            const float* filters, int n_fft, int hop, int n_chroma, float eps, float* features, int32_t* argmax,
            float* frames_scratch, float* spectrum, int64_t frames) {
  MG_CHECK(n_chroma <= kMaxChroma, "cuda chroma: ", n_chroma, " chroma bins, the kernel holds at most ", kMaxChroma);
  MG_CHECK(frames <= 0x7fffffffLL, "cuda chroma: ", frames, " frames exceed the grid limit");
  const int nbins = n_fft / 2 + 1;
  cufftComplex* spec = reinterpret_cast<cufftComplex*>(spectrum);
  const int64_t total = frames * n_fft;
  frame_kernel<<<grid_for(total, 256), 256, 0, s>>>(signal, n, window, frames_scratch, frames, n_fft, hop);
  CUDA_CHECK_LAUNCH();

  FftPlan plan;
  CUFFT_CHECK(cufftPlan1d(&plan.h, n_fft, CUFFT_R2C, int(frames)));
  plan.made = true;
  CUFFT_CHECK(cufftSetStream(plan.h, s));
  CUFFT_CHECK(cufftExecR2C(plan.h, frames_scratch, spec));

  chroma_kernel<<<unsigned(frames), kChromaThreads, 0, s>>>(spec, nbins, filters, n_chroma, window_norm, eps,
                                                            features, argmax);
  CUDA_CHECK_LAUNCH();
  // The plan is destroyed on return: its work must be done by then.
  CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace cuda
}  // namespace mg
