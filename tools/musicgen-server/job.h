// One generation request on its way through the server: what the HTTP handler waits on and what
// the engine fills in. Audio for streaming is appended as int16 PCM bytes as it is produced.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "request.h"

namespace mgserver {

using Clock = std::chrono::steady_clock;

struct Job {
  enum class State { waiting, running, done };
  explicit Job(GenerationRequest r, Clock::time_point arrival, Clock::time_point deadline)
      : req(std::move(r)), arrival(arrival), deadline(deadline) {}

  const GenerationRequest req;
  const Clock::time_point arrival, deadline;
  uint64_t id = 0;
  std::atomic<bool> cancelled{false};  // the client went away, or the server is shutting down

  std::mutex mu;
  std::condition_variable cv;  // notified on every change below
  State state = State::waiting;
  std::string stream_bytes;    // int16 PCM not yet sent (streaming requests)
  bool any_audio = false;      // some audio exists (streamed or final)
  // Set when state becomes done: the audio (planar float) or an error.
  std::vector<float> audio;
  int64_t audio_samples = 0;  // per channel
  int channels = 0, sample_rate = 0;
  int error_status = 0;       // 0: success
  std::string error_type, error_message;
  std::string outcome = "ok";  // the requests_total status label

  void finish_ok(std::vector<float> planar, int64_t n, int ch, int rate) {
    std::lock_guard<std::mutex> lock(mu);
    audio = std::move(planar);
    audio_samples = n;
    channels = ch;
    sample_rate = rate;
    any_audio = true;
    state = State::done;
    cv.notify_all();
  }
  void finish_error(int status, const std::string& type, const std::string& message, const std::string& label) {
    std::lock_guard<std::mutex> lock(mu);
    error_status = status;
    error_type = type;
    error_message = message;
    outcome = label;
    state = State::done;
    cv.notify_all();
  }
  // Returns true for the request's first audio.
  bool add_stream_audio(const std::string& pcm16) {
    std::lock_guard<std::mutex> lock(mu);
    stream_bytes += pcm16;
    const bool first = !any_audio;
    any_audio = true;
    cv.notify_all();
    return first;
  }
};

}  // namespace mgserver
