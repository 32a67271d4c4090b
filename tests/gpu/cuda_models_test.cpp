// The models end to end on CUDA against the same models on the CPU backend (itself pinned to the
// PyTorch references by tests/parity/): the tiny random-weight snapshots of tests/data/models are
// loaded twice, once per backend, and must agree:
//   MusicGen: the guided greedy logits of every step within 1e-3 relative (f32; the decoder is a
//             stack of GEMMs, attention and LayerNorms, then CFG amplifies differences 3x), the
//             greedy tokens equal, the multi-column step (all_logits) within 1e-3, and the
//             decoded audio of the same codes within 1e-4;
//   EnCodec:  the codes equal except on near-ties of the deep codebooks (tests/codes_compare.h:
//             float rounding decides those, so a flipped one is reported, not failed), the
//             per-segment scales within 1e-5 and the decoded audio of the same codes within 1e-4
//             (whole-file and windowed paths).
// Every op on these paths is a device op on CUDA (no host fallback of kernels/backend_fallbacks.cpp
// runs), so this is also the check that MusicGen runs on CUDA at all. Skips without a device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codec/encodec.h"
#include "codes_compare.h"
#include "kernels/ops.h"
#include "lm/generate.h"
#include "lm/transformer.h"
#include "test_util.h"

using mg::DType;
using mg::Tensor;

#define MG_SKIP_WITHOUT_CUDA()                                                                        \
  do {                                                                                                \
    if (!mg::cuda_available())                                                                        \
      GTEST_SKIP() << "no CUDA device: the CUDA model checks need a GPU (build with -DMUSICGEN_CUDA=ON " \
                      "and run on a machine with one, e.g. tools/gpu-check.sh)";                      \
  } while (0)

namespace {

constexpr double kTolLogits = 1e-3;
constexpr double kTolAudio = 1e-4;
constexpr double kTolScales = 1e-5;

std::string model_dir(const std::string& name) { return mgtest::data_dir() + "/models/" + name; }
bool have_model(const std::string& name) { return std::filesystem::exists(model_dir(name) + "/config.json"); }

struct Backends {
  std::unique_ptr<mg::Backend> cpu = mg::make_cpu_backend(2);
  std::unique_ptr<mg::Backend> gpu = mg::make_cuda_backend(0);
};

struct Run {
  std::vector<std::vector<float>> logits;  // per step, [K * vocab] guided
  std::vector<std::vector<int>> codes;     // [K][frames]
};

Run generate(const mg::MusicGen& m, mg::GenerateParams p) {
  Run r;
  p.on_logits = [&r](int64_t step, const float* l, int K, int V) {
    EXPECT_EQ(step, int64_t(r.logits.size()));
    r.logits.emplace_back(l, l + int64_t(K) * V);
  };
  r.codes = m.generate_codes(p);
  return r;
}

// A melody snapshot gets a melody (one-hot chroma, a few notes); others ignore it.
void add_melody(const mg::MusicGen& m, mg::GenerateParams& p) {
  if (!m.config().melody) return;
  const int C = m.config().num_chroma;
  p.chroma = Tensor::zeros(DType::F32, {20, C});
  for (int f = 0; f < 20; ++f) p.chroma.f32()[f * C + (f / 4 * 5) % C] = 1.0f;
}

void expect_same_generation(const std::string& name, const std::string& prompt, double duration_s) {
  Backends b;
  auto cpu = mg::MusicGen::load(*b.cpu, model_dir(name));
  auto gpu = mg::MusicGen::load(*b.gpu, model_dir(name));
  mg::GenerateParams p;
  p.prompt = prompt;
  p.duration_s = duration_s;
  p.guidance_scale = 3.0f;
  p.sampler.greedy = true;
  add_melody(*cpu, p);
  const Run want = generate(*cpu, p);
  // The GPU twice: decode steps replayed as one CUDA graph each (the default), and op by op.
  for (bool recorded : {true, false}) {
    p.record_steps = recorded;
    const Run got = generate(*gpu, p);
    const std::string tag = name + " prompt \"" + prompt + "\"" + (recorded ? " (CUDA graph steps)" : " (op by op)");
    ASSERT_EQ(got.logits.size(), want.logits.size()) << tag;
    ASSERT_FALSE(want.logits.empty()) << tag;
    for (size_t s = 0; s < want.logits.size(); ++s) {
      const double err = mgtest::rel_err(got.logits[s], want.logits[s]);
      EXPECT_LE(err, kTolLogits) << tag << ": step " << s << " logits rel_err " << err;
      if (err > kTolLogits) break;  // later steps see other tokens: one report is enough
    }
    EXPECT_EQ(got.codes, want.codes) << tag << ": greedy tokens differ";
  }
  // Unwatched (no on_logits / on_frame), the recorded steps never read tokens back: the device
  // delay pattern alone carries the generation, read once at the end of the window.
  p.record_steps = true;
  EXPECT_EQ(gpu->generate_codes(p), want.codes) << name << ": unwatched CUDA graph steps";
  const std::string tag = name + " prompt \"" + prompt + "\"";

  // The same codes through each backend's EnCodec decoder.
  Tensor a_cpu = cpu->decode_audio(want.codes), a_gpu = gpu->decode_audio(want.codes);
  ASSERT_EQ(mg::shape_str(a_gpu.shape), mg::shape_str(a_cpu.shape)) << tag;
  EXPECT_EQ(a_gpu.dim(0), cpu->channels()) << tag;
  const double aerr = mgtest::rel_err(a_gpu, a_cpu);
  EXPECT_LE(aerr, kTolAudio) << tag << ": decoded audio rel_err " << aerr;
}

}  // namespace

