// The generation loop: a batch of sequences (prompts x takes) stepped together over the delay
// pattern, classifier-free guidance per sequence, continuation from prompt codes, and audiocraft's
// sliding window for durations beyond one window (genmodel.py _generate_tokens).
// A window is set up once (patterns, decoder state) and then stepped on one of two paths that
// give the same tokens: run_window_recorded (single-column steps replayed as one recording, see
// lm/recorded_step.h) or run_window_eager (every step op by op, GenerateParams::record_steps = false).
#include <algorithm>
#include <cmath>

#include "lm/generate.h"
#include "lm/generate_internal.h"
#include "lm/recorded_step.h"

namespace mg {

int64_t MusicGen::frames_for(double duration_s) const {
  MG_CHECK(duration_s > 0, "duration must be positive, got ", duration_s, " s");
  const int64_t frames = int64_t(duration_s * cfg_.frame_rate());
  MG_CHECK(frames >= 1, "duration ", duration_s, " s is shorter than one frame (", 1.0 / cfg_.frame_rate(), " s)");
  return frames;
}

namespace {

// Recorded steps the host may enqueue ahead of the device before it waits (progress reporting).
constexpr int64_t kStepsAhead = 8;

}  // namespace

// Declared in lm/generate_internal.h.
std::vector<std::pair<int64_t, int64_t>> plan_windows(int64_t total, int64_t prompt, double duration_s,
                                                      double max_window_s, double stride_s, int frame_rate) {
  std::vector<std::pair<int64_t, int64_t>> w;
  if (duration_s <= max_window_s) return {{prompt, total}};
  const int64_t stride = int64_t(frame_rate * stride_s);
  int64_t off = 0, plen = prompt;
  while (off + plen < total) {
    const double chunk = std::min(duration_s - double(off) / frame_rate, max_window_s);
    const int64_t gen = int64_t(chunk * frame_rate);
    w.push_back({plen, gen});
    plen = std::max<int64_t>(0, gen - stride);  // gen[:, :, stride:] may be empty
    off += stride;
  }
  return w;
}

std::vector<Tensor> MusicGen::melody_prefixes(const Batch& b, double offset_s) const {
  const GenerateParams& p = *b.p;
  const int B = b.sequences;
  Tensor chroma = p.chroma_for_window ? p.chroma_for_window(offset_s) : p.chroma;
  Tensor cond_chroma = chroma_prefix(*b.be, chroma), null_chroma = chroma_prefix(*b.be, Tensor());
  auto prefix = [&](const Tensor& c, const Tensor& text, bool null_text) {
    if (!text.defined()) return c;
    Tensor t = null_text ? b.be->scale(text, 0.0f) : text;  // HF zeroes the null row's text by its mask
    Tensor both = b.be->alloc(DType::F32, {c.dim(0) + t.dim(0), c.dim(1)});
    b.be->copy_rows(both, 0, c);
    b.be->copy_rows(both, c.dim(0), t);
    return both;
  };
  std::vector<Tensor> prefixes;
  for (int s = 0; s < B; ++s) prefixes.push_back(prefix(cond_chroma, b.melody_text[s], false));
  if (b.cfg)
    for (int s = 0; s < B; ++s) prefixes.push_back(prefix(null_chroma, b.melody_text[s], true));
  for (const Tensor& x : prefixes)
    MG_CHECK(x.dim(0) == prefixes[0].dim(0), "melody prompts in one batch must have the same token count");
  return prefixes;
}

// Rows: every sequence's conditional row, then (with CFG) every sequence's null row. Cross-attention
// models attend to the text; melody models run their [chroma || text] prefix through first.
DecoderState MusicGen::start_decoder(const Batch& b, int64_t columns, double offset_s, Tensor reuse) const {
  if (!cfg_.melody) {
    std::vector<Tensor> rows(b.text);
    if (b.cfg) rows.resize(2 * b.sequences);
    return decoder_start(*b.be, decoder_, rows, columns - 1, std::move(reuse));
  }
  const std::vector<Tensor> prefixes = melody_prefixes(b, offset_s);
  DecoderState st = decoder_start(*b.be, decoder_, std::vector<Tensor>(prefixes.size()), prefixes[0].dim(0) + columns - 1,
                                  std::move(reuse));
  decoder_prefill(*b.be, decoder_, st, prefixes);
  return st;
}

// Columns [from, to) of every row through the decoder op by op, then guidance and sampling on the
// device; only the [B, K] tokens come back (and the guided logits when `guided` is asked for).
Tensor MusicGen::eager_step(const Batch& b, Window& w, int64_t from, int64_t to, Tensor* guided) const {
  const GenerateParams& p = *b.p;
  const int B = b.sequences, K = cfg_.decoder.num_codebooks, R = b.cfg ? 2 * B : B;
  const int64_t S = to - from;
  Tensor ids = Tensor::empty(DType::I32, {K, R * S});  // ids[k, r * S + s]
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < K; ++k)
      for (int64_t c = from; c < to; ++c) ids.ptr<int32_t>()[(k * R + r) * S + (c - from)] = w.patterns[r % B].at(k, c);
  Tensor logits = decoder_step_device(*b.be, decoder_, w.st, b.be->upload(ids));  // [R, K, V], last column of each row
  return b.be->download(b.be->sample_tokens(logits, b.cfg, p.guidance_scale, p.sampler, b.seeds, b.steps_done, guided));
}

