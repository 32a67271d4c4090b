// MusicGen-melody's chroma on the CPU (Backend::chroma): FFTW3 (float) frame after frame, step for
// step with transformers' MusicgenMelodyFeatureExtractor (conditioning/chroma.h prepares the
// signal, window and filter bank). The CUDA kernel (kernels/cuda/chroma.cu) mirrors it.
#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

namespace {

// Index into the signal for position i of the reflect-padded signal (torch pad_mode="reflect":
// the edge sample is not repeated). Valid because the padding (n_fft/2) is below the length.
inline int64_t reflect_index(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// One FFTW r2c plan and its buffers. Planning is not thread-safe in FFTW, so it is serialised;
// FFTW_ESTIMATE keeps the plan (and so the rounding) independent of timing measurements.
class RealFft {
 public:
  explicit RealFft(int n) : n_(n) {
    in_ = static_cast<float*>(fftwf_malloc(sizeof(float) * size_t(n)));
    out_ = static_cast<fftwf_complex*>(fftwf_malloc(sizeof(fftwf_complex) * size_t(n / 2 + 1)));
    if (in_ && out_) {
      std::lock_guard<std::mutex> lock(planner_mutex());
      plan_ = fftwf_plan_dft_r2c_1d(n, in_, out_, FFTW_ESTIMATE);
    }
    if (!plan_) {
      release();
      throw Error(strcat("chroma: FFTW could not plan a real FFT of size ", n));
    }
  }
  ~RealFft() { release(); }
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;

  float* input() { return in_; }
  const fftwf_complex* output() const { return out_; }
  void run() { fftwf_execute(plan_); }

 private:
  static std::mutex& planner_mutex() {
    static std::mutex m;  // FFTW's planner is process-wide state
    return m;
  }
  void release() {
    if (plan_) {
      std::lock_guard<std::mutex> lock(planner_mutex());
      fftwf_destroy_plan(plan_);
    }
    if (in_) fftwf_free(in_);
    if (out_) fftwf_free(out_);
    plan_ = nullptr;
    in_ = nullptr;
    out_ = nullptr;
  }
  int n_;
  float* in_ = nullptr;
  fftwf_complex* out_ = nullptr;
  fftwf_plan plan_ = nullptr;
};

// Divides each frame by max(max |x|, eps), as F.normalize(p=inf, dim=chroma, eps).
void inf_normalise(float* frame, int n_chroma, float eps) {
  float m = 0.0f;
  for (int c = 0; c < n_chroma; ++c) m = std::max(m, std::fabs(frame[c]));
  const float d = std::max(m, eps);
  for (int c = 0; c < n_chroma; ++c) frame[c] = frame[c] / d;
}

// The first maximum of each row (torch.argmax), i32 [rows].
Tensor first_max_per_row(const Tensor& features) {
  const int64_t frames = features.dim(0), nc = features.dim(1);
  Tensor idx = Tensor::empty(DType::I32, {frames});
  for (int64_t t = 0; t < frames; ++t) {
    const float* row = features.f32() + t * nc;
    idx.ptr<int32_t>()[t] = int32_t(std::max_element(row, row + nc) - row);
  }
  return idx;
}

}  // namespace

Tensor chroma(const Tensor& signal, const Tensor& window, float window_norm, const Tensor& filters, int hop, float eps,
              Tensor* argmax) {
  const int64_t n = signal.numel(), nfft = window.numel(), half = nfft / 2, nbins = nfft / 2 + 1;
  const int n_chroma = int(filters.dim(0));
  const int64_t frames = 1 + n / hop;
  const float* x = signal.f32();
  const float* win = window.f32();
  Tensor out = Tensor::empty(DType::F32, {frames, n_chroma});
  float* o = out.f32();
  const float* fb = filters.f32();
  RealFft fft{int(nfft)};
  std::vector<float> power(static_cast<size_t>(nbins));
  for (int64_t t = 0; t < frames; ++t) {
    float* in = fft.input();
    const int64_t start = t * hop - half;  // frame t is centred on sample t * hop
    for (int64_t k = 0; k < nfft; ++k) in[k] = x[reflect_index(start + k, n)] * win[k];
    fft.run();
    const fftwf_complex* spec = fft.output();
    for (int64_t f = 0; f < nbins; ++f) {
      const float re = spec[f][0] / window_norm, im = spec[f][1] / window_norm;
      const float mag = std::hypot(re, im);
      power[size_t(f)] = mag * mag;
    }
    float* row = o + t * n_chroma;
    for (int c = 0; c < n_chroma; ++c) {
      const float* fr = fb + int64_t(c) * nbins;
      double acc = 0.0;
      for (int64_t f = 0; f < nbins; ++f) acc += double(fr[f]) * double(power[size_t(f)]);
      row[c] = float(acc);
    }
    inf_normalise(row, n_chroma, eps);
  }
  if (argmax) *argmax = first_max_per_row(out);
  return out;
}

}  // namespace mg::cpu
