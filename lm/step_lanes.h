// The shared decode step of many requests (lm/batched_step.h) run in one of three ways on the CPU,
// the fastest chosen by timing them:
//
// - shared: one decoder_step_states call for every request on the whole thread pool. Each op's
//   work is split over the threads (a GEMV by output columns), so every op reads what the other
//   threads wrote in the op before.
// - lanes, free: the requests cut into lanes (contiguous groups of about equal rows), each lane a
//   decoder_step_states call of its own on its own backend (threads / lanes threads), all lanes at
//   once. A lane's ops read only what its own threads wrote; every lane reads every weight.
// - lanes, paced: the same, each lane waiting at every layer until the other lanes have reached
//   it, so that the lanes read each weight within a layer of one another: from a cache they share,
//   when they share one, the weights come from memory once.
//
// Why three: what is fastest depends on where the host places the threads, which a process cannot
// see and which changes within minutes on a VM (docs/PERFORMANCE.md, "Step lanes"). On the 2-vCPU
// test VM, eight requests with q8 weights, ms a step: vCPUs close together (one L3), paced and
// free lanes mostly ~22, shared 23-25; vCPUs far apart (a cache line moves between them in ~165 ns
// instead of ~50), free lanes 23-26, paced 28-29, shared 31. With f32 weights, or few requests, the
// step is bound by reading the weights, which each lane reads again: shared wins. So StepLanes times
// each way for kProbeSteps steps and runs the fastest in between (StepWayChooser says when it
// probes and how it keeps the probe fair).
//
// Every way gives the same bits: each op computes a row from that row alone, whatever the thread
// count (tests/unit/step_lanes_test.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "lm/batched_step.h"

namespace mg {

// In the order a probe times them (StepWayChooser).
enum class StepMode { shared, lanes_paced, lanes_free };
constexpr int kStepModes = 3;
// "shared", "lanes_paced", "lanes_free": names for benchmarks and metric labels.
const char* step_mode_name(StepMode m);

// When StepLanes probes and which way it keeps: bookkeeping only (the caller times the steps), so
// that tests can feed it times. A probe is one untimed step in the kept way, then the ways in turn,
// one step each, kProbeSteps times; then the elected way runs for the count's run length.
// A probe's lane steps are what it costs: with f32 weights a lane step takes ~1.4x a shared one, so
// probing 9 steps in every 105 was ~2% of a busy server's decode, and a server whose requests come
// and go changes its number of requests every few dozen steps. So the election is kept per number
// of requests: a number seen before goes on in its elected way and probes once its run is over
// (its steps counted over every visit, so that short visits do not each pay a probe), and a probe
// that elects the same way again doubles the run (up to kMaxRunSteps), while one that elects
// another way sets it back to kRunSteps. A host that moves the vCPUs is still followed, within
// kMaxRunSteps steps of each number of requests.
class StepWayChooser {
 public:
  static constexpr int kProbeSteps = 3;   // steps timed in each way per probe
  static constexpr int kRunSteps = 96;    // steps run the elected way after a first probe
  static constexpr int kMaxRunSteps = 8 * kRunSteps;
  // A lane way replaces shared only when its probe steps took at most this fraction of shared's:
  // with f32 weights a wrong switch to lanes costs ~7% a step, a missed one with q8 ~5%.
  static constexpr double kLaneMargin = 0.98;

  // The way of the next step of `requests` requests; shared when lanes are not possible.
  StepMode next(int64_t requests, bool lanes_possible);
  // The seconds the step next() chose took: counted when it was one of a probe's timed steps.
  void record(StepMode mode, double seconds);
  // The way a probe's total seconds by StepMode elect: the faster lane way when it took at most
  // kLaneMargin of shared's time, else shared.
  static StepMode pick(const std::array<double, kStepModes>& seconds);
  // Steps the elected way runs between two probes of `requests` requests (0: never probed).
  int run_steps(int64_t requests) const;

 private:
  struct Election {
    StepMode way = StepMode::shared;
    int run_steps = kRunSteps;  // between two probes
    int run_left = 0;           // before the next probe: counted over every visit to this count
  };
  std::map<int64_t, Election> elected_;  // by number of requests
  int64_t requests_ = -1;                // of the steps now (-1: no lanes possible)
  bool probing_ = false;                 // the step next() chose is one of a probe's timed steps
  bool warm_ = false;                    // the probe's untimed first step has run
  int probe_step_ = 0;
  std::array<double, kStepModes> probe_seconds_{};  // by StepMode
  StepMode best_ = StepMode::shared;                // the way elected last
};

class StepLanes {
 public:
  // shared: the backend of the whole pool (a CPU backend of `threads` threads), on which the
  // states live. lanes: how many lanes (at least 2 to have lanes at all; threads / lanes threads
  // each, at least one). A lane needs at least kMinRequestsPerLane requests: below that, shared.
  static constexpr int kMinRequestsPerLane = 2;
  StepLanes(Backend& shared, int threads, int lanes);
  ~StepLanes();
  StepLanes(const StepLanes&) = delete;
  StepLanes& operator=(const StepLanes&) = delete;

  int lanes() const { return int(lane_be_.size()); }

  // What follows the decoder step for each state (the draw): called with the state's index, its
  // rows of the logits [rows, K, vocab] and the backend they are on, on the thread of its lane
  // (with that lane's backend), or on the caller's with the shared backend when the step was
  // shared. So each lane draws its own requests' tokens from logits in its own core's caches.
  using OnLogits = std::function<void(size_t state, const Tensor& logits, Backend& be)>;

  // decoder_step_states for `states` with host ids [K, total rows], the way chosen by timing, then
  // on_logits for every state (the time of which is part of what is timed).
  void step(const MusicgenDecoder& dec, const std::vector<DecoderState*>& states, const Tensor& ids,
            const OnLogits& on_logits);
  // The same in a given way (tests, benchmarks). Lanes with fewer states than lanes(): shared.
  void step_as(StepMode mode, const MusicgenDecoder& dec, const std::vector<DecoderState*>& states,
               const Tensor& ids, const OnLogits& on_logits);
  StepMode last_mode() const { return last_; }
  // Steps run in each way so far (probes included): what a benchmark reports beside its times.
  int64_t steps_in(StepMode mode) const { return steps_in_[size_t(mode)]; }

 private:
  void step_lanes(bool paced, const MusicgenDecoder& dec, const std::vector<DecoderState*>& states,
                  const Tensor& ids, const OnLogits& on_logits);

  class Worker;
  Backend& shared_;
  std::vector<std::unique_ptr<Backend>> lane_be_;
  std::vector<std::unique_ptr<Worker>> workers_;  // lanes 1.. (lane 0 runs on the caller's thread)
  StepMode last_ = StepMode::shared;
  std::array<int64_t, kStepModes> steps_in_{};  // by StepMode
  StepWayChooser chooser_;
};

}  // namespace mg