// What follows every step, on either path: the logits callback, the sampled tokens into the
// patterns (when they came back), progress, and streaming.
void MusicGen::finish_step(Batch& b, Window& w, int64_t column, const Tensor& tokens, const Tensor& guided) const {
  const GenerateParams& p = *b.p;
  const int K = cfg_.decoder.num_codebooks;
  if (p.on_logits) {
    Tensor g = b.be->download(guided.slice0(0, 1));
    p.on_logits(b.steps_done, g.f32(), K, cfg_.decoder.vocab_size);
  }
  if (tokens.defined())
    for (int s = 0; s < b.sequences; ++s)
      w.patterns[s].fill(column, std::vector<int>(tokens.ptr<int32_t>() + s * K, tokens.ptr<int32_t>() + (s + 1) * K));
  ++b.steps_done;
  if (p.progress && !p.progress(b.steps_done, b.steps_total)) throw Error("generation aborted by the caller");
  if (p.on_frame) stream_final_frames(b, w, column);
}

// Frame t is final once column t + 1 + max_delay is filled: hands the new ones to on_frame.
void MusicGen::stream_final_frames(const Batch& b, Window& w, int64_t column) const {
  const int K = cfg_.decoder.num_codebooks;
  const int64_t final_frames = std::min(w.frames, column - cfg_.max_delay());
  const std::vector<int> delays = cfg_.delays();
  for (; w.emitted < final_frames; ++w.emitted) {
    if (w.emitted < w.first_new) continue;
    for (int s = 0; s < b.sequences; ++s) {
      std::vector<int> col(K);
      for (int k = 0; k < K; ++k) col[k] = w.patterns[s].at(k, w.emitted + 1 + delays[k]);
      b.p->on_frame(s, w.global_base + w.emitted - w.first_new, col);
    }
  }
}

// Every step op by op: the first feeds every column before `start` (BOS and the prompt) at once,
// then one column each.
void MusicGen::run_window_eager(Batch& b, Window& w) const {
  const bool want_guided = bool(b.p->on_logits);
  int64_t fed = 0;
  for (int64_t column = w.start; column < w.columns; ++column) {
    Tensor guided;
    Tensor tokens = eager_step(b, w, fed, column, want_guided ? &guided : nullptr);
    finish_step(b, w, column, tokens, guided);
    fed = column;
  }
}