TEST(CudaModels, MusicgenTinyGreedyWithCfgMatchesCpu) {
  MG_SKIP_WITHOUT_CUDA();
  if (!have_model("musicgen_tiny")) GTEST_SKIP() << "tests/data/models/musicgen_tiny is absent";
  // 0.2 s at 50 Hz: 10 frames + 3 delay columns = 13 decoder steps, two rows (cond, null).
  expect_same_generation("musicgen_tiny", "80s pop track with bassy drums and synth", 0.2);
}

TEST(CudaModels, MusicgenTinyUnconditionalMatchesCpu) {
  // Trap: the empty prompt is the null condition: ONE row whose cross-attention output is
  // exactly zero (no CFG), a different path through the decoder than the CFG pair.
  MG_SKIP_WITHOUT_CUDA();
  if (!have_model("musicgen_tiny")) GTEST_SKIP() << "tests/data/models/musicgen_tiny is absent";
  expect_same_generation("musicgen_tiny", "", 0.1);
}

TEST(CudaModels, MusicgenStereoTinyMatchesCpu) {
  MG_SKIP_WITHOUT_CUDA();
  if (!have_model("musicgen_stereo_tiny")) GTEST_SKIP() << "tests/data/models/musicgen_stereo_tiny is absent";
  expect_same_generation("musicgen_stereo_tiny", "calm piano", 0.2);
}

TEST(CudaModels, MusicgenMelodyTinyMatchesCpu) {
  MG_SKIP_WITHOUT_CUDA();
  if (!have_model("musicgen_melody_tiny")) GTEST_SKIP() << "tests/data/models/musicgen_melody_tiny is absent";
  expect_same_generation("musicgen_melody_tiny", "jazz trio", 0.2);
}

TEST(CudaModels, MusicgenDecoderMultiColumnStepsMatchCpu) {
  // Trap: several columns in one call (the all_logits path, continuation prompts) run causal
  // attention with S > 1 queries whose positions are T - S .. T - 1; a following one-column step
  // must then continue from the cache those columns filled.
  MG_SKIP_WITHOUT_CUDA();
  if (!have_model("musicgen_tiny")) GTEST_SKIP() << "tests/data/models/musicgen_tiny is absent";
  Backends b;
  auto cpu = mg::MusicGen::load(*b.cpu, model_dir("musicgen_tiny"));
  auto gpu = mg::MusicGen::load(*b.gpu, model_dir("musicgen_tiny"));
  const int K = cpu->config().decoder.num_codebooks, V = cpu->config().decoder.vocab_size;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> tok(0, V);  // V itself is the special (bos / pad) token
  auto columns = [&](int S) {
    std::vector<std::vector<std::vector<int>>> c(2, std::vector<std::vector<int>>(K, std::vector<int>(S)));
    for (auto& row : c)
      for (auto& k : row)
        for (int& t : k) t = tok(rng);
    return c;
  };
  const auto first = columns(6), second = columns(1);
  std::vector<Tensor> logits[2];
  for (int i = 0; i < 2; ++i) {
    const mg::MusicGen& m = i == 0 ? *cpu : *gpu;
    mg::Backend& be = m.backend();
    mg::DecoderState st = mg::decoder_start(be, m.decoder(), m.condition_rows("a drum solo", true), 16);
    Tensor all;
    logits[i].push_back(mg::decoder_step(be, m.decoder(), st, first, &all));
    logits[i].push_back(all);
    logits[i].push_back(mg::decoder_step(be, m.decoder(), st, second));
    EXPECT_EQ(st.length, 7);
  }
  const char* what[] = {"last column of the 6-column step", "all 6 columns", "the following 1-column step"};
  for (int j = 0; j < 3; ++j) {
    ASSERT_EQ(mg::shape_str(logits[1][j].shape), mg::shape_str(logits[0][j].shape)) << what[j];
    const double err = mgtest::rel_err(logits[1][j], logits[0][j]);
    EXPECT_LE(err, kTolLogits) << what[j] << ": rel_err " << err;
  }
}

