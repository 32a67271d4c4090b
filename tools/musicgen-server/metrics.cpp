#include "metrics.h"

#include "lm/step_lanes.h"

#include <cmath>
#include <cstdio>

namespace mgserver {

namespace {

const std::vector<double> kSecondsBuckets = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
constexpr double kRateWindowS = 10.0;

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const char* help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string& out, const std::string& name, double v, const std::string& labels = "") {
  out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number(v) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const double le = i < bounds_.size() ? bounds_[i] : INFINITY;
    sample(out, name + "_bucket", double(cumulative), "le=\"" + number(le) + "\"");
  }
  sample(out, name + "_sum", sum_);
  sample(out, name + "_count", double(count_));
}

double Histogram::quantile(double q) const {
  if (count_ == 0) return 0;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    if (double(cumulative) >= q * double(count_)) return bounds_[i];
  }
  return INFINITY;
}

Metrics::Metrics(int max_batch, int max_queue)
    : max_batch_(max_batch), max_queue_(max_queue), ttfa_(kSecondsBuckets), latency_(kSecondsBuckets),
      wait_(kSecondsBuckets) {
  for (const char* s : {"ok", "error", "rejected", "cancelled", "timeout"}) requests_[s] = 0;
  // Every way from the start (a series that appears late misses alerts): the step lanes' ways by
  // their own names, and a solo step (engine.cpp).
  for (int m = 0; m < mg::kStepModes; ++m) steps_by_way_[mg::step_mode_name(mg::StepMode(m))] = 0;
  steps_by_way_["solo"] = 0;
}

void Metrics::set_model_load_seconds(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  model_load_s_ = s;
}

void Metrics::request_finished(const std::string& status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[status];
}

void Metrics::http_response(const std::string& route, int code) {
  std::lock_guard<std::mutex> lock(mu_);
  ++http_[{route, code}];
}

void Metrics::set_queue(int running, int waiting) {
  std::lock_guard<std::mutex> lock(mu_);
  running_ = running;
  waiting_ = waiting;
}

void Metrics::decode_step(int batch, double seconds, const std::string& way) {
  std::lock_guard<std::mutex> lock(mu_);
  ++steps_;
  ++steps_by_way_[way];
  step_seconds_ += seconds;
  request_steps_ += uint64_t(batch);
  batch_ = batch;
  window_.push_back({Clock::now(), batch, 0.0});
  trim_window(window_.back().t);
}

void Metrics::time_to_first_audio(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttfa_.observe(s);
}

void Metrics::request_latency(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  latency_.observe(s);
}

void Metrics::queue_wait(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  wait_.observe(s);
}

void Metrics::audio_generated(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  audio_s_ += seconds;
  window_.push_back({Clock::now(), 0, seconds});
  trim_window(window_.back().t);
}

double Metrics::mean_latency() const {
  std::lock_guard<std::mutex> lock(mu_);
  return latency_.count() ? latency_.sum() / double(latency_.count()) : 0.0;
}

void Metrics::trim_window(Clock::time_point now) const {
  while (!window_.empty() && std::chrono::duration<double>(now - window_.front().t).count() > kRateWindowS)
    window_.pop_front();
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  trim_window(Clock::now());
  int steps = 0;
  double audio = 0;
  for (const Event& e : window_) {
    steps += e.steps;
    audio += e.audio_s;
  }
  std::string o;
  header(o, "musicgen:requests_total", "counter", "Generation requests finished, by outcome.");
  for (const auto& kv : requests_) sample(o, "musicgen:requests_total", double(kv.second), "status=\"" + kv.first + "\"");
  header(o, "musicgen:requests_running", "gauge", "Requests in the decode batch.");
  sample(o, "musicgen:requests_running", running_);
  header(o, "musicgen:requests_waiting", "gauge", "Requests queued for a batch slot.");
  sample(o, "musicgen:requests_waiting", waiting_);
  header(o, "musicgen:batch_size", "gauge", "Requests that shared the last decode step.");
  sample(o, "musicgen:batch_size", batch_);
  header(o, "musicgen:decode_steps_total", "counter", "Decoder steps run (one step advances every request in it).");
  sample(o, "musicgen:decode_steps_total", double(steps_));
  header(o, "musicgen:decode_steps_by_way_total", "counter",
         "Decoder steps by how they ran: shared (one call on the whole pool), lanes_paced or lanes_free "
         "(--step-lanes), solo (a later window's first step, one request).");
  for (const auto& kv : steps_by_way_)
    sample(o, "musicgen:decode_steps_by_way_total", double(kv.second), "way=\"" + kv.first + "\"");
  header(o, "musicgen:request_decode_steps_total", "counter", "Decoder steps summed over requests.");
  sample(o, "musicgen:request_decode_steps_total", double(request_steps_));
  header(o, "musicgen:decode_step_seconds_total", "counter",
         "Seconds the decode loop spent in decoder steps and their draws (not the text encoder, not EnCodec).");
  sample(o, "musicgen:decode_step_seconds_total", step_seconds_);
  header(o, "musicgen:decode_steps_per_second", "gauge", "Request decode steps per second over the last 10 s.");
  sample(o, "musicgen:decode_steps_per_second", steps / kRateWindowS);
  header(o, "musicgen:real_time_factor", "gauge", "Seconds of audio returned per wall second over the last 10 s.");
  sample(o, "musicgen:real_time_factor", audio / kRateWindowS);
  header(o, "musicgen:generated_audio_seconds_total", "counter", "Seconds of audio returned.");
  sample(o, "musicgen:generated_audio_seconds_total", audio_s_);
  header(o, "musicgen:time_to_first_audio_seconds", "histogram", "Request arrival to its first audio byte.");
  ttfa_.render(o, "musicgen:time_to_first_audio_seconds");
  header(o, "musicgen:request_latency_seconds", "histogram", "Request arrival to its last byte.");
  latency_.render(o, "musicgen:request_latency_seconds");
  header(o, "musicgen:queue_wait_seconds", "histogram", "Request arrival to joining the decode batch.");
  wait_.render(o, "musicgen:queue_wait_seconds");
  header(o, "musicgen:model_load_seconds", "gauge", "Time to load the model (and codec).");
  sample(o, "musicgen:model_load_seconds", model_load_s_);
  header(o, "musicgen:max_batch", "gauge", "Configured --max-batch.");
  sample(o, "musicgen:max_batch", max_batch_);
  header(o, "musicgen:max_queue", "gauge", "Configured --max-queue.");
  sample(o, "musicgen:max_queue", max_queue_);
  header(o, "musicgen:http_requests_total", "counter", "HTTP responses by route and status code.");
  for (const auto& kv : http_)
    sample(o, "musicgen:http_requests_total", double(kv.second),
           "route=\"" + kv.first.first + "\",code=\"" + std::to_string(kv.first.second) + "\"");
  return o;
}

}  // namespace mgserver