// Single-column steps as one recording (decoder, guidance, sampling and the pattern's bookkeeping
// replayed as one unit, inputs advanced on the device). A first call that feeds BOS and the prompt
// at once (several columns) runs op by op before it.
void MusicGen::run_window_recorded(Batch& b, Window& w) const {
  const GenerateParams& p = *b.p;
  int64_t column = w.start;
  if (column > 1 && column < w.columns) {
    Tensor guided;
    Tensor tokens = eager_step(b, w, 0, column, p.on_logits ? &guided : nullptr);
    finish_step(b, w, column, tokens, guided);
    ++column;
  }
  if (column >= w.columns) return;
  RecordedStep recorded(*b.be, decoder_, w.st, b.cfg, p.guidance_scale, p.sampler, b.seeds, bool(p.on_logits));
  recorded.start(w.patterns, column - 1, b.steps_done);
  for (; column < w.columns; ++column) {
    Tensor guided, tokens;
    recorded.step(p.on_logits ? &guided : nullptr);
    // Tokens come back only for those who watch each step; otherwise the device runs ahead and
    // the patterns are read once at the end of the window. A periodic wait keeps the progress
    // callback within a few steps of the device.
    if (p.on_frame || p.on_logits) tokens = recorded.tokens();
    else if ((b.steps_done + 1) % kStepsAhead == 0) b.be->synchronize();
    finish_step(b, w, column, tokens, guided);
  }
  recorded.read_patterns(w.patterns);
}

std::vector<Codes> MusicGen::generate_window(Batch& b, const std::vector<Codes>& prompts, int64_t frames,
                                             double offset_s, int64_t global_base, Tensor& kv_block) const {
  Window w;
  for (int s = 0; s < b.sequences; ++s)
    w.patterns.emplace_back(cfg_.delays(), frames, cfg_.decoder.bos_token_id, prompts[s]);
  w.frames = frames;
  w.columns = w.patterns[0].columns();
  w.start = w.patterns[0].first_generated_column();
  w.first_new = w.emitted = prompts[0].empty() ? 0 : int64_t(prompts[0][0].size());
  w.global_base = global_base;
  w.st = start_decoder(b, w.columns, offset_s, std::move(kv_block));  // freed here if it does not fit
  if (b.p->record_steps) run_window_recorded(b, w);
  else run_window_eager(b, w);
  kv_block = w.st.kv_block;  // the next window writes into pages this one mapped
  std::vector<Codes> out;
  for (const DelayPattern& pat : w.patterns) out.push_back(pat.revert());
  return out;
}

std::vector<Codes> MusicGen::generate_all(Batch& b) const {
  const GenerateParams& p = *b.p;
  const int B = b.sequences, fr = cfg_.frame_rate();
  const int64_t total = frames_for(p.duration_s);
  const int64_t P = p.audio_prompt.empty() ? 0 : int64_t(p.audio_prompt[0].size());
  MG_CHECK(p.audio_prompt.empty() || int(p.audio_prompt.size()) == cfg_.decoder.num_codebooks, "the audio prompt has ",
           p.audio_prompt.size(), " codebooks, the model ", cfg_.decoder.num_codebooks);
  MG_CHECK(P <= std::min(total, int64_t(std::min(p.duration_s, p.max_window_s) * fr)), "the audio prompt (",
           double(P) / fr, " s) is longer than the audio to generate (", p.duration_s, " s)");
  MG_CHECK(p.max_window_s > 0 && p.max_window_s <= max_duration_s() + 1e-9, "a window of ", p.max_window_s,
           " s does not fit this model (at most ", max_duration_s(), " s)");
  MG_CHECK(p.duration_s <= p.max_window_s || (p.extend_stride_s > 0 && p.extend_stride_s < p.max_window_s),
           "long generation needs 0 < extend_stride (", p.extend_stride_s, " s) < the window (", p.max_window_s, " s)");
  const auto windows = plan_windows(total, P, p.duration_s, p.max_window_s, p.extend_stride_s, fr);
  b.steps_total = 0;
  for (auto& w : windows) b.steps_total += w.second - w.first + cfg_.max_delay();

  std::vector<Codes> prompts(B, p.audio_prompt);
  std::vector<Codes> all(B, Codes(cfg_.decoder.num_codebooks));
  auto append = [&](int s, const Codes& c, int64_t from) {
    for (size_t k = 0; k < c.size(); ++k) all[s][k].insert(all[s][k].end(), c[k].begin() + from, c[k].end());
  };
  if (p.keep_prompt && P > 0)
    for (int s = 0; s < B; ++s) {
      append(s, p.audio_prompt, 0);
      if (p.on_frame)
        for (int64_t t = 0; t < P; ++t) {
          std::vector<int> col;
          for (const auto& row : p.audio_prompt) col.push_back(row[t]);
          p.on_frame(s, t, col);
        }
    }
  const int64_t stride = int64_t(fr * p.extend_stride_s);
  int64_t off = 0;
  Tensor kv_block;
  for (const auto& w : windows) {
    std::vector<Codes> gen =
        generate_window(b, prompts, w.second, double(off) / fr, int64_t(all[0][0].size()), kv_block);
    for (int s = 0; s < B; ++s) {
      append(s, gen[s], w.first);  // the window's new frames
      if (&w != &windows.back())
        for (auto& row : gen[s])  // the last frames prompt the next window
          row.erase(row.begin(), row.begin() + std::min<int64_t>(stride, int64_t(row.size())));
      prompts[s] = gen[s];
    }
    off += stride;
  }
  return all;
}