namespace {

constexpr double kTwoPi = 6.283185307179586;

// Deterministic music-like test signal: a few partials per channel plus a little noise.
Tensor test_audio(int channels, int64_t n, int rate) {
  Tensor a = Tensor::empty(DType::F32, {channels, n});
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> noise(-0.02f, 0.02f);
  for (int c = 0; c < channels; ++c)
    for (int64_t i = 0; i < n; ++i) {
      const double t = double(i) / rate;
      a.f32()[c * n + i] = float(0.3 * std::sin(kTwoPi * (220.0 + 110 * c) * t) +
                                 0.15 * std::sin(kTwoPi * 659.3 * t + 0.5) * std::sin(kTwoPi * 2.0 * t)) +
                           noise(rng);
    }
  return a;
}

void expect_same_encodec(const std::string& name, double seconds, int64_t window_frames) {
  Backends b;
  auto cpu = mg::EncodecModel::load(*b.cpu, model_dir(name));
  auto gpu = mg::EncodecModel::load(*b.gpu, model_dir(name));
  if (window_frames > 0) {
    cpu->set_window_frames(window_frames);
    gpu->set_window_frames(window_frames);
  }
  const double kbps = cpu->config().target_bandwidths.back();  // every codebook
  const int rate = cpu->sample_rate();
  Tensor audio = test_audio(cpu->channels(), int64_t(seconds * rate) + 37, rate);  // not a whole frame
  const std::string tag = name + (window_frames > 0 ? " windowed" : "");
  const mg::EncodedAudio want = cpu->encode(audio, kbps), got = gpu->encode(audio, kbps);
  EXPECT_EQ(got.length, want.length) << tag;
  EXPECT_EQ(got.num_codebooks, want.num_codebooks) << tag;
  ASSERT_EQ(got.segments.size(), want.segments.size()) << tag;
  for (size_t s = 0; s < want.segments.size(); ++s) {
    const Tensor& g = got.segments[s];
    const Tensor& w = want.segments[s];
    ASSERT_EQ(mg::shape_str(g.shape), mg::shape_str(w.shape)) << tag << " segment " << s;
    if (mgtest::code_values(g) == mgtest::code_values(w)) continue;
    // cuBLAS sums in another order than the CPU: a deep codebook's near-tie may flip (see
    // tests/codes_compare.h); anything else is a real difference.
    const mgtest::CodeReport rep =
        mgtest::compare_codes(model_dir(name), mgtest::segment_embedding(*b.cpu, *cpu, audio, s), g, w);
    EXPECT_EQ(rep.real, 0) << tag << " segment " << s << ": " << rep.real << " of " << w.dim(1)
                           << " frames differ beyond a near-tie; first: " << rep.first_real;
    std::cout << "[  NOTE    ] " << tag << " segment " << s << ": " << rep.frames_differing << " of " << w.dim(1)
              << " frames differ from the CPU at a deep codebook (" << rep.near_ties << " near-ties, "
              << rep.exact_ties << " exact ties)" << std::endl;
  }
  ASSERT_EQ(got.scales.size(), want.scales.size()) << tag;
  if (!want.scales.empty()) {
    const double err = mgtest::rel_err(got.scales, want.scales);
    EXPECT_LE(err, kTolScales) << tag << ": scales rel_err " << err;
  }
  // Decode the CPU's codes on both backends.
  Tensor a_cpu = cpu->decode(want), a_gpu = gpu->decode(want);
  ASSERT_EQ(mg::shape_str(a_gpu.shape), mg::shape_str(a_cpu.shape)) << tag;
  const double err = mgtest::rel_err(a_gpu, a_cpu);
  EXPECT_LE(err, kTolAudio) << tag << ": decoded audio rel_err " << err;
}

}  // namespace

TEST(CudaModels, EncodecTinyModelsMatchCpu) {
  MG_SKIP_WITHOUT_CUDA();
  int ran = 0;
  for (const char* name : {"encodec_24khz_tiny", "encodec_32khz_tiny", "encodec_48khz_tiny"}) {
    if (!have_model(name)) continue;
    SCOPED_TRACE(name);
    expect_same_encodec(name, 1.3, 0);  // 48 kHz: two 1 s segments with overlap and RMS scales
    ++ran;
  }
  if (ran == 0) GTEST_SKIP() << "no encodec_*_tiny model in tests/data/models";
}

TEST(CudaModels, EncodecTinyWindowedMatchesCpu) {
  // Trap: the windowed path (long inputs) narrows windows on the device (narrow_last) and runs
  // the LSTM in chunks with the state carried over; it must give the CPU's codes too.
  MG_SKIP_WITHOUT_CUDA();
  int ran = 0;
  for (const char* name : {"encodec_24khz_tiny", "encodec_32khz_tiny"}) {
    if (!have_model(name)) continue;
    SCOPED_TRACE(name);
    expect_same_encodec(name, 2.1, 16);
    ++ran;
  }
  if (ran == 0) GTEST_SKIP() << "no 24/32 kHz encodec tiny model in tests/data/models";
}
