// CPU chroma with FFTW3 (float), step for step with MusicgenMelodyFeatureExtractor (see chroma.h);
// the CUDA path (kernels/cuda/chroma.cu) starts from the same prepared input, window and filters.
#include "conditioning/chroma.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "conditioning/chroma_filterbank.h"
#ifdef MUSICGEN_HAVE_CUDA
#include "kernels/cuda/chroma_cuda.h"
#include "kernels/ops.h"
#endif

namespace mg {
namespace {

void check_params(const ChromaParams& p) {
  MG_CHECK(p.sample_rate > 0 && p.n_fft >= 2 && p.n_fft % 2 == 0 && p.hop > 0 && p.n_chroma > 0 &&
               p.max_samples >= p.n_fft,
           "chroma: bad parameters (sample_rate ", p.sample_rate, ", n_fft ", p.n_fft, ", hop ", p.hop,
           ", n_chroma ", p.n_chroma, ", max_samples ", p.max_samples, ")");
}

// torch.hann_window(n, periodic=True) as torch computes it in float32: arange * float(2 pi / n),
// cos, * -0.5, + 0.5 (each step rounded to float).
std::vector<float> hann_window_f32(int n) {
  std::vector<float> w(static_cast<size_t>(n));
  const float step = float(2.0 * M_PI / double(n));
  for (int i = 0; i < n; ++i) {
    const float c = std::cos(float(i) * step);
    const float m = c * -0.5f;
    w[size_t(i)] = m + 0.5f;
  }
  return w;
}

// sqrt(sum w^2): the divisor of torchaudio's window normalisation.
float window_norm(const std::vector<float>& w) {
  double ss = 0.0;
  for (float v : w) ss += double(v) * double(v);
  return std::sqrt(float(ss));
}

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

Tensor features_cpu(const std::vector<float>& x, const std::vector<float>& window, float wnorm, const Tensor& fb,
                    const ChromaParams& p) {
  const int64_t n = int64_t(x.size()), nfft = p.n_fft, half = nfft / 2, nbins = nfft / 2 + 1;
  const int64_t frames = 1 + n / p.hop;
  Tensor out = Tensor::empty(DType::F32, {frames, p.n_chroma});
  float* o = out.f32();
  const float* filters = fb.f32();
  RealFft fft(p.n_fft);
  std::vector<float> power(static_cast<size_t>(nbins));
  for (int64_t t = 0; t < frames; ++t) {
    float* in = fft.input();
    const int64_t start = t * p.hop - half;  // frame t is centred on sample t * hop
    for (int64_t k = 0; k < nfft; ++k) in[k] = x[size_t(reflect_index(start + k, n))] * window[size_t(k)];
    fft.run();
    const fftwf_complex* spec = fft.output();
    for (int64_t f = 0; f < nbins; ++f) {
      const float re = spec[f][0] / wnorm, im = spec[f][1] / wnorm;
      const float mag = std::hypot(re, im);
      power[size_t(f)] = mag * mag;
    }
    float* row = o + t * p.n_chroma;
    for (int c = 0; c < p.n_chroma; ++c) {
      const float* fr = filters + int64_t(c) * nbins;
      double acc = 0.0;
      for (int64_t f = 0; f < nbins; ++f) acc += double(fr[f]) * double(power[size_t(f)]);
      row[c] = float(acc);
    }
    inf_normalise(row, p.n_chroma, p.eps);
  }
  return out;
}

Tensor one_hot_from_indices(const std::vector<int32_t>& idx, int n_chroma) {
  Tensor out = Tensor::zeros(DType::F32, {int64_t(idx.size()), n_chroma});
  float* o = out.f32();
  for (size_t t = 0; t < idx.size(); ++t) o[t * size_t(n_chroma) + size_t(idx[t])] = 1.0f;
  return out;
}

ChromaFilterBankParams bank_params(const ChromaParams& p) {
  ChromaFilterBankParams b;
  b.sample_rate = p.sample_rate;
  b.n_fft = p.n_fft;
  b.n_chroma = p.n_chroma;
  return b;
}

#ifdef MUSICGEN_HAVE_CUDA
cuda::ChromaCudaResult run_cuda(const std::vector<float>& x, const std::vector<float>& window, float wnorm,
                                const Tensor& fb, const ChromaParams& p) {
  MG_CHECK(cuda_available(), "chroma: CUDA requested but no CUDA device is present");
  return cuda::chroma_features_cuda(x.data(), int64_t(x.size()), window.data(), wnorm, fb.f32(), p.n_fft, p.hop,
                                    p.n_chroma, p.eps);
}
#endif

// Features (and, from CUDA, the device's argmax) for one input.
Tensor compute(const std::vector<float>& mono, ChromaDevice device, const ChromaParams& p,
               std::vector<int32_t>* cuda_argmax) {
  check_params(p);
  for (size_t i = 0; i < mono.size(); ++i)
    MG_CHECK(std::isfinite(mono[i]), "chroma: input sample ", i, " is not finite (", mono[i], ")");
  const std::vector<float> x = chroma_prepare_input(mono, p);
  const std::vector<float> window = hann_window_f32(p.n_fft);
  const float wnorm = window_norm(window);
  const Tensor fb = chroma_filter_bank(bank_params(p));
  if (device == ChromaDevice::CPU) return features_cpu(x, window, wnorm, fb, p);
#ifdef MUSICGEN_HAVE_CUDA
  cuda::ChromaCudaResult r = run_cuda(x, window, wnorm, fb, p);
  const int64_t frames = int64_t(r.argmax.size());
  if (cuda_argmax) *cuda_argmax = std::move(r.argmax);
  return Tensor::from_vector(r.features, {frames, p.n_chroma});
#else
  (void)cuda_argmax;
  throw Error("chroma: CUDA requested, but libmusicgen was built without CUDA (rebuild with -DMUSICGEN_CUDA=ON)");
#endif
}

}  // namespace

int64_t chroma_num_frames(int64_t num_samples, const ChromaParams& p) {
  check_params(p);
  MG_CHECK(num_samples >= 0, "chroma_num_frames: negative sample count ", num_samples);
  const int64_t n = std::min(std::max(num_samples, int64_t(p.n_fft)), p.max_samples);
  return 1 + n / p.hop;
}

double chroma_frame_rate(const ChromaParams& p) { return double(p.sample_rate) / double(p.hop); }

std::vector<float> chroma_prepare_input(const std::vector<float>& mono, const ChromaParams& p) {
  check_params(p);
  const int64_t n = std::min(int64_t(mono.size()), p.max_samples);
  if (n >= p.n_fft) return std::vector<float>(mono.begin(), mono.begin() + n);
  const int64_t pad = p.n_fft - n;
  std::vector<float> x(size_t(p.n_fft), 0.0f);
  std::copy(mono.begin(), mono.begin() + n, x.begin() + pad / 2);
  return x;
}

Tensor chroma_features(const std::vector<float>& mono, ChromaDevice device, const ChromaParams& p) {
  return compute(mono, device, p, nullptr);
}

Tensor chroma_argmax_one_hot(const Tensor& features) {
  MG_CHECK(features.ndim() == 2 && features.dtype == DType::F32 && features.device == Device::CPU,
           "chroma_argmax_one_hot: expected a CPU f32 [T, n_chroma] tensor, got ", shape_str(features.shape));
  const int64_t frames = features.dim(0), nc = features.dim(1);
  MG_CHECK(nc > 0, "chroma_argmax_one_hot: no chroma bins");
  std::vector<int32_t> idx(static_cast<size_t>(frames));
  const float* f = features.f32();
  for (int64_t t = 0; t < frames; ++t) {
    const float* row = f + t * nc;
    idx[size_t(t)] = int32_t(std::max_element(row, row + nc) - row);  // first maximum
  }
  return one_hot_from_indices(idx, int(nc));
}

Tensor chroma_one_hot(const std::vector<float>& mono, ChromaDevice device, const ChromaParams& p) {
  std::vector<int32_t> device_argmax;
  Tensor feats = compute(mono, device, p, &device_argmax);
  if (device == ChromaDevice::CUDA) return one_hot_from_indices(device_argmax, p.n_chroma);
  return chroma_argmax_one_hot(feats);
}

Tensor chroma_fit_length(const Tensor& chroma, int64_t frames) {
  MG_CHECK(chroma.ndim() == 2 && chroma.dtype == DType::F32 && chroma.device == Device::CPU,
           "chroma_fit_length: expected a CPU f32 [T, n_chroma] tensor, got ", shape_str(chroma.shape));
  const int64_t t = chroma.dim(0), nc = chroma.dim(1);
  MG_CHECK(t > 0, "chroma_fit_length: the chroma has no frames");
  MG_CHECK(frames > 0, "chroma_fit_length: target length ", frames, " must be positive");
  Tensor out = Tensor::empty(DType::F32, {frames, nc});
  // repeat(ceil(frames / t)) then [:frames] is row i <- row i mod t; truncation is the same rule.
  for (int64_t i = 0; i < frames; ++i)
    std::copy(chroma.f32() + (i % t) * nc, chroma.f32() + (i % t + 1) * nc, out.f32() + i * nc);
  return out;
}

Tensor null_chroma(int n_chroma) {
  MG_CHECK(n_chroma > 0, "null_chroma: n_chroma ", n_chroma, " must be positive");
  Tensor out = Tensor::zeros(DType::F32, {1, n_chroma});
  out.f32()[0] = 1.0f;
  return out;
}

Tensor melody_chroma(const AudioBuffer& audio, ChromaDevice device) {
  check_audio_buffer(audio, "melody");
  const ChromaParams p;
  const AudioBuffer mono = convert_audio(audio, p.sample_rate, 1);
  return chroma_one_hot(mono.channels[0], device, p);
}

}  // namespace mg
