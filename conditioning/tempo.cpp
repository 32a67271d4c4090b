// Tempo by autocorrelation of the onset strength (see tempo.h). The onset spectrogram uses its own
// small radix-2 FFT: it is short (2048), runs once per file, and needs no planner state.
#include "conditioning/tempo.h"

#include <algorithm>
#include <cmath>
#include <complex>

#include "kernels/common.h"

namespace mg {
namespace {

using cd = std::complex<double>;

// In-place iterative radix-2 FFT; n is a power of two.
void fft(std::vector<cd>& a) {
  const size_t n = a.size();
  for (size_t i = 1, j = 0; i < n; ++i) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    const double ang = -2.0 * M_PI / double(len);
    const cd wl(std::cos(ang), std::sin(ang));
    for (size_t i = 0; i < n; i += len) {
      cd w(1.0, 0.0);
      for (size_t k = 0; k < len / 2; ++k) {
        const cd u = a[i + k], v = a[i + k + len / 2] * w;
        a[i + k] = u + v;
        a[i + k + len / 2] = u - v;
        w *= wl;
      }
    }
  }
}

void check_params(const TempoParams& p) {
  MG_CHECK(p.sample_rate > 0 && p.n_fft >= 16 && (p.n_fft & (p.n_fft - 1)) == 0 && p.hop > 0 &&
               p.min_bpm > 0 && p.max_bpm > p.min_bpm && p.prior_bpm > 0 && p.prior_octaves > 0,
           "tempo: bad parameters (rate ", p.sample_rate, ", n_fft ", p.n_fft, " (a power of two), hop ", p.hop,
           ", bpm ", p.min_bpm, "..", p.max_bpm, ")");
}

// Log-magnitude spectrogram frames (centred, zero padded), only as much as the flux needs: the
// previous frame is kept, the flux of each new one is summed on the fly.
std::vector<float> spectral_flux(const std::vector<float>& x, const TempoParams& p) {
  const int64_t n = int64_t(x.size());
  const int64_t frames = 1 + n / p.hop;
  const int bins = p.n_fft / 2 + 1;
  std::vector<double> window(size_t(p.n_fft));
  for (int i = 0; i < p.n_fft; ++i) window[size_t(i)] = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / p.n_fft);
  std::vector<cd> buf(size_t(p.n_fft));
  std::vector<double> prev(size_t(bins), 0.0), cur(size_t(bins), 0.0);
  std::vector<float> flux(size_t(frames), 0.0f);
  for (int64_t f = 0; f < frames; ++f) {
    const int64_t start = f * p.hop - p.n_fft / 2;
    for (int i = 0; i < p.n_fft; ++i) {
      const int64_t j = start + i;
      buf[size_t(i)] = cd(j >= 0 && j < n ? double(x[size_t(j)]) * window[size_t(i)] : 0.0, 0.0);
    }
    fft(buf);
    double sum = 0.0;
    for (int k = 0; k < bins; ++k) {
      cur[size_t(k)] = std::log1p(100.0 * std::abs(buf[size_t(k)]));
      if (f > 0) sum += std::max(0.0, cur[size_t(k)] - prev[size_t(k)]);
    }
    flux[size_t(f)] = float(sum);
    prev.swap(cur);
  }
  return flux;
}

// Autocorrelation normalised by the overlap (so long lags are not penalised), lags 0..max_lag.
std::vector<double> autocorrelation(const std::vector<float>& e, int64_t max_lag) {
  const int64_t n = int64_t(e.size());
  std::vector<double> acf(size_t(max_lag + 1), 0.0);
  for (int64_t lag = 0; lag <= max_lag && lag < n; ++lag) {
    double s = 0.0;
    for (int64_t i = 0; i + lag < n; ++i) s += double(e[size_t(i)]) * double(e[size_t(i + lag)]);
    acf[size_t(lag)] = s / double(n - lag);
  }
  return acf;
}

// The peak of acf near `lag` (within +-radius), refined by a parabola through it and its
// neighbours: a fractional lag, or -1 when the peak sits at the searched range's edge.
double refine_peak(const std::vector<double>& acf, double lag, int radius) {
  const int64_t lo = std::max<int64_t>(1, int64_t(std::floor(lag)) - radius);
  const int64_t hi = std::min<int64_t>(int64_t(acf.size()) - 2, int64_t(std::ceil(lag)) + radius);
  if (lo > hi) return -1;
  int64_t best = lo;
  for (int64_t l = lo; l <= hi; ++l)
    if (acf[size_t(l)] > acf[size_t(best)]) best = l;
  const double a = acf[size_t(best - 1)], b = acf[size_t(best)], c = acf[size_t(best + 1)];
  if (b < a || b < c) return -1;
  const double den = a - 2 * b + c;
  return double(best) + (den < 0 ? 0.5 * (a - c) / den : 0.0);
}

double acf_near(const std::vector<double>& acf, double lag) {
  const int64_t l = int64_t(std::llround(lag));
  double best = 0.0;
  for (int64_t k = l - 1; k <= l + 1; ++k)
    if (k >= 0 && k < int64_t(acf.size())) best = std::max(best, acf[size_t(k)]);
  return best;
}

