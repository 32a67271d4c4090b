#include "lm/step_lanes.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

#include "kernels/common.h"
#include "kernels/cpu/spin.h"

namespace mg {

namespace {

// How far a lane has got: the layer it is at, or kLaneDone once its step ended (or failed), so
// that no lane waits for it. One cache line each: the lanes poll the others' while they write
// their own.
struct alignas(64) LaneProgress {
  std::atomic<int64_t> layer{0};
};
constexpr int64_t kLaneDone = std::numeric_limits<int64_t>::max();

// Lane `me` is at `layer`: waits until every other lane has reached it too (polling, then giving
// its core away: the other lane may be waiting for a core on a busy machine).
void wait_for_lanes(std::vector<LaneProgress>& progress, size_t me, int64_t layer) {
  progress[me].layer.store(layer, std::memory_order_release);
  for (size_t o = 0; o < progress.size(); ++o) {
    if (o == me) continue;
    cpu::poll_then_yield([&] { return progress[o].layer.load(std::memory_order_acquire) >= layer; });
  }
}

// The states cut into `lanes` contiguous groups of about equal rows: the first state of each group.
std::vector<size_t> lane_starts(const std::vector<DecoderState*>& states, size_t lanes) {
  int64_t total = 0;
  for (const DecoderState* st : states) total += st->rows;
  std::vector<size_t> starts{0};
  int64_t rows = 0;
  for (size_t i = 0; i < states.size() && starts.size() < lanes; ++i) {
    rows += states[i]->rows;
    // Close the group once it holds its share of the rows, leaving a state for every later group.
    const int64_t share = total * int64_t(starts.size()) / int64_t(lanes);
    if (rows >= share && states.size() - (i + 1) >= lanes - starts.size()) starts.push_back(i + 1);
  }
  return starts;
}

}  // namespace

// The thread of a lane after the first (the first runs on the caller's), kept for the StepLanes'
// life, so that a lane runs on the same thread step after step: the OS keeps it on one core, with
// its requests' KV caches and activations in that core's caches.
class StepLanes::Worker {
 public:
  Worker() : thread_([this] { loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void start(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = std::move(job);
      busy_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !busy_; });
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || job_; });
        if (stop_) return;
        job = std::move(job_);
        job_ = nullptr;
      }
      job();  // catches its own exceptions
      {
        std::lock_guard<std::mutex> lock(mu_);
        busy_ = false;
      }
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool busy_ = false, stop_ = false;
  std::thread thread_;  // last: started once the rest is ready
};

const char* step_mode_name(StepMode m) {
  switch (m) {
    case StepMode::shared: return "shared";
    case StepMode::lanes_free: return "lanes_free";
    case StepMode::lanes_paced: return "lanes_paced";
  }
  return "?";
}

StepLanes::StepLanes(Backend& shared, int threads, int lanes) : shared_(shared) {
  MG_CHECK(shared.device() == Device::CPU || lanes < 2, "step lanes run on the CPU only (got ",
           device_name(shared.device()), ")");
  if (lanes < 2) return;
  for (int l = 0; l < lanes; ++l) lane_be_.push_back(make_cpu_backend(std::max(1, threads / lanes)));
  for (int l = 1; l < lanes; ++l) workers_.push_back(std::make_unique<Worker>());
}

StepLanes::~StepLanes() = default;

namespace {

// on_logits for each of `states` (rows in their order in `logits`). The slices are cut first: an
// on_logits that ends its request's window drops that state's caches (rows becomes 0).
void each_state_logits(const std::vector<DecoderState*>& states, size_t first, const Tensor& logits, Backend& be,
                       const StepLanes::OnLogits& on_logits) {
  std::vector<Tensor> slices;
  int64_t r0 = 0;
  for (const DecoderState* st : states) {
    slices.push_back(logits.slice0(r0, st->rows));
    r0 += st->rows;
  }
  for (size_t i = 0; i < states.size(); ++i) on_logits(first + i, slices[i], be);
}

}  // namespace

