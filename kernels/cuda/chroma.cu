// cuFFT chroma (Backend::chroma): the CUDA mirror of the CPU op (kernels/cpu/chroma.cpp). Frames
// are cut from the reflect-padded signal and windowed by one kernel, transformed by one batched cuFFT R2C plan, and a
// block per frame applies the power normalisation, the filter bank (accumulated in double, as the
// CPU path does), the inf-norm and the argmax. Only the FFT's rounding differs from the CPU path.
// A plan and its buffers (cuFFT's work area, the frames, the spectrum) are made once per size and
// kept in the backend's device state: making them costs synchronous allocations, and destroying
// them would need a wait for the stream. Everything runs on the backend's stream, without a wait.
#include <cufft.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_sequence_ops.h"

// As CUDA_CHECK: CUDA's last error is cleared too (cuFFT's failures may leave one behind).
#define CUFFT_CHECK(call)                                                                             \
  do {                                                                                                \
    cufftResult mg_fr_ = (call);                                                                      \
    if (mg_fr_ != CUFFT_SUCCESS) {                                                                    \
      cudaGetLastError();                                                                             \
      throw ::mg::Error(::mg::strcat("cuFFT error at ", __FILE__, ":", __LINE__, " in ", #call,      \
                                     ": status ", int(mg_fr_)));                                      \
    }                                                                                                 \
  } while (0)

namespace mg {
namespace cuda {
namespace {

constexpr int kChromaThreads = 256;

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

// One cached plan: the batched R2C transform of `frames` frames of n_fft samples, and one device
// block holding its work area, the windowed frames and the spectrum.
struct CachedPlan {
  int n_fft = 0;
  int64_t frames = 0;
  cufftHandle plan = 0;
  void* block = nullptr;
  float* frames_buf = nullptr;
  cufftComplex* spectrum = nullptr;
  uint64_t last_use = 0;
};

// The plans of one backend, least recently used first out. A melody generation computes one
// chroma per melody length, so a few sizes cover a session.
struct ChromaPlans {
  static constexpr size_t kMaxPlans = 4;
  int device = 0;
  std::vector<CachedPlan> plans;
  uint64_t clock = 0;

  static void destroy(const CachedPlan& p) {
    if (p.plan) cufftDestroy(p.plan);
    if (p.block) cudaFree(p.block);
  }
  ~ChromaPlans() {  // the owner (DeviceState) has waited for the stream
    cudaSetDevice(device);
    for (const CachedPlan& p : plans) destroy(p);
  }
};

namespace {

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

// A plan for (n_fft, frames) with its work area left to us (cufftSetAutoAllocation off), so that
// it can share one allocation with the buffers. Retried once after the memory pool gave its cached
// blocks back, as device_malloc does, since cuFFT may allocate a little of its own.
cufftHandle make_plan(DeviceState& st, int n_fft, int64_t frames, size_t* work_bytes) {
  cufftHandle h = 0;
  cufftResult r = CUFFT_SUCCESS;
  auto attempt = [&] {
    if (h) cufftDestroy(h);
    h = 0;
    r = cufftCreate(&h);
    if (r == CUFFT_SUCCESS) r = cufftSetAutoAllocation(h, 0);
    if (r == CUFFT_SUCCESS) r = cufftMakePlan1d(h, n_fft, CUFFT_R2C, int(frames), work_bytes);
    if (r != CUFFT_SUCCESS) cudaGetLastError();
    return r == CUFFT_SUCCESS;
  };
  if (!retry_after_release(attempt, [&] { release_pool_cache(st); })) {
    if (h) cufftDestroy(h);
    throw Error(strcat("cuda chroma: cannot make a cuFFT plan of ", frames, " x ", n_fft, " points: cuFFT status ",
                       int(r)));
  }
  return h;
}

CachedPlan& plan_for(DeviceState& st, int n_fft, int64_t frames) {
  if (!st.chroma) {
    st.chroma = std::make_shared<ChromaPlans>();
    st.chroma->device = st.device;
  }
  ChromaPlans& c = *st.chroma;
  for (CachedPlan& p : c.plans)
    if (p.n_fft == n_fft && p.frames == frames) {
      p.last_use = ++c.clock;
      return p;
    }
  if (c.plans.size() >= ChromaPlans::kMaxPlans) {
    auto lru = std::min_element(c.plans.begin(), c.plans.end(),
                                [](const CachedPlan& a, const CachedPlan& b) { return a.last_use < b.last_use; });
    CUDA_CHECK(cudaStreamSynchronize(st.stream));  // queued transforms may still use its buffers
    ChromaPlans::destroy(*lru);
    c.plans.erase(lru);
  }
  CachedPlan p;
  p.n_fft = n_fft;
  p.frames = frames;
  size_t work = 0;
  p.plan = make_plan(st, n_fft, frames, &work);
  const size_t frame_bytes = align_up(size_t(frames) * size_t(n_fft) * sizeof(float));
  const size_t spec_bytes = align_up(size_t(frames) * size_t(n_fft / 2 + 1) * sizeof(cufftComplex));
  try {
    p.block = device_malloc(st, align_up(work) + frame_bytes + spec_bytes, "chroma's FFT buffers", Fault::ChromaAlloc);
    CUFFT_CHECK(cufftSetWorkArea(p.plan, p.block));
  } catch (...) {
    ChromaPlans::destroy(p);
    throw;
  }
  char* base = static_cast<char*>(p.block);
  p.frames_buf = reinterpret_cast<float*>(base + align_up(work));
  p.spectrum = reinterpret_cast<cufftComplex*>(base + align_up(work) + frame_bytes);
  p.last_use = ++c.clock;
  c.plans.push_back(p);
  return c.plans.back();
}

}  // namespace

void chroma(DeviceState& st, const float* signal, int64_t n, const float* window, float window_norm,
            const float* filters, int n_fft, int hop, int n_chroma, float eps, float* features, int32_t* argmax,
            int64_t frames) {
  MG_CHECK(n_chroma <= kMaxChroma, "cuda chroma: ", n_chroma, " chroma bins, the kernel holds at most ", kMaxChroma);
  MG_CHECK(frames <= 0x7fffffffLL, "cuda chroma: ", frames, " frames exceed the grid limit");
  MG_CHECK(!st.capturing(), "cuda chroma: cannot be recorded (it may make a cuFFT plan)");
  CachedPlan& plan = plan_for(st, n_fft, frames);
  const int nbins = n_fft / 2 + 1;
  const int64_t total = frames * n_fft;
  frame_kernel<<<grid_for(total, 256), 256, 0, st.stream>>>(signal, n, window, plan.frames_buf, frames, n_fft, hop);
  CUDA_CHECK_LAUNCH();
  CUFFT_CHECK(cufftSetStream(plan.plan, st.stream));
  CUFFT_CHECK(cufftExecR2C(plan.plan, plan.frames_buf, plan.spectrum));
  chroma_kernel<<<unsigned(frames), kChromaThreads, 0, st.stream>>>(plan.spectrum, nbins, filters, n_chroma,
                                                                   window_norm, eps, features, argmax);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
