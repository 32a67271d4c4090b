// Step lanes (lm/step_lanes.h): the server may run the shared decode step as groups of requests
// side by side, each on a backend of its own. The trap: a lane has fewer threads and fewer rows
// than the whole step, and an op whose bits depend on either (a reduction split by thread count,
// a GEMM blocked by row count) would give a request different logits in a lane, so the music
// would change with the load on the server and with the way the timing picked. Every way must
// give the same bits, and the chooser must only ever pick among ways that are all correct.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "lm/sequence_stepper.h"
#include "lm/step_lanes.h"
#include "test_util.h"

namespace {

using Stepper = mg::MusicGen::SequenceStepper;

struct Tiny {
  explicit Tiny(mg::DType weights = mg::DType::F32)
      : model(mg::MusicGen::load(*be, mgtest::data_dir() + "/models/musicgen_tiny", weights)) {}
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(2);
  std::unique_ptr<mg::MusicGen> model;
};

std::vector<std::unique_ptr<Stepper>> requests(Tiny& t, int n) {
  std::vector<std::unique_ptr<Stepper>> st;
  for (int i = 0; i < n; ++i) {
    mg::GenerateParams p;
    p.prompt = i % 3 == 1 ? "" : "request " + std::to_string(i);  // unconditional ones too
    p.seed = uint64_t(40 + i);
    p.duration_s = 1.0;
    p.guidance_scale = i % 2 ? 3.0f : 1.0f;  // one row or two
    p.max_window_s = 30.0;
    mg::Tensor text =
        p.prompt.empty() ? mg::Tensor() : t.model->project_text(t.model->text_hidden_states(t.model->tokenize(p.prompt)));
    st.push_back(std::make_unique<Stepper>(*t.model, *t.be, p, text));
  }
  return st;
}

// The states and ids of one shared step of all the steppers (as the server's engine has them).
Stepper::StepInputs step_inputs(const std::vector<std::unique_ptr<Stepper>>& st) {
  std::vector<Stepper*> all;
  for (auto& s : st) all.push_back(s.get());
  return Stepper::shared_step_inputs(all);
}

// Twelve steps of seven requests, each step run every way from the same caches: the logits are
// the same bits whichever way (and the caches then agree too, since the next steps read them);
// with f32 weights (GEMVs in groups of rows) and q8_0 (one call for every row).
class StepLanesWeights : public ::testing::TestWithParam<mg::DType> {};

TEST_P(StepLanesWeights, EveryWayGivesTheSharedStepsBits) {
  Tiny t(GetParam());
  mg::StepLanes lanes(*t.be, 2, 2);
  ASSERT_EQ(lanes.lanes(), 2);
  auto st = requests(t, 7);
  for (int step = 0; step < 12; ++step) {
    const auto in = step_inputs(st);
    const std::vector<mg::DecoderState*>& states = in.states;
    const mg::Tensor& ids = in.ids;
    // Per way and state: its logits (a host copy) and its draw, made on the lane's backend.
    std::vector<std::vector<mg::Tensor>> logits, tokens;
    for (mg::StepMode m : {mg::StepMode::shared, mg::StepMode::lanes_paced, mg::StepMode::lanes_free}) {
      std::vector<int64_t> length;
      for (auto* s : states) length.push_back(s->length);
      logits.emplace_back(st.size());
      tokens.emplace_back(st.size());
      lanes.step_as(m, t.model->decoder(), states, ids, [&](size_t i, const mg::Tensor& l, mg::Backend& be) {
        const mg::Tensor h = be.download(l);
        logits.back()[i] = mg::Tensor::empty(mg::DType::F32, h.shape);
        std::memcpy(logits.back()[i].f32(), h.f32(), size_t(h.numel()) * sizeof(float));
        tokens.back()[i] = st[i]->sample_shared_step(l, be);
      });
      EXPECT_EQ(lanes.last_mode(), m);
      for (size_t i = 0; i < states.size(); ++i) states[i]->length = length[i];  // the same position again
    }
    for (auto* s : states) ++s->length;  // as the step does, once
    for (size_t m = 1; m < logits.size(); ++m)
      for (size_t i = 0; i < st.size(); ++i) {
        ASSERT_EQ(logits[m][i].shape, logits[0][i].shape);
        ASSERT_EQ(std::memcmp(logits[m][i].f32(), logits[0][i].f32(), size_t(logits[0][i].numel()) * sizeof(float)), 0)
            << "step " << step << ", way " << m << ", request " << i;
        ASSERT_EQ(std::memcmp(tokens[m][i].ptr<int32_t>(), tokens[0][i].ptr<int32_t>(),
                              size_t(tokens[0][i].numel()) * sizeof(int32_t)), 0)
            << "step " << step << ", way " << m << ", request " << i;
      }
    for (size_t i = 0; i < st.size(); ++i) st[i]->finish_sampled_step(tokens[0][i]);
    for (auto& s : st) ASSERT_FALSE(s->done());
  }
}

INSTANTIATE_TEST_SUITE_P(F32AndQ8, StepLanesWeights, ::testing::Values(mg::DType::F32, mg::DType::Q8_0));

// With fewer requests than two per lane the step is always shared; with enough, the chooser runs
// one untimed step (it would hold the new requests' cold first step), then times the ways in turn,
// one step each (shared, paced, free), kProbeSteps times, then runs one of them kRunSteps steps.
TEST(StepLanes, TheChooserProbesEachWayInTurnThenKeepsOne) {
  Tiny t;
  mg::StepLanes lanes(*t.be, 2, 2);
  auto few = requests(t, 3);
  const auto no_draw = [](size_t, const mg::Tensor&, mg::Backend&) {};
  auto in = step_inputs(few);
  lanes.step(t.model->decoder(), in.states, in.ids, no_draw);
  EXPECT_EQ(lanes.last_mode(), mg::StepMode::shared);

  auto st = requests(t, 4);
  std::vector<mg::StepMode> seen;
  const int P = mg::StepWayChooser::kProbeSteps;
  for (int s = 0; s < 1 + 3 * P + 5; ++s) {
    in = step_inputs(st);
    lanes.step(t.model->decoder(), in.states, in.ids, no_draw);
    seen.push_back(lanes.last_mode());
  }
  EXPECT_EQ(seen[0], mg::StepMode::shared);  // untimed, in the way kept so far
  for (int s = 0; s < 3 * P; ++s) EXPECT_EQ(seen[size_t(1 + s)], mg::StepMode(s % 3)) << "probe step " << s;
  for (size_t s = size_t(1 + 3 * P); s < seen.size(); ++s) EXPECT_EQ(seen[s], seen[size_t(1 + 3 * P)]);  // kept
  EXPECT_EQ(lanes.steps_in(mg::StepMode::shared) + lanes.steps_in(mg::StepMode::lanes_paced) +
                lanes.steps_in(mg::StepMode::lanes_free),
            int64_t(1 + seen.size()));
  EXPECT_GE(lanes.steps_in(mg::StepMode::lanes_paced), P);
  EXPECT_GE(lanes.steps_in(mg::StepMode::lanes_free), P);
}

// Why a margin: two or three timed steps cannot tell ways apart by a few percent, and a wrong
// switch to lanes costs more (f32: ~7% a step) than a missed one (q8: ~5%). So a lane way is kept
// only when its probe took at most kLaneMargin of shared's time.
TEST(StepLanes, ALaneWayMustBeatSharedByTheMargin) {
  using M = mg::StepMode;
  const double m = mg::StepWayChooser::kLaneMargin;
  EXPECT_EQ(mg::StepWayChooser::pick({1.0, 0.995, 1.5}), M::shared);  // faster, but within the margin
  EXPECT_EQ(mg::StepWayChooser::pick({1.0, 1.2, 0.995}), M::shared);
  EXPECT_EQ(mg::StepWayChooser::pick({1.0, m * 0.999, 1.5}), M::lanes_paced);
  EXPECT_EQ(mg::StepWayChooser::pick({1.0, 0.95, 0.90}), M::lanes_free);  // the faster lane way
  EXPECT_EQ(mg::StepWayChooser::pick({1.0, 0.90, 0.95}), M::lanes_paced);
  EXPECT_EQ(mg::StepWayChooser::pick({1.0, 1.1, 1.2}), M::shared);
}

// The chooser on its own, with made-up step times (a lane step 1.4x a shared one, as with f32
// weights). The trap: every probe runs six lane steps, ~2% of a busy server's decode when it came
// every 105 steps, and more when requests come and go, since each new number of requests probed
// at once. A number seen before must start in its elected way, and a way elected again must be
// probed less often, while a change of way must bring the probes back to their first rate.
using Chooser = mg::StepWayChooser;
using Way = mg::StepMode;

// `steps` steps of `requests` requests; each timed `seconds[way]`. Returns the ways run.
std::vector<Way> run_steps(Chooser& c, int64_t requests, int steps, const std::array<double, 3>& seconds) {
  std::vector<Way> ways;
  for (int s = 0; s < steps; ++s) {
    const Way w = c.next(requests, true);
    c.record(w, seconds[size_t(w)]);
    ways.push_back(w);
  }
  return ways;
}

// Where the probes start in `ways`: each is an untimed step, then shared, paced, free in turn.
std::vector<size_t> probe_starts(const std::vector<Way>& ways) {
  std::vector<size_t> starts;
  for (size_t s = 0; s + 3 < ways.size(); ++s)
    if (ways[s + 1] == Way::shared && ways[s + 2] == Way::lanes_paced && ways[s + 3] == Way::lanes_free &&
        (starts.empty() || s >= starts.back() + 1 + 3 * Chooser::kProbeSteps))
      starts.push_back(s);
  return starts;
}

const std::array<double, 3> kSharedWins = {1.0, 1.4, 1.4};
const std::array<double, 3> kPacedWins = {1.0, 0.9, 1.4};

TEST(StepWayChooser, AWayElectedAgainIsProbedHalfAsOftenUpToALimit) {
  Chooser c;
  const int probe = 1 + 3 * Chooser::kProbeSteps;
  const std::vector<Way> ways = run_steps(c, 8, 4000, kSharedWins);
  const std::vector<size_t> starts = probe_starts(ways);
  ASSERT_GE(starts.size(), 6u);
  EXPECT_EQ(starts[0], 0u);  // a new number of requests probes at once
  int run = Chooser::kRunSteps;
  for (size_t i = 1; i < starts.size(); ++i) {
    EXPECT_EQ(int(starts[i] - starts[i - 1]), probe + run) << "probe " << i;
    run = std::min(2 * run, Chooser::kMaxRunSteps);
  }
  for (size_t s = 0; s < ways.size(); ++s) {
    const bool in_probe = std::any_of(starts.begin(), starts.end(), [&](size_t p) { return s > p && s < p + probe; });
    if (!in_probe) EXPECT_EQ(ways[s], Way::shared) << "step " << s;
  }
}

TEST(StepWayChooser, AnotherWayElectedBringsTheProbesBack) {
  Chooser c;
  run_steps(c, 8, 1 + 3 * Chooser::kProbeSteps + Chooser::kRunSteps, kSharedWins);  // elected once
  run_steps(c, 8, 1 + 3 * Chooser::kProbeSteps, kSharedWins);                        // and again
  EXPECT_EQ(c.run_steps(8), 2 * Chooser::kRunSteps);
  std::vector<Way> ways = run_steps(c, 8, 2 * Chooser::kRunSteps + 1 + 3 * Chooser::kProbeSteps, kPacedWins);
  EXPECT_EQ(c.run_steps(8), Chooser::kRunSteps);  // a new way: back to the first run
  ways = run_steps(c, 8, Chooser::kRunSteps, kPacedWins);
  for (Way w : ways) EXPECT_EQ(w, Way::lanes_paced);
}

TEST(StepWayChooser, ANumberOfRequestsSeenBeforeStartsInItsElectedWay) {
  Chooser c;
  run_steps(c, 8, 1 + 3 * Chooser::kProbeSteps, kPacedWins);  // 8 requests: paced
  const std::vector<Way> six = run_steps(c, 6, 1 + 3 * Chooser::kProbeSteps, kSharedWins);
  EXPECT_EQ(probe_starts(six), std::vector<size_t>{0});  // 6 is new: a probe at once
  EXPECT_EQ(c.next(2, false), Way::shared);                  // too few for lanes: shared, no probe
  const std::vector<Way> eight = run_steps(c, 8, 40, kSharedWins);
  for (Way w : eight) EXPECT_EQ(w, Way::lanes_paced);  // no probe before its run is over
  const std::vector<Way> back = run_steps(c, 6, Chooser::kRunSteps, kPacedWins);
  for (Way w : back) EXPECT_EQ(w, Way::shared);
  // The run goes on where it stopped: 8 requests probe after 96 steps in all, not after each visit.
  const std::vector<Way> rest = run_steps(c, 8, Chooser::kRunSteps - 40 + 1 + 3 * Chooser::kProbeSteps, kSharedWins);
  EXPECT_EQ(probe_starts(rest), std::vector<size_t>{size_t(Chooser::kRunSteps - 40)});
  EXPECT_EQ(c.run_steps(5), 0);  // never probed
}

// Fewer than two lanes: no lanes, every step shared.
TEST(StepLanes, OneLaneIsTheSharedStep) {
  Tiny t;
  mg::StepLanes one(*t.be, 2, 1);
  EXPECT_EQ(one.lanes(), 0);
  auto st = requests(t, 6);
  const auto in = step_inputs(st);
  one.step_as(mg::StepMode::lanes_paced, t.model->decoder(), in.states, in.ids,
              [](size_t, const mg::Tensor&, mg::Backend&) {});
  EXPECT_EQ(one.last_mode(), mg::StepMode::shared);
}

}  // namespace
