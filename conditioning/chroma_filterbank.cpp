// Line-for-line with transformers.audio_utils.chroma_filter_bank (itself librosa's chroma()), in
// float64; comments give the numpy line each block mirrors.
#include "conditioning/chroma_filterbank.h"

#include <cmath>
#include <vector>

namespace mg {

Tensor chroma_filter_bank(const ChromaFilterBankParams& p) {
  MG_CHECK(p.sample_rate > 0 && p.n_fft > 1 && p.n_chroma > 0, "chroma_filter_bank: bad parameters (sample_rate ",
           p.sample_rate, ", n_fft ", p.n_fft, ", n_chroma ", p.n_chroma, ")");
  const int n = p.n_fft, nc = p.n_chroma;
  const double bins = nc;

  // frequencies = linspace(0, sr, n_fft, endpoint=False)[1:]; freq_bins = nc * log2(f / (A440/16))
  const double a440 = 440.0 * std::pow(2.0, p.tuning / bins);
  std::vector<double> freq_bins(static_cast<size_t>(n));
  for (int i = 1; i < n; ++i) {
    const double f = double(i) * (double(p.sample_rate) / double(n));
    freq_bins[size_t(i)] = bins * std::log2(f / (a440 / 16.0));
  }
  // The 0 Hz bin gets a made-up value 1.5 octaves below bin 1.
  freq_bins[0] = freq_bins[1] - 1.5 * bins;

  // bins_width = concat(maximum(diff(freq_bins), 1), [1])
  std::vector<double> width(size_t(n), 1.0);
  for (int i = 0; i + 1 < n; ++i) width[size_t(i)] = std::max(freq_bins[size_t(i) + 1] - freq_bins[size_t(i)], 1.0);

  // D = freq_bins - c, folded into [-nc/2, nc/2); bumps exp(-0.5 (2 D / width)^2)
  const double half = std::round(bins / 2.0);
  std::vector<double> w(size_t(nc) * size_t(n));
  for (int c = 0; c < nc; ++c) {
    for (int i = 0; i < n; ++i) {
      // All arguments are positive here (the + 10 nc offset), so fmod equals np.remainder.
      const double d = std::fmod(freq_bins[size_t(i)] - c + half + 10.0 * bins, bins) - half;
      const double z = 2.0 * d / width[size_t(i)];
      w[size_t(c) * size_t(n) + size_t(i)] = std::exp(-0.5 * z * z);
    }
  }
  // Each column divided by its L2 norm (numpy sums axis 0 row by row, in order).
  for (int i = 0; i < n; ++i) {
    double ss = 0.0;
    for (int c = 0; c < nc; ++c) ss += w[size_t(c) * size_t(n) + size_t(i)] * w[size_t(c) * size_t(n) + size_t(i)];
    const double norm = std::sqrt(ss);
    for (int c = 0; c < nc; ++c) w[size_t(c) * size_t(n) + size_t(i)] /= norm;
  }
  // Octave weighting exp(-0.5 ((freq_bins / nc - center) / half_width)^2).
  if (p.octave_width > 0) {
    for (int i = 0; i < n; ++i) {
      const double z = (freq_bins[size_t(i)] / bins - p.octave_center) / p.octave_width;
      const double g = std::exp(-0.5 * z * z);
      for (int c = 0; c < nc; ++c) w[size_t(c) * size_t(n) + size_t(i)] *= g;
    }
  }

  // roll(-3 * (nc // 12)) so that row 0 is C, keep the first n_fft/2 + 1 columns, cast to f32.
  const int shift = p.start_at_c ? 3 * (nc / 12) : 0;
  const int64_t nf = n / 2 + 1;
  Tensor out = Tensor::empty(DType::F32, {nc, nf});
  float* o = out.f32();
  for (int c = 0; c < nc; ++c) {
    const int src = (c + shift) % nc;
    for (int64_t i = 0; i < nf; ++i) o[c * nf + i] = float(w[size_t(src) * size_t(n) + size_t(i)]);
  }
  return out;
}

}  // namespace mg