std::vector<Codes> MusicGen::generate_batch(Backend& be, const GenerateParams& p) const {
  MG_CHECK(p.takes >= 1, "takes must be >= 1, got ", p.takes);
  const std::vector<std::string> prompts = p.prompts.empty() ? std::vector<std::string>{p.prompt} : p.prompts;
  MG_CHECK(!cfg_.melody || !p.chroma.defined() || p.chroma.dim(-1) == cfg_.num_chroma, "melody chroma must have ",
           cfg_.num_chroma, " bins per frame");
  Batch b;
  b.be = &be;
  b.p = &p;
  bool any_condition = cfg_.melody && (p.chroma.defined() || p.chroma_for_window);
  std::vector<Tensor> texts;
  for (const std::string& t : prompts) {
    if (!t.empty()) {
      texts.push_back(project_text(be, text_hidden_states(be, tokenize(t))));
    } else if (cfg_.melody) {
      // Melody models without text: one all-zero text position (HF generate feeds a masked token,
      // audiocraft a masked "": both give [chroma 235 || one zero vector]).
      texts.push_back(be.upload(Tensor::zeros(DType::F32, {1, cfg_.decoder.hidden_size})));
    } else {
      texts.push_back(Tensor());
    }
    any_condition = any_condition || !t.empty();
  }
  b.cfg = any_condition && p.guidance_scale != 1.0f;
  for (size_t i = 0; i < prompts.size(); ++i)
    for (int t = 0; t < p.takes; ++t) {
      (cfg_.melody ? b.melody_text : b.text).push_back(texts[i]);
      b.seeds.push_back(p.seed + uint64_t(b.sequences));
      ++b.sequences;
    }
  if (cfg_.melody) b.text.assign(b.sequences, Tensor());
  return generate_all(b);
}

Codes MusicGen::generate_codes(Backend& be, const GenerateParams& p) const { return generate_batch(be, p)[0]; }

Codes MusicGen::generate_codes_from_rows(Backend& be, const std::vector<Tensor>& rows, const GenerateParams& p) const {
  MG_CHECK(!cfg_.melody, "generate_codes_from_rows is for cross-attention models");
  MG_CHECK(rows.size() == 1 || rows.size() == 2, "generation takes 1 row (no CFG) or 2 (cond, null), got ", rows.size());
  Batch b;
  b.be = &be;
  b.p = &p;
  b.sequences = 1;
  b.cfg = rows.size() == 2;
  b.text = {rows[0]};
  b.seeds.push_back(p.seed);
  return generate_all(b)[0];
}

}  // namespace mg
