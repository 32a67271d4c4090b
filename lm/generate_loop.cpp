// The generation loop: a batch of sequences (prompts x takes) stepped together over the delay
// pattern, classifier-free guidance per sequence, continuation from prompt codes, and audiocraft's
// sliding window for durations beyond one window (genmodel.py _generate_tokens).
#include <algorithm>
#include <cmath>

#include "lm/generate.h"
#include "lm/recorded_step.h"

namespace mg {

struct MusicGen::Batch {
  const GenerateParams* p = nullptr;
  int sequences = 0;
  bool cfg = false;
  std::vector<Tensor> text;          // cross-attention models: projected text per sequence (undefined: null)
  std::vector<Tensor> melody_text;   // melody models: projected text per sequence (undefined: none)
  std::vector<uint64_t> seeds;      // per sequence: the counter-based draws of sample_tokens
  int64_t steps_done = 0, steps_total = 0;
};

int64_t MusicGen::frames_for(double duration_s) const {
  MG_CHECK(duration_s > 0, "duration must be positive, got ", duration_s, " s");
  const int64_t frames = int64_t(duration_s * cfg_.frame_rate());
  MG_CHECK(frames >= 1, "duration ", duration_s, " s is shorter than one frame (", 1.0 / cfg_.frame_rate(), " s)");
  return frames;
}

namespace {

// Recorded steps the host may enqueue ahead of the device before it waits (progress reporting).
constexpr int64_t kStepsAhead = 8;

// Window sizes of audiocraft's loop, to know the total step count up front (for progress).
// Returns (prompt frames, total frames) per window.
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

}  // namespace

std::vector<Codes> MusicGen::generate_window(Batch& b, const std::vector<Codes>& prompts, int64_t frames,
                                             double offset_s, int64_t global_base) const {
  const GenerateParams& p = *b.p;
  const int B = b.sequences, K = cfg_.decoder.num_codebooks, V = cfg_.decoder.vocab_size;
  const int R = b.cfg ? 2 * B : B;
  std::vector<DelayPattern> patterns;
  for (int s = 0; s < B; ++s) patterns.emplace_back(cfg_.delays(), frames, cfg_.decoder.bos_token_id, prompts[s]);
  const int64_t columns = patterns[0].columns(), start = patterns[0].first_generated_column();

  // Rows: every sequence's conditional row, then (with CFG) every sequence's null row.
  DecoderState st;
  if (!cfg_.melody) {
    std::vector<Tensor> rows(b.text);
    if (b.cfg) rows.resize(2 * B);
    st = decoder_start(be_, decoder_, rows, columns - 1);
  } else {
    Tensor chroma = p.chroma_for_window ? p.chroma_for_window(offset_s) : p.chroma;
    Tensor cond_chroma = chroma_prefix(chroma), null_chroma = chroma_prefix(Tensor());
    auto prefix = [&](const Tensor& c, const Tensor& text, bool null_text) {
      if (!text.defined()) return c;
      Tensor t = null_text ? be_.scale(text, 0.0f) : text;  // HF zeroes the null row's text by its mask
      Tensor both = be_.alloc(DType::F32, {c.dim(0) + t.dim(0), c.dim(1)});
      be_.copy_rows(both, 0, c);
      be_.copy_rows(both, c.dim(0), t);
      return both;
    };
    std::vector<Tensor> prefixes;
    for (int s = 0; s < B; ++s) prefixes.push_back(prefix(cond_chroma, b.melody_text[s], false));
    if (b.cfg)
      for (int s = 0; s < B; ++s) prefixes.push_back(prefix(null_chroma, b.melody_text[s], true));
    for (const Tensor& x : prefixes)
      MG_CHECK(x.dim(0) == prefixes[0].dim(0), "melody prompts in one batch must have the same token count");
    st = decoder_start(be_, decoder_, std::vector<Tensor>(R), prefixes[0].dim(0) + columns - 1);
    decoder_prefill(be_, decoder_, st, prefixes);
  }

  int64_t prev = 0;
  const int64_t first_new = prompts[0].empty() ? 0 : int64_t(prompts[0][0].size());
  int64_t emitted = first_new;
  Tensor ids = Tensor::empty(DType::I32, {K, R});
  std::unique_ptr<RecordedStep> recorded;  // after `st`, which it refers to: destroyed first
  for (int64_t offset = start; offset < columns; ++offset) {
    // The first call feeds every column before `start` (BOS and the prompt) at once, then one
    // each: ids[k, r * S + s].
    const int64_t S = offset - prev;
    Tensor guided, tokens;
    if (S == 1 && p.record_steps) {
      // One column: the recorded step (decoder, guidance, sampling and the pattern's bookkeeping
      // replayed as one unit, inputs advanced on the device).
      if (!recorded) {
        recorded = std::make_unique<RecordedStep>(be_, decoder_, st, b.cfg, p.guidance_scale, p.sampler, b.seeds,
                                                  bool(p.on_logits));
        recorded->start(patterns, prev, b.steps_done);
      }
      recorded->step(p.on_logits ? &guided : nullptr);
      // Tokens come back only for those who watch each step; otherwise the device runs ahead and
      // the patterns are read once at the end of the window. A periodic wait keeps the progress
      // callback within a few steps of the device.
      if (p.on_frame || p.on_logits) tokens = recorded->tokens();
      else if ((b.steps_done + 1) % kStepsAhead == 0) be_.synchronize();
    } else {
      if (ids.dim(1) != R * S) ids = Tensor::empty(DType::I32, {K, R * S});
      for (int r = 0; r < R; ++r)
        for (int k = 0; k < K; ++k)
          for (int64_t c = prev; c < offset; ++c)
            ids.ptr<int32_t>()[(k * R + r) * S + (c - prev)] = patterns[r % B].at(k, c);
      Tensor logits = decoder_step_device(be_, decoder_, st, be_.upload(ids));  // [R, K, V], last column of each row
      // Guidance and sampling on the device; only the [B, K] tokens come back (and sequence 0's
      // guided logits when someone watches them).
      tokens = be_.download(be_.sample_tokens(logits, b.cfg, p.guidance_scale, p.sampler, b.seeds, b.steps_done,
                                              p.on_logits ? &guided : nullptr));
    }
    if (p.on_logits) {
      Tensor g = be_.download(guided.slice0(0, 1));
      p.on_logits(b.steps_done, g.f32(), K, V);
    }
    if (tokens.defined())
      for (int s = 0; s < B; ++s)
        patterns[s].fill(offset, std::vector<int>(tokens.ptr<int32_t>() + s * K, tokens.ptr<int32_t>() + (s + 1) * K));
    prev = offset;
    ++b.steps_done;
    if (p.progress && !p.progress(b.steps_done, b.steps_total)) throw Error("generation aborted by the caller");
    // Frame t is final once column t + 1 + max_delay is filled: stream the new ones.
    if (p.on_frame) {
      const int64_t final_frames = std::min(frames, offset - cfg_.max_delay());
      const std::vector<int> delays = cfg_.delays();
      for (; emitted < final_frames; ++emitted) {
        if (emitted < first_new) continue;
        for (int s = 0; s < B; ++s) {
          std::vector<int> col(K);
          for (int k = 0; k < K; ++k) col[k] = patterns[s].at(k, emitted + 1 + delays[k]);
          p.on_frame(s, global_base + emitted - first_new, col);
        }
      }
    }
  }
  if (recorded) recorded->read_patterns(patterns);
  std::vector<Codes> out;
  for (const DelayPattern& pat : patterns) out.push_back(pat.revert());
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
  for (const auto& w : windows) {
    std::vector<Codes> gen = generate_window(b, prompts, w.second, double(off) / fr, int64_t(all[0][0].size()));
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

std::vector<Codes> MusicGen::generate_batch(const GenerateParams& p) const {
  MG_CHECK(p.takes >= 1, "takes must be >= 1, got ", p.takes);
  const std::vector<std::string> prompts = p.prompts.empty() ? std::vector<std::string>{p.prompt} : p.prompts;
  MG_CHECK(!cfg_.melody || !p.chroma.defined() || p.chroma.dim(-1) == cfg_.num_chroma, "melody chroma must have ",
           cfg_.num_chroma, " bins per frame");
  Batch b;
  b.p = &p;
  bool any_condition = cfg_.melody && (p.chroma.defined() || p.chroma_for_window);
  std::vector<Tensor> texts;
  for (const std::string& t : prompts) {
    if (!t.empty()) {
      texts.push_back(project_text(text_hidden_states(tokenize(t))));
    } else if (cfg_.melody) {
      // Melody models without text: one all-zero text position (HF generate feeds a masked token,
      // audiocraft a masked "": both give [chroma 235 || one zero vector]).
      texts.push_back(be_.upload(Tensor::zeros(DType::F32, {1, cfg_.decoder.hidden_size})));
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

Codes MusicGen::generate_codes(const GenerateParams& p) const { return generate_batch(p)[0]; }

Codes MusicGen::generate_codes_from_rows(const std::vector<Tensor>& rows, const GenerateParams& p) const {
  MG_CHECK(!cfg_.melody, "generate_codes_from_rows is for cross-attention models");
  MG_CHECK(rows.size() == 1 || rows.size() == 2, "generation takes 1 row (no CFG) or 2 (cond, null), got ", rows.size());
  Batch b;
  b.p = &p;
  b.sequences = 1;
  b.cfg = rows.size() == 2;
  b.text = {rows[0]};
  b.seeds.push_back(p.seed);
  return generate_all(b)[0];
}

}  // namespace mg
