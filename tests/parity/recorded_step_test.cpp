// The recorded decode step (lm/recorded_step.h, Backend::record) against the op-by-op step.
//
// Why these traps exist: a recording backend (CUDA graphs) runs the step's host code ONCE and then
// replays the launches, so anything the host computes per step (the position, the step number that
// seeds the sampler, the KV-cache slot, the number of visible keys) must instead be read from
// device memory at replay time. A value baked in at recording time gives the right tokens for the
// first step only. On the CPU the recording re-runs the same ops, so comparing the two paths here,
// over whole generations, pins the model-side plumbing that the GPU replays; the CUDA tests
// (tests/gpu/cuda_recording_test.cpp) then pin the kernels.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "lm/generate.h"
#include "test_util.h"

using mg::DType;
using mg::Tensor;

namespace {

std::unique_ptr<mg::MusicGen> load(mg::Backend& be, const std::string& name) {
  return mg::MusicGen::load(be, mgtest::data_dir() + "/models/" + name);
}

struct Run {
  std::vector<mg::Codes> codes;
  std::vector<std::vector<float>> logits;  // sequence 0's guided logits per step
};

Run generate(const mg::MusicGen& m, mg::GenerateParams p, bool recorded, bool watch = true) {
  Run r;
  p.record_steps = recorded;
  if (watch) p.on_logits = [&r](int64_t, const float* l, int K, int V) { r.logits.emplace_back(l, l + int64_t(K) * V); };
  r.codes = m.generate_batch(p);
  return r;
}

void expect_same(const mg::MusicGen& m, const mg::GenerateParams& p, const std::string& what) {
  const Run eager = generate(m, p, false), rec = generate(m, p, true);
  EXPECT_EQ(rec.codes, eager.codes) << what;
  // Unwatched, the recorded steps never read tokens back: the pattern is read once per window.
  EXPECT_EQ(generate(m, p, true, false).codes, eager.codes) << what << ", no callbacks";
  ASSERT_EQ(rec.logits.size(), eager.logits.size()) << what;
  for (size_t s = 0; s < eager.logits.size(); ++s)
    ASSERT_EQ(rec.logits[s], eager.logits[s]) << what << ": guided logits of step " << s << " differ";
}

}  // namespace

TEST(RecordedStep, DefaultRecordingRunsNothingUntilReplayed) {
  // Trap: record() must not run the ops (a CUDA capture does not execute them either), and every
  // replay must run them again.
  auto be = mg::make_cpu_backend(1);
  int runs = 0;
  auto rec = be->record([&] { ++runs; });
  EXPECT_EQ(runs, 0);
  rec->replay();
  rec->replay();
  EXPECT_EQ(runs, 2);
  EXPECT_FALSE(be->records_launches());
}

TEST(RecordedStep, DeviceScalarOpsEqualTheirHostArgumentForms) {
  auto be = mg::make_cpu_backend(2);
  const int64_t R = 2, cap = 9, D = 8, H = 2;
  Tensor scalars = be->alloc(DType::I32, {3});
  Tensor host = Tensor::empty(DType::I32, {3});
  host.ptr<int32_t>()[0] = 5;  // pos
  host.ptr<int32_t>()[1] = 6;  // keys
  host.ptr<int32_t>()[2] = 41; // step
  be->upload_into(scalars, host);
  Tensor pos = scalars.slice0(0, 1), keys = scalars.slice0(1, 1), step = scalars.slice0(2, 1);

  Tensor src = mgtest::random_tensor({R, 3 * D}, 1);
  Tensor a = mgtest::random_tensor({R, cap, D}, 2), b = a.clone();
  be->write_kv(a, 5, src, D);
  be->write_kv_at(b, pos, src, D);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  Tensor va = mgtest::random_tensor({R, cap, D}, 7), vb = va.clone(), kb = mgtest::random_tensor({R, cap, D}, 2);
  be->write_kv(va, 5, src, 2 * D);
  be->write_kv_pair_at(kb, vb, pos, src, D);  // K from columns D.., V from 2D..
  EXPECT_EQ(kb.to_vector(), a.to_vector());
  EXPECT_EQ(vb.to_vector(), va.to_vector());

  Tensor q = mgtest::random_tensor({R, 1, D}, 3), k = mgtest::random_tensor({R, cap, D}, 4);
  Tensor v = mgtest::random_tensor({R, cap, D}, 5);
  EXPECT_EQ(be->attention_rows(q, k, v, 6, int(H), 0.3f, true).to_vector(),
            be->attention_rows_at(q, k, v, keys, cap, int(H), 0.3f, true).to_vector());
  EXPECT_THROW(be->attention_rows_at(q, k, v, keys, 5, int(H), 0.3f, true), mg::Error);  // keys > max_keys

  const std::vector<uint64_t> seeds = {7, 0xfedcba9876543210ull};
  Tensor seeds_t = Tensor::empty(DType::I64, {2});
  std::memcpy(seeds_t.data, seeds.data(), sizeof(uint64_t) * 2);
  Tensor logits = mgtest::random_tensor({4, 3, 50}, 6, 4.0f);
  mg::SamplerParams sp;
  sp.top_k = 10;
  Tensor g1, g2;
  Tensor t1 = be->sample_tokens(logits, true, 3.0f, sp, seeds, 41, &g1);
  Tensor t2 = be->sample_tokens_at(logits, true, 3.0f, sp, be->upload(seeds_t), step, &g2);
  EXPECT_EQ(std::vector<int32_t>(t1.ptr<int32_t>(), t1.ptr<int32_t>() + t1.numel()),
            std::vector<int32_t>(t2.ptr<int32_t>(), t2.ptr<int32_t>() + t2.numel()));
  EXPECT_EQ(g1.to_vector(), g2.to_vector());
}

