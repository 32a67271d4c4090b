// Step lanes (lm/step_lanes.h) as musicgen-server's scheduler runs them: six requests stepped
// together to the end, the step run every way in turn (shared, paced and free lanes, then as the
// timing picks), each lane drawing its requests' tokens on its own thread and backend. Every
// request's codes must equal its codes stepped alone. Run under ThreadSanitizer by scripts/test.sh
// (build-tsan), where a race between the lanes (their threads, the pacing, the draws, the model
// they share) fails the test; in the normal build it checks the codes.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "lm/sequence_stepper.h"
#include "lm/step_lanes.h"
#include "test_util.h"

namespace {

using Stepper = mg::MusicGen::SequenceStepper;

std::unique_ptr<Stepper> make(const mg::MusicGen& model, mg::Backend& be, int i) {
  mg::GenerateParams p;
  p.prompt = i % 3 == 2 ? "" : "lane request " + std::to_string(i);
  p.seed = uint64_t(70 + i);
  p.duration_s = 0.3 + 0.05 * i;  // they end at different steps
  p.guidance_scale = i % 2 ? 3.0f : 1.0f;
  p.sampler.top_k = 50;
  p.max_window_s = 30.0;
  mg::Tensor text = p.prompt.empty() ? mg::Tensor() : model.project_text(model.text_hidden_states(model.tokenize(p.prompt)));
  return std::make_unique<Stepper>(model, be, p, text);
}

// Steps the requests `which` together to their ends; step k runs way ways[k % ways.size()]
// (empty: StepLanes picks by timing).
std::vector<mg::Codes> run(const mg::MusicGen& model, mg::Backend& be, mg::StepLanes& lanes, const std::vector<int>& which,
                           const std::vector<mg::StepMode>& ways) {
  std::vector<std::unique_ptr<Stepper>> st;
  for (int i : which) st.push_back(make(model, be, i));
  for (size_t k = 0;; ++k) {
    std::vector<Stepper*> shared;
    for (auto& s : st)
      if (!s->done()) {
        if (s->needs_solo_step()) s->solo_step();
        else shared.push_back(s.get());
      }
    if (shared.empty()) break;
    const auto in = Stepper::shared_step_inputs(shared);
    std::vector<mg::Tensor> tokens(shared.size());
    auto draw = [&](size_t i, const mg::Tensor& logits, mg::Backend& lane_be) {
      tokens[i] = shared[i]->sample_shared_step(logits, lane_be);
    };
    if (ways.empty()) lanes.step(model.decoder(), in.states, in.ids, draw);
    else lanes.step_as(ways[k % ways.size()], model.decoder(), in.states, in.ids, draw);
    for (size_t i = 0; i < shared.size(); ++i) shared[i]->finish_sampled_step(tokens[i]);
  }
  std::vector<mg::Codes> codes;
  for (auto& s : st) codes.push_back(s->codes());
  return codes;
}

}  // namespace

TEST(StepLanesThreads, EveryWayGivesEachRequestItsCodesAlone) {
  auto be = mg::make_cpu_backend(2);
  auto model = mg::MusicGen::load(*be, mgtest::data_dir() + "/models/musicgen_tiny");
  constexpr int kRequests = 6;
  mg::StepLanes none(*be, 2, 0);
  std::vector<mg::Codes> alone;
  std::vector<int> all;
  for (int i = 0; i < kRequests; ++i) {
    alone.push_back(run(*model, *be, none, {i}, {mg::StepMode::shared})[0]);
    all.push_back(i);
  }
  mg::StepLanes lanes(*be, 2, 2);
  const std::vector<std::vector<mg::StepMode>> plans = {
      {mg::StepMode::lanes_paced},
      {mg::StepMode::lanes_free},
      {mg::StepMode::shared, mg::StepMode::lanes_paced, mg::StepMode::lanes_free},
      {}};  // as timed
  for (size_t p = 0; p < plans.size(); ++p) {
    const std::vector<mg::Codes> together = run(*model, *be, lanes, all, plans[p]);
    for (int i = 0; i < kRequests; ++i) EXPECT_EQ(together[size_t(i)], alone[size_t(i)]) << "plan " << p << ", request " << i;
  }
}
