// Continuous batching (API.md, "Limits"): one scheduler thread runs the decode loop. Every active
// request holds a MusicGen::SequenceStepper (its own KV cache, position, seed); each iteration runs
// ONE decoder step for all of them together (lm/batched_step.h: every weight read serves every
// request; on the CPU possibly cut into lanes of requests, lm/step_lanes.h), then hands each its
// logits to sample. Waiting requests join at the next step
// boundary; finished, cancelled or timed-out ones leave. Finished codes go to a second thread
// that decodes them to audio (EnCodec) so that the decode loop never waits for it.
#pragma once

#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "job.h"
#include "lm/generate.h"
#include "lm/step_lanes.h"
#include "metrics.h"

namespace mgserver {

struct EngineOptions {
  int max_batch = 8;
  int max_queue = 64;
  int text_cache_entries = 64;
  // CPU: the decode loop's threads, and how many lanes the shared step may be cut into
  // (lm/step_lanes.h: the requests in groups stepped side by side, each on threads / lanes
  // threads, when timing shows that faster). Fewer than 2 lanes: always one step over all threads.
  int threads = 1;
  int step_lanes = 0;
};

// Projected prompt texts, least recently used dropped first (the T5 encoder costs a step or two).
class TextCache {
 public:
  explicit TextCache(size_t capacity) : capacity_(capacity) {}
  mg::Tensor get(const mg::MusicGen& model, mg::Backend& be, const std::string& prompt);
  // The texts of several prompts (requests joining at one step boundary): those not cached go
  // through the encoder together, in one pass (each the same bits as alone).
  std::vector<mg::Tensor> get_all(const mg::MusicGen& model, mg::Backend& be, const std::vector<std::string>& prompts);

 private:
  void put(const std::string& prompt, const mg::Tensor& text);
  size_t capacity_;
  std::list<std::pair<std::string, mg::Tensor>> entries_;  // most recent first
  std::map<std::string, std::list<std::pair<std::string, mg::Tensor>>::iterator> index_;
};

class Engine {
 public:
  // `be` is the scheduler's backend (the decode loop); `decode_be` the finisher's (EnCodec).
  Engine(const mg::MusicGen& model, mg::Backend& be, mg::Backend& decode_be, const EngineOptions& opt,
         Metrics& metrics);
  ~Engine();

  // Queues a request. Throws HttpError 429 (queue full) or 503 (shutting down).
  std::shared_ptr<Job> submit(GenerationRequest r, Clock::time_point deadline);
  // Stops taking requests, fails the waiting ones (503), lets the running ones finish, joins.
  void shutdown();
  int retry_after_seconds() const;  // a guess for the 429's Retry-After
  int active_sequences() const;

 private:
  struct Active;
  void schedule_loop();
  void finish_loop();
  mg::Tensor take_kv_block(double duration_s);
  void keep_kv_block(mg::Tensor block);
  void take_waiting(std::vector<std::shared_ptr<Job>>& joining);
  void drop_gone(std::vector<std::shared_ptr<Job>>& joining);
  void admit(std::vector<std::shared_ptr<Job>>& joining);
  std::unique_ptr<Active> start(const std::shared_ptr<Job>& job, const mg::Tensor& text);
  void drop_cancelled();
  void step_all();
  void retire_finished();
  void publish_queue();
  void decode_one(Job& job, const mg::Codes& codes);

  const mg::MusicGen& model_;
  mg::Backend& be_;
  mg::Backend& decode_be_;
  const EngineOptions opt_;
  Metrics& metrics_;
  TextCache texts_;
  mg::StepLanes step_lanes_;  // the scheduler thread's only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> waiting_;
  int running_ = 0;  // active_.size(), readable under mu_
  bool stopping_ = false;
  std::vector<std::unique_ptr<Active>> active_;  // the scheduler thread's only
  // Finished requests' KV cache blocks for the next requests (pages already mapped: no page
  // faults in their steps' write_kv); the scheduler thread's only, emptied when idle.
  std::vector<mg::Tensor> kv_blocks_;

  std::mutex finish_mu_;
  std::condition_variable finish_cv_;
  std::deque<std::pair<std::shared_ptr<Job>, mg::Codes>> to_decode_;
  bool finish_stop_ = false;
  uint64_t next_id_ = 1;

  // A GPU backend is shared by the loop and the finisher (one device context): they take turns.
  std::mutex device_mu_;
  const bool shared_backend_;

  std::thread scheduler_, finisher_;
};

}  // namespace mgserver
