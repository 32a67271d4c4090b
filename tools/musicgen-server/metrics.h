// Prometheus metrics of musicgen-server (API.md, "GET /metrics"): counters, gauges and histograms
// kept under one mutex (a scrape or an event every few milliseconds: contention is not a concern),
// rendered in the text exposition format 0.0.4.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace mgserver {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // The `name_bucket`, `name_sum` and `name_count` lines.
  void render(std::string& out, const std::string& name) const;
  double quantile(double q) const;  // from the buckets (upper bound of the bucket holding q)
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  using Clock = std::chrono::steady_clock;
  Metrics(int max_batch, int max_queue);

  void set_model_load_seconds(double s);
  void request_finished(const std::string& status);  // ok, error, rejected, cancelled, timeout
  void http_response(const std::string& route, int code);
  void set_queue(int running, int waiting);
  // One decoder step of `batch` requests that took `seconds` (the step and the draws), run the `way`
  // (engine.cpp: shared, lanes_paced, lanes_free or solo).
  void decode_step(int batch, double seconds, const std::string& way);
  void time_to_first_audio(double s);
  void request_latency(double s);
  void queue_wait(double s);
  void audio_generated(double seconds);
  double mean_latency() const;  // seconds, 0 before the first request finished

  std::string render() const;

 private:
  void trim_window(Clock::time_point now) const;
  mutable std::mutex mu_;
  const int max_batch_, max_queue_;
  double model_load_s_ = 0;
  std::map<std::string, uint64_t> requests_;
  std::map<std::pair<std::string, int>, uint64_t> http_;
  int running_ = 0, waiting_ = 0, batch_ = 0;
  uint64_t steps_ = 0, request_steps_ = 0;
  std::map<std::string, uint64_t> steps_by_way_;
  double step_seconds_ = 0;
  double audio_s_ = 0;
  Histogram ttfa_, latency_, wait_;
  // (time, request-steps, audio seconds) over the last 10 s: the rate gauges.
  struct Event { Clock::time_point t; int steps; double audio_s; };
  mutable std::deque<Event> window_;
};

}  // namespace mgserver