void StepLanes::step(const MusicgenDecoder& dec, const std::vector<DecoderState*>& states, const Tensor& ids,
                     const OnLogits& on_logits) {
  // Lanes only when each can have kMinRequestsPerLane requests.
  const bool lanes_possible =
      lane_be_.size() >= 2 && int64_t(states.size()) >= int64_t(lane_be_.size()) * kMinRequestsPerLane;
  const StepMode mode = chooser_.next(int64_t(states.size()), lanes_possible);
  const auto t0 = std::chrono::steady_clock::now();
  step_as(mode, dec, states, ids, on_logits);
  chooser_.record(mode, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

void StepLanes::step_as(StepMode mode, const MusicgenDecoder& dec, const std::vector<DecoderState*>& states,
                        const Tensor& ids, const OnLogits& on_logits) {
  MG_CHECK(ids.device == Device::CPU && ids.dtype == DType::I32, "StepLanes: ids must be i32 on the host");
  const bool lanes_possible = states.size() >= lane_be_.size() && lane_be_.size() >= 2;
  last_ = lanes_possible ? mode : StepMode::shared;
  ++steps_in_[size_t(last_)];
  if (last_ == StepMode::shared) {
    const Tensor logits = decoder_step_states(shared_, dec, states, shared_.upload(ids));
    each_state_logits(states, 0, logits, shared_, on_logits);
    return;
  }
  step_lanes(last_ == StepMode::lanes_paced, dec, states, ids, on_logits);
}

void StepLanes::step_lanes(bool paced, const MusicgenDecoder& dec, const std::vector<DecoderState*>& states,
                           const Tensor& ids, const OnLogits& on_logits) {
  const int K = dec.cfg.num_codebooks;
  const int64_t total = ids.dim(1);
  MG_CHECK(ids.ndim() == 2 && ids.dim(0) == K, "StepLanes: ids ", shape_str(ids.shape), " must be [", K, ", rows]");
  std::vector<size_t> starts = lane_starts(states, lane_be_.size());
  starts.push_back(states.size());
  const size_t lanes = starts.size() - 1;

  // Each lane's states, its first row, and its ids [K, its rows].
  std::vector<std::vector<DecoderState*>> lane_states(lanes);
  std::vector<int64_t> row0(lanes + 1, 0);
  std::vector<Tensor> lane_ids(lanes);
  for (size_t l = 0; l < lanes; ++l) {
    lane_states[l].assign(states.begin() + long(starts[l]), states.begin() + long(starts[l + 1]));
    int64_t rows = 0;
    for (const DecoderState* st : lane_states[l]) rows += st->rows;
    row0[l + 1] = row0[l] + rows;
    lane_ids[l] = Tensor::empty(DType::I32, {K, rows});
    for (int k = 0; k < K; ++k)
      std::memcpy(lane_ids[l].ptr<int32_t>() + k * rows, ids.ptr<int32_t>() + k * total + row0[l],
                  size_t(rows) * sizeof(int32_t));
  }
  MG_CHECK(row0[lanes] == total, "StepLanes: ids have ", total, " rows, the states ", row0[lanes]);

  std::vector<LaneProgress> progress(lanes);
  std::vector<std::exception_ptr> errors(lanes);
  auto run_lane = [&](size_t l) {
    try {
      std::function<void(size_t)> pace;
      if (paced) pace = [&progress, l](size_t layer) { wait_for_lanes(progress, l, int64_t(layer)); };
      const Tensor logits = decoder_step_states(*lane_be_[l], dec, lane_states[l], lane_ids[l], pace);
      progress[l].layer.store(kLaneDone, std::memory_order_release);  // no lane waits for our draws
      each_state_logits(lane_states[l], starts[l], logits, *lane_be_[l], on_logits);
    } catch (...) {
      errors[l] = std::current_exception();
    }
    progress[l].layer.store(kLaneDone, std::memory_order_release);
  };
  for (size_t l = 1; l < lanes; ++l) workers_[l - 1]->start([&run_lane, l] { run_lane(l); });
  run_lane(0);
  for (size_t l = 1; l < lanes; ++l) workers_[l - 1]->wait();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// A probe is kept fair to each way three ways:
// - its first step runs in the kept way and is not timed: after a change of requests it holds the
//   new requests' first step (a cold cache, fresh KV pages), which would weigh on whichever way
//   ran it;
// - the ways then take turns step by step (shared, paced, free, shared, ...), so that each meets
//   the same cache lengths and the same moments of a host whose speed moves;
// - a lane way must beat shared by kLaneMargin: timing two or three steps cannot tell ways apart
//   by less, and shared is the way that costs least when the timing misleads.
StepMode StepWayChooser::next(int64_t requests, bool lanes_possible) {
  probing_ = false;
  if (!lanes_possible) {
    requests_ = -1;  // the count is looked up again once lanes are possible
    return StepMode::shared;
  }
  if (requests != requests_) {  // a probe under way is dropped: its times were of another count
    requests_ = requests;
    probe_step_ = 0;
    warm_ = false;
    probe_seconds_.fill(0.0);
  }
  const auto it = elected_.find(requests);  // a new count probes at once
  if (it != elected_.end()) {
    best_ = it->second.way;
    if (it->second.run_left > 0) {
      --it->second.run_left;
      return best_;
    }
  }
  if (!warm_) {
    warm_ = true;
    return best_;
  }
  probing_ = true;
  return StepMode(probe_step_ % kStepModes);
}

StepMode StepWayChooser::pick(const std::array<double, kStepModes>& seconds) {
  const double shared = seconds[size_t(StepMode::shared)];
  const double paced = seconds[size_t(StepMode::lanes_paced)];
  const double free = seconds[size_t(StepMode::lanes_free)];
  const StepMode lane = paced <= free ? StepMode::lanes_paced : StepMode::lanes_free;
  return std::min(paced, free) <= kLaneMargin * shared ? lane : StepMode::shared;
}

void StepWayChooser::record(StepMode mode, double seconds) {
  if (!probing_) return;
  probe_seconds_[size_t(mode)] += seconds;
  if (++probe_step_ < kStepModes * kProbeSteps) return;
  const StepMode way = pick(probe_seconds_);
  const auto [it, first] = elected_.try_emplace(requests_);
  Election& e = it->second;
  e.run_steps = !first && e.way == way ? std::min(2 * e.run_steps, kMaxRunSteps) : kRunSteps;
  e.way = way;
  e.run_left = e.run_steps;
  best_ = way;
  probe_step_ = 0;
  warm_ = false;
  probe_seconds_.fill(0.0);
}

int StepWayChooser::run_steps(int64_t requests) const {
  const auto it = elected_.find(requests);
  return it == elected_.end() ? 0 : it->second.run_steps;
}

}  // namespace mg
