#include "lm/recorded_step.h"

#include <cstdint>
#include <cstring>

namespace mg {
namespace {

// A view of n i32 values at `offset` inside a device (or host) i32 buffer.
Tensor i32_view(const Tensor& buf, int64_t offset, const Shape& shape) {
  return Tensor::view(static_cast<int32_t*>(buf.data) + offset, DType::I32, shape, buf.device, buf.owner);
}

}  // namespace

RecordedStep::RecordedStep(Backend& be, const MusicgenDecoder& dec, DecoderState& state, bool cfg, float guidance_scale,
                           const SamplerParams& sampler, const std::vector<uint64_t>& seeds, bool want_guided)
    : be_(be), st_(state), K_(dec.cfg.num_codebooks), V_(dec.cfg.vocab_size) {
  const int R = st_.rows;
  MG_CHECK(!seeds.empty() && R == (cfg ? 2 : 1) * int(seeds.size()), "RecordedStep: ", R, " rows for ", seeds.size(),
           " sequences", cfg ? " with CFG" : "");
  const int64_t n = int64_t(K_) * R + R + 3;
  in_host_ = Tensor::zeros(DType::I32, {n});
  in_dev_ = be_.alloc(DType::I32, {n});
  at_.ids = i32_view(in_dev_, 0, {K_, R});
  at_.row_positions = i32_view(in_dev_, int64_t(K_) * R, {R});
  at_.pos = i32_view(in_dev_, int64_t(K_) * R + R, {1});
  at_.keys = i32_view(in_dev_, int64_t(K_) * R + R + 1, {1});
  step_ = i32_view(in_dev_, int64_t(K_) * R + R + 2, {1});
  Tensor s = Tensor::empty(DType::I64, {int64_t(seeds.size())});
  std::memcpy(s.data, seeds.data(), seeds.size() * sizeof(uint64_t));
  seeds_ = be_.upload(s);
  // Everything below runs at every replay on the CPU and once (captured) on a recording backend:
  // no host state changes in here (RecordedStep::run advances st_.length).
  ops_ = [this, &dec, cfg, guidance_scale, sampler, want_guided] {
    Tensor logits = decoder_step_at(be_, dec, st_, at_);
    tokens_ =
        be_.sample_tokens_at(logits, cfg, guidance_scale, sampler, seeds_, step_, want_guided ? &guided_ : nullptr);
  };
}

Tensor RecordedStep::run(const std::vector<int32_t>& ids, int64_t step, Tensor* guided) {
  const int R = st_.rows;
  MG_CHECK(int64_t(ids.size()) == int64_t(K_) * R, "RecordedStep: ", ids.size(), " codes for ", K_, " codebooks x ", R,
           " rows");
  MG_CHECK(st_.length + 1 <= st_.capacity, "RecordedStep: position ", st_.length, " is past the cache of ",
           st_.capacity);
  MG_CHECK(step >= 0 && step <= INT32_MAX, "RecordedStep: step ", step, " out of range");
  for (size_t i = 0; i < ids.size(); ++i)  // the device lookup cannot report a bad id while replaying
    MG_CHECK(ids[i] >= 0 && ids[i] <= V_, "RecordedStep: code ", ids[i], " of codebook ", i / size_t(R),
             " is outside 0..", V_);
  int32_t* in = in_host_.ptr<int32_t>();
  std::memcpy(in, ids.data(), ids.size() * sizeof(int32_t));
  for (int r = 0; r < R; ++r) in[int64_t(K_) * R + r] = int32_t(st_.length);
  in[int64_t(K_) * R + R] = int32_t(st_.length);
  in[int64_t(K_) * R + R + 1] = int32_t(st_.length + 1);
  in[int64_t(K_) * R + R + 2] = int32_t(step);
  be_.upload_into(in_dev_, in_host_);
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
  return be_.download(tokens_);
}

}  // namespace mg