TEST(RecordedStep, SampledGenerationWithCfgAndTakesEqualsOpByOp) {
  // Trap: the step number seeds the draws; a recording that froze it would repeat step 0's draw
  // pattern, and takes (several sequences) must each keep their own seed.
  auto be = mg::make_cpu_backend(2);
  auto m = load(*be, "musicgen_tiny");
  mg::GenerateParams p;
  p.prompts = {"80s pop", "a slow waltz for strings"};
  p.takes = 2;
  p.duration_s = 0.3;
  p.seed = 5;
  expect_same(*m, p, "sampled, 2 prompts x 2 takes, CFG");
}

TEST(RecordedStep, StreamedFramesEqualTheReturnedCodes) {
  // Trap: streaming reads each step's tokens back to find the frames that became final; the
  // device pattern and the host pattern must stay the same sequence.
  auto be = mg::make_cpu_backend(2);
  auto m = load(*be, "musicgen_tiny");
  mg::GenerateParams p;
  p.prompt = "bass";
  p.duration_s = 0.3;
  const int K = m->config().decoder.num_codebooks;
  mg::Codes streamed(size_t(K), std::vector<int>{});
  p.on_frame = [&](int seq, int64_t frame, const std::vector<int>& codes) {
    ASSERT_EQ(seq, 0);
    ASSERT_EQ(frame, int64_t(streamed[0].size()));
    for (int k = 0; k < K; ++k) streamed[size_t(k)].push_back(codes[size_t(k)]);
  };
  const mg::Codes codes = m->generate_codes(p);
  EXPECT_EQ(streamed, codes);
  p.on_frame = nullptr;
  p.record_steps = false;
  EXPECT_EQ(m->generate_codes(p), codes);
}

TEST(RecordedStep, GreedyUnconditionalEqualsOpByOp) {
  auto be = mg::make_cpu_backend(2);
  auto m = load(*be, "musicgen_tiny");
  mg::GenerateParams p;
  p.duration_s = 0.2;
  p.sampler.greedy = true;
  expect_same(*m, p, "greedy, unconditional (one row)");
}

TEST(RecordedStep, ContinuationAndLongWindowsEqualOpByOp) {
  // Trap: a prompt makes the first call multi-column (op by op), and each new window starts a new
  // cache: the recording must be remade per window and continue from the prompt's positions.
  auto be = mg::make_cpu_backend(2);
  auto m = load(*be, "musicgen_tiny");
  mg::GenerateParams p;
  p.prompt = "drums";
  p.duration_s = 0.5;
  p.max_window_s = 0.3;
  p.extend_stride_s = 0.2;
  p.audio_prompt = mg::Codes(size_t(m->config().decoder.num_codebooks), std::vector<int>{1, 2, 3});
  expect_same(*m, p, "continuation + 2 windows");
}

TEST(RecordedStep, MelodyPrefixEqualsOpByOp) {
  // Trap: melody models prefill a chroma prefix first, so the first generated position is not 0.
  auto be = mg::make_cpu_backend(2);
  auto m = load(*be, "musicgen_melody_tiny");
  mg::GenerateParams p;
  p.prompt = "jazz";
  p.duration_s = 0.2;
  const int C = m->config().num_chroma;
  p.chroma = Tensor::zeros(DType::F32, {12, C});
  for (int f = 0; f < 12; ++f) p.chroma.f32()[f * C + (f * 5) % C] = 1.0f;
  expect_same(*m, p, "melody + text");
}
