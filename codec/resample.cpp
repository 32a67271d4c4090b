#include "codec/resample.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/common.h"
#include "kernels/cpu/blas.h"

namespace mg {

namespace {

// Largest kernel table we agree to build (floats): a pair such as 44100 -> 44101 reduces to
// itself and would need ~2e9 taps; julius would try and run out of memory, we say why instead.
constexpr int64_t kMaxKernelFloats = int64_t(1) << 25;
// Scratch for the im2col matrix of one GEMM call (floats): keeps memory flat for long inputs.
constexpr int64_t kMaxChunkFloats = int64_t(1) << 21;

}  // namespace

Resampler::Resampler(int old_sr, int new_sr, int zeros, double rolloff) {
  MG_CHECK(old_sr > 0 && new_sr > 0, "resample: sample rates must be positive, got ", old_sr, " -> ", new_sr);
  MG_CHECK(zeros > 0 && rolloff > 0, "resample: zeros and rolloff must be positive, got ", zeros, ", ", rolloff);
  const int g = std::gcd(old_sr, new_sr);
  old_ = old_sr / g;
  new_ = new_sr / g;
  zeros_ = zeros;
  if (old_ == new_) return;

  // Python arithmetic (doubles) for the scalars, exactly as julius's _init_kernels.
  const double sr = double(std::min(old_, new_)) * rolloff;
  width_ = static_cast<int>(std::ceil(double(int64_t(zeros) * old_) / sr));
  const int64_t taps = 2 * int64_t(width_) + old_;
  MG_CHECK(taps * new_ <= kMaxKernelFloats, "resample ", old_sr, " -> ", new_sr, ": the rates reduce to ", old_,
           " -> ", new_, " (gcd ", g, "), which needs a ", new_, " x ", taps,
           " kernel table; pick rates with a larger common divisor");

  // The tensor maths of julius runs in float32, one torch op at a time; each line below is one
  // of those ops with its rounding, so the kernels agree with julius's to about 1 ulp (the sin/cos
  // implementations may differ by an ulp). A Python scalar meeting a float32 tensor is first
  // rounded to float32.
  kernel_.resize(size_t(taps * new_));
  const float sr_f = static_cast<float>(sr);
  const float zeros_f = static_cast<float>(zeros);
  const float pi_f = static_cast<float>(M_PI);
  const float old_f = static_cast<float>(old_);
  for (int i = 0; i < new_; ++i) {
    const float offset = static_cast<float>(double(-i) / double(new_));  // -i/self.new_sr
    float* k = &kernel_[size_t(i) * size_t(taps)];
    double sum = 0.0;
    for (int64_t j = 0; j < taps; ++j) {
      const float idx = static_cast<float>(j - width_);                  // arange(-width, width+old)
      float t = (offset + idx / old_f) * sr_f;
      t = std::clamp(t, -zeros_f, zeros_f);
      t *= pi_f;
      float w = std::cos(t / zeros_f / 2.0f);
      w = w * w;
      const float s = (t == 0.0f) ? 1.0f : std::sin(t) / t;
      k[j] = s * w;
      sum += k[j];
    }
    // torch sums float32 with a cascade that is close to exact; a double sum rounded once matches it.
    const float norm = static_cast<float>(sum);
    for (int64_t j = 0; j < taps; ++j) k[j] /= norm;
  }
}

int64_t Resampler::default_output_length(int64_t n) const {
  const float q = static_cast<float>(double(int64_t(new_) * n) / double(old_));
  return static_cast<int64_t>(std::floor(q));
}

int64_t Resampler::max_output_length(int64_t n) const {
  const float q = static_cast<float>(double(int64_t(new_) * n) / double(old_));
  return static_cast<int64_t>(std::ceil(q));
}

std::vector<float> Resampler::resample(const float* x, int64_t n, int64_t output_length, bool full) const {
  MG_CHECK(n > 0, "resample: the input signal is empty");
  if (old_ == new_) return std::vector<float>(x, x + n);

  int64_t out_len = 0;
  if (output_length < 0) {
    out_len = full ? max_output_length(n) : default_output_length(n);
  } else {
    MG_CHECK(!full, "resample: full=true and an explicit output_length cannot be combined");
    MG_CHECK(output_length <= max_output_length(n), "resample: output_length must be between 0 and ",
             max_output_length(n), " for ", n, " input samples, got ", output_length);
    out_len = output_length;
  }
  if (out_len == 0) return {};

  const int64_t taps = this->taps();
  const int64_t stride = old_;
  // conv1d over the padded signal yields n/old + 1 blocks of new_ outputs; only as many as
  // out_len needs are computed (julius computes them all and slices).
  const int64_t blocks_total = n / old_ + 1;
  const int64_t blocks = std::min(blocks_total, (out_len + new_ - 1) / new_);

  // Replicate padding of (width, width + old), as F.pad(mode='replicate').
  const int64_t padded_len = n + taps;
  std::vector<float> padded(static_cast<size_t>(padded_len));
  for (int64_t j = 0; j < padded_len; ++j) padded[size_t(j)] = x[std::clamp<int64_t>(j - width_, 0, n - 1)];

  // Each block b is one row of an im2col matrix A (blocks x taps) times the kernel table
  // transposed (taps x new_): output row b holds outputs b*new_ .. b*new_+new_-1, which is
  // exactly julius's transpose(1, 2).reshape interleaving.
  std::vector<float> out(size_t(blocks * new_));
  const int64_t chunk = std::max<int64_t>(1, std::min(blocks, kMaxChunkFloats / taps));
  std::vector<float> cols(size_t(chunk * taps));
  for (int64_t b0 = 0; b0 < blocks; b0 += chunk) {
    const int64_t rows = std::min(chunk, blocks - b0);
    for (int64_t r = 0; r < rows; ++r)
      std::copy_n(&padded[size_t((b0 + r) * stride)], taps, &cols[size_t(r * taps)]);
    cpu::blas::sgemm(false, true, rows, new_, taps, 1.0f, cols.data(), taps, kernel_.data(), taps, 0.0f,
                     &out[size_t(b0 * new_)], new_);
  }
  out.resize(size_t(out_len));
  return out;
}

StreamResampler::StreamResampler(std::shared_ptr<const Resampler> r) : r_(std::move(r)) {}

namespace {
int64_t chunk_rows(const Resampler& r) { return std::max<int64_t>(1, kMaxChunkFloats / r.taps()); }
}  // namespace

void StreamResampler::compute(int64_t rows, std::vector<float>& out) {
  const int64_t taps = r_->taps(), old_ = r_->reduced_old_rate(), new_ = r_->reduced_new_rate(), w = r_->width();
  std::vector<float> cols(size_t(rows * taps));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < taps; ++j) {
      // padded[j'] = x[clamp(j' - width, 0, n - 1)], j' = (done_rows_ + r) * old + j
      const int64_t i = std::clamp<int64_t>((done_rows_ + r) * old_ + j - w, 0, n_ - 1);
      cols[size_t(r * taps + j)] = i == 0 ? first_ : in_[size_t(i - in_begin_)];
    }
  const size_t at = out.size();
  out.resize(at + size_t(rows * new_));
  cpu::blas::sgemm(false, true, rows, new_, taps, 1.0f, cols.data(), taps, r_->kernel().data(), taps, 0.0f,
                   &out[at], new_);
  done_rows_ += rows;
  // The next row reads from (done_rows_ * old - width) on; the last sample stays (the right padding).
  const int64_t keep = std::clamp<int64_t>(done_rows_ * old_ - w, in_begin_,
                                           std::max(in_begin_, in_begin_ + int64_t(in_.size()) - 1));
  in_.erase(in_.begin(), in_.begin() + (keep - in_begin_));
  in_begin_ = keep;
}

