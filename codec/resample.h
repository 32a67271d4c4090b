// Sample-rate conversion that reproduces julius.resample_frac (julius 0.2.x), the resampler
// audiocraft's convert_audio uses: a windowed-sinc polyphase FIR whose kernels are built in float32
// the way julius builds them, applied to the replicate-padded signal with stride old_sr.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace mg {

class Resampler {
 public:
  // Rates are reduced by their gcd first, as julius does; the kernels are built here, once.
  // zeros: zero crossings of the sinc kept on each side; rolloff: cutoff as a fraction of the
  // lower Nyquist frequency. Throws mg::Error for non-positive rates or a reduced pair so large
  // that its kernel table would not fit in memory (e.g. 44100 -> 44101).
  Resampler(int old_sr, int new_sr, int zeros = 24, double rolloff = 0.945);

  // julius's output lengths for an input of n samples: floor / ceil of new*n/old, where the
  // quotient is rounded to float32 first (torch.as_tensor of a Python float), so for long inputs
  // floor can be one more than the exact integer quotient. That is the reference; we follow it.
  int64_t default_output_length(int64_t n) const;
  int64_t max_output_length(int64_t n) const;

  // Resamples x[0..n). output_length < 0 means the default (or the max when `full`); otherwise it
  // must lie in [0, max_output_length(n)] and `full` must be false. n must be positive.
  std::vector<float> resample(const float* x, int64_t n, int64_t output_length = -1, bool full = false) const;
  std::vector<float> resample(const std::vector<float>& x, int64_t output_length = -1, bool full = false) const {
    return resample(x.data(), static_cast<int64_t>(x.size()), output_length, full);
  }

  bool is_identity() const { return old_ == new_; }
  int reduced_old_rate() const { return old_; }
  int reduced_new_rate() const { return new_; }
  int width() const { return width_; }                     // padding on the left, in input samples
  int taps() const { return 2 * width_ + old_; }           // length of each phase's kernel
  // new_ rows of taps() floats: row i gives output phase i (julius's self.kernel squeezed).
  const std::vector<float>& kernel() const { return kernel_; }

 private:
  int old_ = 1, new_ = 1, zeros_ = 24;
  int width_ = 0;
  std::vector<float> kernel_;
};

// Resampler::resample(x) (the default output length) over a signal that arrives in blocks, for
// files of any length. Exactly the same numbers: every output block is the same row of the same
// im2col product, and the GEMM calls cover the same rows as the whole-signal call (chunks of
// kMaxChunkFloats / taps rows, the remainder at the end), so nothing depends on how the input is
// cut. Memory: one GEMM chunk (8 MB of im2col) and the input it reads.
class StreamResampler {
 public:
  explicit StreamResampler(std::shared_ptr<const Resampler> r);
  // Takes x[0..n); returns the outputs that are now final (possibly none).
  std::vector<float> push(const float* x, int64_t n);
  // The rest, up to default_output_length(all input); the input must not have been empty.
  std::vector<float> finish();

 private:
  void compute(int64_t rows, std::vector<float>& out);  // the next `rows` output blocks
  std::shared_ptr<const Resampler> r_;
  std::vector<float> in_;   // input samples [in_begin_, in_begin_ + in_.size())
  int64_t in_begin_ = 0, n_ = 0, done_rows_ = 0, emitted_ = 0;
  float first_ = 0.0f;      // x[0], the left replicate padding
};

// One-shot julius.resample_frac(x, old_sr, new_sr). Build a Resampler to reuse the kernels.
std::vector<float> resample_frac(const std::vector<float>& x, int old_sr, int new_sr, int64_t output_length = -1,
                                 bool full = false);

}  // namespace mg
