// MusicGen-melody's chroma, step for step with MusicgenMelodyFeatureExtractor (see chroma.h): the
// input, window and filter bank are prepared here, the STFT and filter bank run as the backend op
// Backend::chroma (CPU: FFTW, kernels/cpu/chroma.cpp; CUDA: cuFFT, kernels/cuda/chroma.cu).
#include "conditioning/chroma.h"

#include <algorithm>
#include <cmath>

#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "conditioning/chroma_filterbank.h"
#include "kernels/ops.h"

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

// The backend that runs the op: a single-threaded CPU backend (the FFT loop is serial), or the GPU
// (make_cuda_backend explains why when there is none).
std::unique_ptr<Backend> chroma_backend(ChromaDevice device) {
  return device == ChromaDevice::CPU ? make_cpu_backend(1) : make_cuda_backend(0);
}

// Features and the first maximum of each frame, for one input.
Tensor compute(const std::vector<float>& mono, ChromaDevice device, const ChromaParams& p,
               std::vector<int32_t>* argmax) {
  check_params(p);
  for (size_t i = 0; i < mono.size(); ++i)
    MG_CHECK(std::isfinite(mono[i]), "chroma: input sample ", i, " is not finite (", mono[i], ")");
  const std::vector<float> x = chroma_prepare_input(mono, p);
  const std::vector<float> window = hann_window_f32(p.n_fft);
  const float wnorm = window_norm(window);
  const Tensor fb = chroma_filter_bank(bank_params(p));
  std::unique_ptr<Backend> be = chroma_backend(device);
  Tensor idx;
  const Tensor feats = be->download(be->chroma(be->upload(Tensor::from_vector(x, {int64_t(x.size())})),
                                               be->upload(Tensor::from_vector(window, {p.n_fft})), wnorm,
                                               be->upload(fb), p.hop, p.eps, argmax ? &idx : nullptr));
  if (argmax) {
    const Tensor h = be->download(idx);
    argmax->assign(h.ptr<int32_t>(), h.ptr<int32_t>() + h.numel());
  }
  return feats;
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
  // The op's argmax: on a GPU it comes from the device's own features, whose rounding may differ.
  std::vector<int32_t> argmax;
  compute(mono, device, p, &argmax);
  return one_hot_from_indices(argmax, p.n_chroma);
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
