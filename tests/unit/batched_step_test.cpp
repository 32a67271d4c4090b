// Continuous batching (lm/batched_step.h, lm/sequence_stepper.h): a request's tokens must not
// depend on which other requests share its decode steps. The trap: a GEMM whose blocking (and so
// its float summation order) changes with the row count gives a row slightly different bits in a
// batch of 16 than alone, and one flipped draw changes the whole rest of the music.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "kernels/quant.h"
#include "lm/batched_step.h"
#include "lm/sequence_stepper.h"
#include "test_util.h"

namespace {

bool same_bits(const float* a, const float* b, int64_t n) { return std::memcmp(a, b, size_t(n) * sizeof(float)) == 0; }

// Each row of linear_in_row_groups(x[M]) is the same bits as that row alone, for every M up to
// 8 requests with CFG and beyond, with f32, half and quantized weights, with and without the fused
// epilogues; a long K makes the CPU GEMV split w into several tiles per thread.
TEST(BatchedStep, LinearRowsDoNotDependOnTheRowCount) {
  auto be = mg::make_cpu_backend(2);
  const int64_t N = 77;  // odd: remainder rows are covered
  for (mg::DType dt : {mg::DType::F32, mg::DType::F16, mg::DType::BF16, mg::DType::Q8_0, mg::DType::Q4_0})
  for (int64_t long_k : {0, 1}) {
    const bool quantized = mg::dtype_is_quantized(dt);
    // whole 32-blocks for q8/q4; a SIMD tail otherwise
    const int64_t K = long_k ? (quantized ? 4096 : 4100) : (quantized ? 224 : 200);
    mg::Tensor w = mgtest::random_tensor({N, K}, 11, 0.1f);
    if (quantized) w = mg::quantize(w, dt);
    else if (dt != mg::DType::F32) w = be->cast(w, dt);
    for (int variant = 0; variant < 3; ++variant) {
      const int64_t M = 19;
      mg::Tensor x = mgtest::random_tensor({M, K}, 5), res = mgtest::random_tensor({M, N}, 6);
      mg::LinearFusion f;
      if (variant == 1) f.gelu = true;
      if (variant == 2) f.residual = &res;
      for (int64_t rows = 1; rows <= M; ++rows) {
        mg::Tensor xr = x.slice0(0, rows), rr = res.slice0(0, rows);
        mg::LinearFusion fr = f;
        if (f.residual) fr.residual = &rr;
        mg::Tensor y = mg::linear_in_row_groups(*be, xr, w, fr);
        for (int64_t r = 0; r < rows; ++r) {
          mg::Tensor xa = x.slice0(r, 1), ra = res.slice0(r, 1);
          mg::LinearFusion fa = f;
          if (f.residual) fa.residual = &ra;
          mg::Tensor alone = be->linear_fused(xa, w, nullptr, fa);
          ASSERT_TRUE(same_bits(y.f32() + r * N, alone.f32(), N))
              << "dtype " << int(dt) << " K " << K << " variant " << variant << ": row " << r << " of " << rows;
        }
      }
    }
  }
}

struct Tiny {
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(2);
  std::unique_ptr<mg::MusicGen> model = mg::MusicGen::load(*be, mgtest::data_dir() + "/models/musicgen_tiny");
};

mg::GenerateParams request(const std::string& prompt, uint64_t seed, double duration, float cfg, int top_k) {
  mg::GenerateParams p;
  p.prompt = prompt;
  p.seed = seed;
  p.duration_s = duration;
  p.guidance_scale = cfg;
  p.sampler.top_k = top_k;
  p.max_window_s = 30.0;
  return p;
}

using Stepper = mg::MusicGen::SequenceStepper;

std::unique_ptr<Stepper> make(Tiny& t, const mg::GenerateParams& p) {
  mg::Tensor text = p.prompt.empty() ? mg::Tensor() : t.model->project_text(t.model->text_hidden_states(t.model->tokenize(p.prompt)));
  return std::make_unique<Stepper>(*t.model, *t.be, p, text);
}

// One scheduler iteration over the steppers not yet done: solo steps, then one shared step.
void step(Tiny& t, std::vector<Stepper*> all) {
  std::vector<Stepper*> shared;
  for (Stepper* s : all) {
    if (s->done()) continue;
    if (s->needs_solo_step()) s->solo_step();
    else shared.push_back(s);
  }
  if (shared.empty()) return;
  const auto in = Stepper::shared_step_inputs(shared);
  mg::Tensor logits = mg::decoder_step_states(*t.be, t.model->decoder(), in.states, in.ids);
  // Offsets before finishing: a stepper whose window ends drops its state (rows() becomes 0).
  std::vector<mg::Tensor> slices;
  int64_t r0 = 0;
  for (Stepper* s : shared) {
    slices.push_back(logits.slice0(r0, s->rows()));
    r0 += s->rows();
  }
  for (size_t i = 0; i < shared.size(); ++i) shared[i]->finish_shared_step(slices[i]);
}

mg::Codes alone(Tiny& t, const mg::GenerateParams& p) {
  auto s = make(t, p);
  while (!s->done()) step(t, {s.get()});
  return s->codes();
}

// Three requests (CFG and not, different lengths and sampling) joining at different steps, one
// leaving early: each gets exactly the codes it gets alone, which are the library's own.
TEST(BatchedStep, StaggeredRequestsGiveTheCodesTheyGetAlone) {
  Tiny t;
  const std::vector<mg::GenerateParams> ps = {request("lofi beat", 7, 1.0, 3.0f, 250),
                                              request("", 8, 0.5, 3.0f, 50),
                                              request("drums and bass", 9, 0.8, 1.0f, 250)};
  const std::vector<int> joins_at = {0, 5, 12};
  std::vector<mg::Codes> solo;
  for (const auto& p : ps) solo.push_back(alone(t, p));

  std::vector<std::unique_ptr<Stepper>> live(ps.size());
  for (int it = 0; it < 10000; ++it) {
    for (size_t i = 0; i < ps.size(); ++i)
      if (it == joins_at[i]) live[i] = make(t, ps[i]);
    std::vector<Stepper*> active;
    bool all_done = true;
    for (auto& s : live) {
      if (s) active.push_back(s.get());
      all_done = all_done && s && s->done();
    }
    if (all_done) break;
    step(t, active);
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    ASSERT_TRUE(live[i] && live[i]->done()) << "request " << i;
    EXPECT_EQ(live[i]->codes(), solo[i]) << "request " << i << " batched differs from alone";
    EXPECT_EQ(solo[i], t.model->generate_codes(ps[i])) << "request " << i << " alone differs from generate_codes";
  }
}

// Beyond one window (tiny model: a short window) the later windows start with a several-column
// step that runs alone, then the request rejoins the shared steps.
TEST(BatchedStep, LongRequestsWindowByWindow) {
  Tiny t;
  mg::GenerateParams longer = request("lofi", 3, 1.5, 3.0f, 250);
  longer.max_window_s = 1.0;
  longer.extend_stride_s = 0.5;
  mg::GenerateParams other = request("rock", 4, 1.2, 3.0f, 250);
  const mg::Codes a = alone(t, longer), b = alone(t, other);
  auto sa = make(t, longer), sb = make(t, other);
  while (!sa->done() || !sb->done()) step(t, {sa.get(), sb.get()});
  EXPECT_EQ(sa->codes(), a);
  EXPECT_EQ(sb->codes(), b);
  EXPECT_EQ(a, t.model->generate_codes(longer));
  EXPECT_EQ(int64_t(a[0].size()), int64_t(1.5 * 50));
}

// Why: a server starts a request on a finished request's KV block (pages already mapped), whose
// positions still hold the old request's keys and values. Attention must read only what the new
// request wrote, so its codes must be those of a fresh block; a block too small for the request
// (or another request's first window) must be refused, not overrun. A stepper's later windows take
// over its previous window's block the same way.
TEST(BatchedStep, AReusedKvBlockGivesTheCodesOfAFreshOne) {
  Tiny t;
  const mg::GenerateParams first = request("lofi beat", 7, 1.0, 3.0f, 250);
  const mg::GenerateParams second = request("drums and bass", 9, 0.8, 3.0f, 250);
  const mg::GenerateParams bigger = request("rock", 4, 1.2, 3.0f, 250);
  const mg::Codes fresh_second = alone(t, second), fresh_bigger = alone(t, bigger);

  auto a = make(t, first);
  while (!a->done()) step(t, {a.get()});
  mg::Tensor block = a->take_kv_block();
  ASSERT_TRUE(block.defined());
  EXPECT_FALSE(a->take_kv_block().defined()) << "handed out once";

  const mg::Tensor text = t.model->project_text(t.model->text_hidden_states(t.model->tokenize(second.prompt)));
  Stepper b(*t.model, *t.be, second, text, block);
  EXPECT_EQ(b.state().kv_block.data, block.data) << "a 0.8 s request fits in a 1 s request's block";
  while (!b.done()) step(t, {&b});
  EXPECT_EQ(b.codes(), fresh_second);

  mg::Tensor small = b.take_kv_block();
  const mg::Tensor text_c = t.model->project_text(t.model->text_hidden_states(t.model->tokenize(bigger.prompt)));
  Stepper c(*t.model, *t.be, bigger, text_c, small);
  EXPECT_NE(c.state().kv_block.data, small.data) << "a 1.2 s request does not fit: a new block";
  while (!c.done()) step(t, {&c});
  EXPECT_EQ(c.codes(), fresh_bigger);

  mg::GenerateParams windows = request("lofi", 3, 1.5, 3.0f, 250);  // three windows of 1 s
  windows.max_window_s = 1.0;
  windows.extend_stride_s = 0.5;
  auto w = make(t, windows);
  const void* first_window = w->state().kv_block.data;
  while (!w->done()) step(t, {w.get()});
  EXPECT_EQ(w->codes(), t.model->generate_codes(windows));
  EXPECT_EQ(w->take_kv_block().data, first_window) << "later windows took over the first one's block";
}

}  // namespace
