#include "lm/recorded_step.h"

#include <cstdint>
#include <cstring>

namespace mg {
namespace {

// A view of i32 values at `offset` inside an i32 buffer (device or host).
Tensor i32_view(const Tensor& buf, int64_t offset, const Shape& shape) {
  return Tensor::view(static_cast<int32_t*>(buf.data) + offset, DType::I32, shape, buf.device, buf.owner);
}

}  // namespace

RecordedStep::RecordedStep(Backend& be, const MusicgenDecoder& dec, DecoderState& state, bool cfg,
                           float guidance_scale, const SamplerParams& sampler, const std::vector<uint64_t>& seeds,
                           bool want_guided)
    : be_(be), st_(state), K_(dec.cfg.num_codebooks) {
  const int R = st_.rows;
  MG_CHECK(!seeds.empty() && R == (cfg ? 2 : 1) * int(seeds.size()), "RecordedStep: ", R, " rows for ", seeds.size(),
           " sequences", cfg ? " with CFG" : "");
  const int64_t KR = int64_t(K_) * R;
  in_dev_ = be_.alloc(DType::I32, {KR + R + 4});
  at_.ids = i32_view(in_dev_, 0, {K_, R});
  at_.row_positions = i32_view(in_dev_, KR, {R});
  at_.pos = i32_view(in_dev_, KR + R, {1});
  at_.keys = i32_view(in_dev_, KR + R + 1, {1});
  step_ = i32_view(in_dev_, KR + R + 2, {1});
  column_ = i32_view(in_dev_, KR + R + 3, {1});
  counters_ = i32_view(in_dev_, KR, {R + 4});
  Tensor s = Tensor::empty(DType::I64, {int64_t(seeds.size())});
  std::memcpy(s.data, seeds.data(), seeds.size() * sizeof(uint64_t));
  seeds_ = be_.upload(s);
  // Everything below runs at every replay on the CPU and once (captured) on a recording backend:
  // no host state changes in here (step() advances st_.length).
  ops_ = [this, &dec, cfg, guidance_scale, sampler, want_guided] {
    Tensor logits = decoder_step_at(be_, dec, st_, at_);
    tokens_ =
        be_.sample_tokens_at(logits, cfg, guidance_scale, sampler, seeds_, step_, want_guided ? &guided_ : nullptr);
    be_.delay_pattern_step_at(pattern_, tokens_, column_, at_.ids, counters_);
  };
}

void RecordedStep::start(const std::vector<DelayPattern>& patterns, int64_t feed, int64_t step) {
  const int R = st_.rows, B = int(patterns.size());
  MG_CHECK(B >= 1 && R % B == 0 && patterns[0].columns() > feed + 1 && feed >= 0, "RecordedStep: ", B,
           " patterns for ", R, " rows, feeding column ", feed);
  MG_CHECK(step >= 0 && step <= INT32_MAX && st_.length <= INT32_MAX, "RecordedStep: step ", step, " out of range");
  const int64_t C = patterns[0].columns();
  Tensor hp = Tensor::empty(DType::I32, {B, K_, C});
  for (int b = 0; b < B; ++b) patterns[b].copy_to(hp.ptr<int32_t>() + int64_t(b) * K_ * C);
  pattern_ = be_.upload(hp);
  Tensor in = Tensor::empty(DType::I32, {in_dev_.numel()});
  int32_t* v = in.ptr<int32_t>();
  const int64_t KR = int64_t(K_) * R;
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < K_; ++k) {
      const int id = patterns[r % B].at(k, feed);
      MG_CHECK(id >= 0, "RecordedStep: column ", feed, " of codebook ", k, " is not known yet");
      v[int64_t(k) * R + r] = id;
    }
  for (int r = 0; r < R; ++r) v[KR + r] = int32_t(st_.length);
  v[KR + R] = int32_t(st_.length);          // pos
  v[KR + R + 1] = int32_t(st_.length + 1);  // keys
  v[KR + R + 2] = int32_t(step);
  v[KR + R + 3] = int32_t(feed + 1);  // the column the step samples
  be_.upload_into(in_dev_, in);
  be_.synchronize();  // `in` dies here
}

void RecordedStep::step(Tensor* guided) {
  MG_CHECK(pattern_.defined(), "RecordedStep: start() first");
  MG_CHECK(st_.length + 1 <= st_.capacity, "RecordedStep: position ", st_.length, " is past the cache of ",
           st_.capacity);
  if (!warm_) {
    // The first step runs op by op: every kernel and library routine of the step then has run
    // once (lazy module loading, cuBLAS set-up) before a capture, where that set-up may not happen.
    ops_();
    warm_ = true;
  } else {
    if (!rec_) rec_ = be_.record(ops_);
    rec_->replay();
  }
  ++st_.length;
  if (guided) *guided = guided_;
}

Tensor RecordedStep::tokens() { return be_.download(tokens_); }

void RecordedStep::read_patterns(std::vector<DelayPattern>& patterns) {
  Tensor hp = be_.download(pattern_);
  const int64_t per = pattern_.dim(1) * pattern_.dim(2);
  MG_CHECK(int64_t(patterns.size()) == pattern_.dim(0), "RecordedStep: ", patterns.size(), " patterns for ",
           pattern_.dim(0), " sequences");
  for (size_t b = 0; b < patterns.size(); ++b) patterns[b].copy_from(hp.ptr<int32_t>() + int64_t(b) * per);
}

}  // namespace mg
