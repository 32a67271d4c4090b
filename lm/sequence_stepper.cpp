#include "lm/sequence_stepper.h"

#include <algorithm>
#include <utility>

namespace mg {

MusicGen::SequenceStepper::SequenceStepper(const MusicGen& model, Backend& be, GenerateParams p, Tensor text,
                                           Tensor kv_block)
    : m_(model), p_(std::move(p)), kv_spare_(std::move(kv_block)) {
  const MusicgenConfig& cfg = m_.cfg_;
  MG_CHECK(p_.audio_prompt.empty(), "SequenceStepper: audio prompts are not supported");
  MG_CHECK(!cfg.melody || !p_.chroma.defined() || p_.chroma.dim(-1) == cfg.num_chroma, "melody chroma must have ",
           cfg.num_chroma, " bins per frame");
  b_.be = &be;
  b_.p = &p_;
  b_.sequences = 1;
  b_.seeds = {p_.seed};
  const bool melody_given = cfg.melody && (p_.chroma.defined() || p_.chroma_for_window);
  if (cfg.melody && !text.defined())  // as generate_batch: one all-zero text position
    text = be.upload(Tensor::zeros(DType::F32, {1, cfg.decoder.hidden_size}));
  b_.cfg = (melody_given || !p_.prompt.empty()) && p_.guidance_scale != 1.0f;
  if (cfg.melody) {
    b_.melody_text = {text};
    b_.text = {Tensor()};
  } else {
    b_.text = {text};
  }
  const int fr = cfg.frame_rate();
  MG_CHECK(p_.max_window_s > 0 && p_.max_window_s <= m_.max_duration_s() + 1e-9, "a window of ", p_.max_window_s,
           " s does not fit this model (at most ", m_.max_duration_s(), " s)");
  MG_CHECK(p_.duration_s <= p_.max_window_s || (p_.extend_stride_s > 0 && p_.extend_stride_s < p_.max_window_s),
           "long generation needs 0 < extend_stride (", p_.extend_stride_s, " s) < the window (", p_.max_window_s, " s)");
  windows_ = plan_windows(m_.frames_for(p_.duration_s), 0, p_.duration_s, p_.max_window_s, p_.extend_stride_s, fr);
  for (auto& w : windows_) b_.steps_total += w.second - w.first + cfg.max_delay();
  all_.assign(cfg.decoder.num_codebooks, {});
  start_window();
}

void MusicGen::SequenceStepper::start_window() {
  const MusicgenConfig& cfg = m_.cfg_;
  const int64_t frames = windows_[window_].second;
  const double offset_s = double(window_) * int64_t(cfg.frame_rate() * p_.extend_stride_s) / cfg.frame_rate();
  w_ = Window();
  w_.patterns.emplace_back(cfg.delays(), frames, cfg.decoder.bos_token_id, prompt_);
  w_.frames = frames;
  w_.columns = w_.patterns[0].columns();
  w_.start = w_.patterns[0].first_generated_column();
  w_.first_new = w_.emitted = prompt_.empty() ? 0 : int64_t(prompt_[0].size());
  w_.global_base = int64_t(all_[0].size());
  w_.st = m_.start_decoder(b_, w_.columns, offset_s, std::exchange(kv_spare_, Tensor()));
  column_ = w_.start;
  if (column_ >= w_.columns) end_window();
}

void MusicGen::SequenceStepper::end_window() {
  Codes gen = w_.patterns[0].revert();
  const int64_t first = windows_[window_].first;
  for (size_t k = 0; k < gen.size(); ++k) all_[k].insert(all_[k].end(), gen[k].begin() + first, gen[k].end());
  kv_spare_ = std::exchange(w_.st.kv_block, Tensor());  // for the next window, or the next request
  w_.st = DecoderState();  // the views go now, not when the next window replaces them
  if (++window_ == windows_.size()) {
    done_ = true;
    return;
  }
  const int64_t stride = int64_t(m_.cfg_.frame_rate() * p_.extend_stride_s);
  for (auto& row : gen) row.erase(row.begin(), row.begin() + std::min<int64_t>(stride, int64_t(row.size())));
  prompt_ = gen;
  start_window();
}

bool MusicGen::SequenceStepper::needs_solo_step() const { return !done_ && column_ == w_.start && column_ > 1; }

void MusicGen::SequenceStepper::solo_step() {
  MG_CHECK(!done_, "SequenceStepper: the sequence is finished");
  const int64_t from = column_ == w_.start ? 0 : column_ - 1;
  Tensor tokens = m_.eager_step(b_, w_, from, column_, nullptr);
  m_.finish_step(b_, w_, column_, tokens, Tensor());
  if (++column_ >= w_.columns) end_window();
}

void MusicGen::SequenceStepper::write_ids(int32_t* ids, int64_t ld, int64_t r0) const {
  const int K = m_.cfg_.decoder.num_codebooks;
  for (int r = 0; r < rows(); ++r)
    for (int k = 0; k < K; ++k) ids[k * ld + r0 + r] = w_.patterns[0].at(k, column_ - 1);
}

MusicGen::SequenceStepper::StepInputs MusicGen::SequenceStepper::shared_step_inputs(
    const std::vector<SequenceStepper*>& steppers) {
  MG_CHECK(!steppers.empty(), "SequenceStepper: a shared step needs at least one stepper");
  StepInputs in;
  int64_t rows = 0;
  for (SequenceStepper* s : steppers) {
    MG_CHECK(!s->done_ && !s->needs_solo_step(), "SequenceStepper: no shared step is due");
    in.states.push_back(&s->state());
    rows += s->rows();
  }
  in.ids = Tensor::empty(DType::I32, {steppers[0]->m_.cfg_.decoder.num_codebooks, rows});
  int64_t r0 = 0;
  for (const SequenceStepper* s : steppers) {
    s->write_ids(in.ids.ptr<int32_t>(), rows, r0);
    r0 += s->rows();
  }
  return in;
}

void MusicGen::SequenceStepper::finish_shared_step(const Tensor& logits) {
  finish_sampled_step(sample_shared_step(logits, *b_.be));
}

Tensor MusicGen::SequenceStepper::sample_shared_step(const Tensor& logits, Backend& be) const {
  MG_CHECK(!done_ && !needs_solo_step(), "SequenceStepper: no shared step is due");
  return be.download(be.sample_tokens(logits, b_.cfg, p_.guidance_scale, p_.sampler, b_.seeds, b_.steps_done));
}

void MusicGen::SequenceStepper::finish_sampled_step(const Tensor& tokens) {
  MG_CHECK(!done_ && !needs_solo_step(), "SequenceStepper: no shared step is due");
  m_.finish_step(b_, w_, column_, tokens, Tensor());
  if (++column_ >= w_.columns) end_window();
}

}  // namespace mg
