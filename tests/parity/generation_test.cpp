// Generation features on the tiny models: batches and takes, streaming audio out, long generation
// and continuation (the golden parts come from tools/reference/make_generation_goldens.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lm/generate.h"
#include "weights/safetensors.h"
#include "lm/stream.h"
#include "test_util.h"

namespace {

struct Tiny {
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(2);
  std::unique_ptr<mg::MusicGen> model;
  explicit Tiny(const char* name = "musicgen_tiny") {
    model = mg::MusicGen::load(*be, mgtest::data_dir() + "/models/" + name);
  }
};

mg::GenerateParams greedy(double seconds) {
  mg::GenerateParams p;
  p.sampler.greedy = true;
  p.duration_s = seconds;
  return p;
}

// Trap: rows of a batch must not leak into each other. Prompts of different token lengths run as
// one batch (no padding: each row attends to its own text) must give each prompt's solo tokens.
TEST(GenerationBatch, RowsEqualSoloRuns) {
  Tiny t;
  const std::vector<std::string> prompts = {"80s pop track with bassy drums and synth", "jazz", ""};
  mg::GenerateParams p = greedy(0.6);
  p.prompts = prompts;
  std::vector<mg::Codes> batch = t.model->generate_batch(p);
  ASSERT_EQ(batch.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    mg::GenerateParams solo = greedy(0.6);
    solo.prompt = prompts[i];
    if (prompts[i].empty()) continue;  // a lone "" runs without CFG; in a CFG batch its rows cancel
    EXPECT_EQ(batch[i], t.model->generate_codes(solo)) << "prompt " << i;
  }
}

// Takes: one prompt, several sequences with seeds derived from the base seed (seed + index).
TEST(GenerationBatch, TakesDifferAndMatchTheirSeeds) {
  Tiny t;
  mg::GenerateParams p;
  p.prompt = "techno";
  p.duration_s = 0.4;
  p.seed = 11;
  p.takes = 3;
  std::vector<mg::Codes> takes = t.model->generate_batch(p);
  ASSERT_EQ(takes.size(), 3u);
  EXPECT_NE(takes[0], takes[1]);
  mg::GenerateParams solo = p;
  solo.takes = 1;
  solo.seed = 12;
  EXPECT_EQ(takes[1], t.model->generate_codes(solo));
}

// Streaming: frames arrive as they become final and go through the push-driven EnCodec decoder,
// which runs the whole-file decode's windows as the frames reach them: the streamed samples are the
// whole-file samples (float summation order aside), and audio starts after a bounded number of
// frames, long before the end. Mono and stereo (two codec streams, interleaved codebooks).
class GenerationStream : public ::testing::TestWithParam<const char*> {};

TEST_P(GenerationStream, EqualsTheWholeFileDecodeAndStartsEarly) {
  Tiny t(GetParam());
  mg::GenerateParams p = greedy(4.0);
  p.prompt = "ambient";
  const int C = t.model->channels();
  std::vector<std::vector<float>> streamed(static_cast<size_t>(C));
  int64_t first_audio_frame = -1, frames_seen = 0, samples_while_generating = 0;
  mg::StreamingDecoder dec(*t.model, [&](const std::vector<std::vector<float>>& a, int64_t n) {
    if (first_audio_frame < 0) first_audio_frame = frames_seen;
    ASSERT_EQ(int64_t(a.size()), C);
    for (size_t c = 0; c < a.size(); ++c) streamed[c].insert(streamed[c].end(), a[c].begin(), a[c].begin() + n);
    if (frames_seen < 200) samples_while_generating += n;
  });
  p.on_frame = [&](int seq, int64_t frame, const std::vector<int>& codes) {
    ASSERT_EQ(seq, 0);
    ASSERT_EQ(frame, frames_seen);
    ++frames_seen;
    dec.push(codes);
  };
  mg::Codes codes = t.model->generate_codes(p);
  dec.finish();
  ASSERT_EQ(frames_seen, 200);
  // The first window (25 frames) and its right margin through the LSTM (windows of 10, 20, ...).
  EXPECT_EQ(first_audio_frame, dec.first_audio_after_frames());
  EXPECT_GE(first_audio_frame, 25);
  EXPECT_LE(first_audio_frame, 40);
  // Windows of 25, 50, 100 frames: the first two are out before the last frame is in.
  EXPECT_GE(samples_while_generating, 75 * 640);
  const mg::Tensor whole = t.model->decode_audio(codes);
  ASSERT_EQ(whole.dim(0), C);
  double worst = 0, peak = 0;
  for (int c = 0; c < C; ++c) {
    ASSERT_EQ(int64_t(streamed[size_t(c)].size()), whole.dim(1)) << "channel " << c;
    const float* w = whole.f32() + c * whole.dim(1);
    for (int64_t i = 0; i < whole.dim(1); ++i) {
      worst = std::max(worst, double(std::fabs(streamed[size_t(c)][size_t(i)] - w[i])));
      peak = std::max(peak, double(std::fabs(w[i])));
    }
  }
  double rel = 0;
  for (int c = 0; c < C; ++c)
    rel = std::max(rel, mgtest::rel_err(streamed[size_t(c)], std::vector<float>(whole.f32() + c * whole.dim(1),
                                                                                whole.f32() + (c + 1) * whole.dim(1))));
  std::printf("streamed vs whole-file decode: max |diff| %.2e (peak %.2e), relative error %.2e, first audio after "
              "%lld frames\n", worst, peak, rel, (long long)first_audio_frame);
  EXPECT_LE(worst, 1e-5);
  // Float rounding only: the cross-faded windows this replaced were 6.6e-6 off on this model.
  EXPECT_LT(rel, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, GenerationStream,
                         ::testing::Values("musicgen_tiny", "musicgen_stereo_tiny"));

// Long generation: beyond one window the loop re-prompts with the last (window - stride) frames.
// With a 1 s window and 0.6 s stride, 2.5 s takes windows of 50, 50, 50 frames.
TEST(GenerationLong, WindowsCoverTheDurationExactly) {
  Tiny t;
  mg::GenerateParams p = greedy(2.5);
  p.prompt = "rock";
  p.max_window_s = 1.0;
  p.extend_stride_s = 0.6;
  int64_t steps = 0, total = 0;
  p.progress = [&](int64_t done, int64_t all) {
    steps = done;
    total = all;
    return true;
  };
  mg::Codes codes = t.model->generate_codes(p);
  EXPECT_EQ(codes[0].size(), 125u);
  EXPECT_EQ(steps, total);
  // The first window's frames are kept as they were generated.
  mg::GenerateParams first = greedy(1.0);
  first.prompt = "rock";
  mg::Codes w0 = t.model->generate_codes(first);
  for (size_t k = 0; k < codes.size(); ++k)
    EXPECT_TRUE(std::equal(w0[k].begin(), w0[k].end(), codes[k].begin())) << "codebook " << k;
}

// Continuation: the returned codes start with the prompt (audiocraft), or not (keep_prompt=false).
TEST(GenerationContinuation, PromptIsKeptOrDropped) {
  Tiny t;
  mg::GenerateParams p = greedy(1.0);
  p.prompt = "piano";
  p.audio_prompt = mg::Codes(4, std::vector<int>(20, 7));
  mg::Codes with = t.model->generate_codes(p);
  ASSERT_EQ(with[0].size(), 50u);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(std::vector<int>(with[k].begin(), with[k].begin() + 20), p.audio_prompt[k]);
  p.keep_prompt = false;
  mg::Codes without = t.model->generate_codes(p);
  ASSERT_EQ(without[0].size(), 30u);
  for (int k = 0; k < 4; ++k) EXPECT_TRUE(std::equal(without[k].begin(), without[k].end(), with[k].begin() + 20));
  p.duration_s = 0.2;  // 10 frames < 20 prompt frames
  EXPECT_THROW(t.model->generate_codes(p), mg::Error);
}

// ---- parity with transformers (tests/data/golden/generation) ----

const std::string kGen = mgtest::golden_dir() + "/generation/";

nlohmann::json gen_case(const std::string& name) {
  std::ifstream f(kGen + "index.json");
  return nlohmann::json::parse(f).at("cases").at(name);
}

std::vector<int> ints(const mg::Tensor& t) {
  std::vector<int> v;
  for (float x : t.to_vector()) v.push_back(int(x));
  return v;
}

std::vector<int> flat(const mg::Codes& c) {
  std::vector<int> v;
  for (const auto& row : c) v.insert(v.end(), row.begin(), row.end());
  return v;
}

// Trap: audiocraft's window arithmetic (float lengths truncated: 2.34 s gives 116 frames, not
// 117), positions restarting per window, the last (window - stride) frames prompting the next.
void check_long(const std::string& name) {
  SCOPED_TRACE(name);
  nlohmann::json c = gen_case(name);
  Tiny t(c.at("model") == "stereo" ? "musicgen_stereo_tiny" : "musicgen_tiny");
  auto g = mg::load_safetensors(kGen + name + ".safetensors");
  mg::GenerateParams p = greedy(c.at("duration").get<double>());
  p.prompt = c.at("text").get<std::string>();
  p.max_window_s = c.at("max_duration").get<double>();
  p.extend_stride_s = c.at("extend_stride").get<double>();
  if (g.count("prompt_codes")) {
    const mg::Tensor& pc = g.at("prompt_codes");
    std::vector<int> v = ints(pc);
    for (int64_t k = 0; k < pc.dim(0); ++k) p.audio_prompt.emplace_back(v.begin() + k * pc.dim(1), v.begin() + (k + 1) * pc.dim(1));
  }
  mg::Codes codes = t.model->generate_codes(p);
  EXPECT_EQ(int64_t(codes[0].size()), c.at("frames").get<int64_t>());
  EXPECT_EQ(flat(codes), ints(g.at("codes")));
}

TEST(GenerationLongParity, FiveSecondsInFourWindows) { check_long("long_5s"); }
TEST(GenerationLongParity, ThreeSeconds) { check_long("long_3s"); }
TEST(GenerationLongParity, FloatTruncatedWindow) { check_long("long_2_34s_float_trunc"); }
TEST(GenerationLongParity, ContinuationThenWindows) { check_long("long_continuation_3s"); }
TEST(GenerationLongParity, Stereo) { check_long("stereo_long_3s"); }

// Continuation: the prompt audio through the snapshot's EnCodec must give HF's prompt codes, and
// generation must continue them token for token (the output starts with the prompt).
void check_continuation(const std::string& name) {
  SCOPED_TRACE(name);
  nlohmann::json c = gen_case(name);
  Tiny t;
  auto g = mg::load_safetensors(kGen + name + ".safetensors");
  mg::Codes prompt = t.model->encode_audio(g.at("prompt_audio"));
  EXPECT_EQ(flat(prompt), ints(g.at("prompt_codes")));
  mg::GenerateParams p = greedy((c.at("frames").get<int>() + 0.5) / 50.0);
  p.prompt = c.at("text").is_string() ? c.at("text").get<std::string>() : "";
  p.guidance_scale = float(c.at("cfg_scale").get<double>());
  p.audio_prompt = prompt;
  mg::Codes codes = t.model->generate_codes(p);
  EXPECT_EQ(flat(codes), ints(g.at("codes")));
  if (g.count("audio")) EXPECT_LT(mgtest::rel_err(t.model->decode_audio(codes), g.at("audio")), 1e-4);
}

TEST(GenerationContinuationParity, BachWithText) { check_continuation("continuation_bach_text"); }
TEST(GenerationContinuationParity, BachWithoutText) { check_continuation("continuation_bach_notext"); }
TEST(GenerationContinuationParity, SineWithText) { check_continuation("continuation_sine_text"); }
TEST(GenerationContinuationParity, SineWithoutText) { check_continuation("continuation_sine_notext"); }

// Trap: prompts of different lengths in one batch. HF masks the padded text (rows equal their
// solo runs); audiocraft attends to the zero padding (the shorter row changes). We batch without
// padding, so each row must equal HF's solo run.
TEST(GenerationBatchParity, RowsEqualTransformersSoloRuns) {
  nlohmann::json c = gen_case("batch_text");
  Tiny t;
  auto g = mg::load_safetensors(kGen + "batch_text.safetensors");
  mg::GenerateParams p = greedy((c.at("frames").get<int>() + 0.5) / 50.0);
  p.prompts = c.at("texts").get<std::vector<std::string>>();
  std::vector<mg::Codes> rows = t.model->generate_batch(p);
  ASSERT_EQ(rows.size(), 2u);
  std::vector<int> both = flat(rows[0]), second = flat(rows[1]);
  both.insert(both.end(), second.begin(), second.end());
  EXPECT_EQ(both, ints(g.at("codes_single")));
}

}  // namespace