// The period from the peaks at its multiples: least squares through (k, peak_k), which makes the
// estimate ~k times finer than one peak alone.
double refine_period(const std::vector<double>& acf, double period) {
  double num = 0.0, den = 0.0;
  for (int k = 1; k <= 8; ++k) {
    const double lag = refine_peak(acf, k * period, 1 + k / 2);
    if (lag <= 0) {
      if (k == 1) return period;
      break;
    }
    num += k * lag;
    den += double(k) * k;
    period = num / den;
  }
  return period;
}

// Linear interpolation of e at fractional frame t (0 outside).
double sample_at(const std::vector<float>& e, double t) {
  const int64_t i = int64_t(std::floor(t));
  if (i < 0 || i + 1 >= int64_t(e.size())) return 0.0;
  const double f = t - double(i);
  return (1 - f) * e[size_t(i)] + f * e[size_t(i + 1)];
}

// The beat grid: phase in [0, period) that collects the most onset strength.
std::vector<double> beat_grid(const std::vector<float>& e, double period, const TempoParams& p) {
  double best_phase = 0.0, best = -1.0;
  for (double phase = 0.0; phase < period; phase += 0.25) {
    double s = 0.0;
    for (double t = phase; t < double(e.size()); t += period) s += sample_at(e, t);
    if (s > best) best = s, best_phase = phase;
  }
  std::vector<double> beats;
  const double frame_s = double(p.hop) / p.sample_rate;
  // A centred window starts to see an attack before its centre reaches it: on kick tracks the
  // flux peaks about a third of a window early, so the grid is moved that much later.
  const double delay_s = double(p.n_fft) / (3.0 * p.sample_rate);
  for (double t = best_phase; t < double(e.size()); t += period) beats.push_back(t * frame_s + delay_s);
  return beats;
}

}  // namespace

double tempo_prior(double bpm, const TempoParams& p) {
  const double z = std::log2(bpm / p.prior_bpm) / p.prior_octaves;
  return std::exp(-0.5 * z * z);
}

std::vector<float> onset_strength(const std::vector<float>& mono, const TempoParams& p) {
  check_params(p);
  // Peak-normalised first: the log compression then treats loud and quiet files alike.
  float peak = 0.0f;
  for (float v : mono) peak = std::max(peak, std::fabs(v));
  std::vector<float> x(mono);
  if (peak > 0) for (float& v : x) v /= peak;
  std::vector<float> flux = spectral_flux(x, p);
  // Minus the mean over ~0.5 s: steady noise and slow swells are not onsets.
  const int64_t n = int64_t(flux.size());
  const int64_t half = std::max<int64_t>(1, int64_t(0.25 * p.sample_rate / p.hop));
  std::vector<double> prefix(size_t(n + 1), 0.0);
  for (int64_t i = 0; i < n; ++i) prefix[size_t(i + 1)] = prefix[size_t(i)] + flux[size_t(i)];
  std::vector<float> e(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = std::max<int64_t>(0, i - half), b = std::min<int64_t>(n, i + half + 1);
    const double mean = (prefix[size_t(b)] - prefix[size_t(a)]) / double(b - a);
    e[size_t(i)] = float(std::max(0.0, double(flux[size_t(i)]) - mean));
  }
  return e;
}

TempoEstimate estimate_tempo(const std::vector<float>& mono, const TempoParams& p) {
  const std::vector<float> e = onset_strength(mono, p);
  const double fps = double(p.sample_rate) / p.hop;
  const int64_t min_lag = std::max<int64_t>(2, int64_t(std::floor(60.0 * fps / p.max_bpm)));
  const int64_t max_lag = int64_t(std::ceil(60.0 * fps / p.min_bpm));
  TempoEstimate out;
  // Two periods of the slowest tempo at least, or the autocorrelation says nothing.
  if (int64_t(e.size()) < 2 * min_lag + 4) return out;
  const std::vector<double> acf = autocorrelation(e, std::min<int64_t>(int64_t(e.size()) - 1, 8 * max_lag + 8));
  if (!(acf[0] > 1e-12)) return out;
  int64_t best_lag = -1;
  double best = 0.0;
  for (int64_t lag = min_lag; lag <= max_lag && lag + 1 < int64_t(acf.size()); ++lag) {
    if (acf[size_t(lag)] < acf[size_t(lag - 1)] || acf[size_t(lag)] < acf[size_t(lag + 1)]) continue;  // peaks only
    const double w = acf[size_t(lag)] * tempo_prior(60.0 * fps / double(lag), p);
    if (w > best) best = w, best_lag = lag;
  }
  if (best_lag < 0 || best <= 0.0) return out;
  const double period = refine_period(acf, double(best_lag));
  out.bpm = 60.0 * fps / period;
  out.strength = std::clamp(acf_near(acf, period) / acf[0], 0.0, 1.0);
  // The half and the double tempo, judged the same way (autocorrelation x prior).
  for (const double factor : {0.5, 2.0}) {
    const double alt_bpm = out.bpm * factor, alt_lag = period / factor;
    if (alt_bpm < p.min_bpm || alt_bpm > p.max_bpm || alt_lag + 2 >= double(acf.size())) continue;
    const double w = acf_near(acf, alt_lag) * tempo_prior(alt_bpm, p);
    if (w >= p.ambiguity_ratio * best && (!out.octave_ambiguous || alt_bpm > out.alternative_bpm)) {
      out.octave_ambiguous = true;
      out.alternative_bpm = alt_bpm;
    }
  }
  out.beats = beat_grid(e, period, p);
  return out;
}

}  // namespace mg