std::vector<float> StreamResampler::push(const float* x, int64_t n) {
  if (n <= 0) return {};
  if (n_ == 0) first_ = x[0];
  if (r_->is_identity()) {
    n_ += n;
    emitted_ += n;
    return std::vector<float>(x, x + n);
  }
  in_.insert(in_.end(), x, x + n);
  n_ += n;
  // A chunk of rows is final once every input it reads is a real sample (no right padding).
  const int64_t old_ = r_->reduced_old_rate(), w = r_->width(), taps = r_->taps(), c = chunk_rows(*r_);
  std::vector<float> out;
  while ((done_rows_ + c - 1) * old_ + taps - 1 - w < n_) compute(c, out);
  emitted_ += int64_t(out.size());
  return out;
}

std::vector<float> StreamResampler::finish() {
  MG_CHECK(n_ > 0, "resample: the input signal is empty");
  if (r_->is_identity()) return {};
  const int64_t out_len = r_->default_output_length(n_), new_ = r_->reduced_new_rate();
  // As Resampler::resample: only the blocks out_len needs, in chunks from the same boundaries.
  const int64_t blocks = std::min(n_ / r_->reduced_old_rate() + 1, (out_len + new_ - 1) / new_);
  std::vector<float> out;
  while (done_rows_ < blocks) compute(std::min(chunk_rows(*r_), blocks - done_rows_), out);
  const int64_t keep = out_len - emitted_;
  MG_CHECK(keep >= 0 && keep <= int64_t(out.size()), "resample: the stream emitted ", emitted_,
           " samples, more than the ", out_len, " of the whole signal");
  out.resize(size_t(keep));
  emitted_ = out_len;
  return out;
}

std::vector<float> resample_frac(const std::vector<float>& x, int old_sr, int new_sr, int64_t output_length,
                                 bool full) {
  return Resampler(old_sr, new_sr).resample(x, output_length, full);
}

}  // namespace mg
