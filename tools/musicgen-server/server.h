// The HTTP side of musicgen-server (API.md): routes, JSON errors, request limits, and the state
// they share (model, engine, codec, metrics). main.cpp parses the options and runs it.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include <httplib.h>

#include "audio_bytes.h"
#include "engine.h"
#include "metrics.h"

namespace mgserver {

struct ServerConfig {
  std::string model_dir, codec_dir;
  std::string host = "127.0.0.1";
  int port = 8080;
  int max_batch = 8, max_queue = 64;
  double max_duration = 120;
  int threads = 0;
  int step_lanes = 2;  // engine.h: 0 or 1 = every step shared by the whole pool
  std::string device = "cpu", weights = "f32";
  double timeout_s = 600;
  double max_body_mb = 16;
  int read_timeout_s = 30;
};

enum class Phase { loading, ready, failed, stopping };

struct AppState {
  explicit AppState(const ServerConfig& c) : cfg(c), metrics(c.max_batch, c.max_queue) {}
  ServerConfig cfg;
  Metrics metrics;
  TempDir tmp;
  std::atomic<Phase> phase{Phase::loading};
  std::string load_error;  // set before phase turns failed
  std::string model_id, server_id;
  std::unique_ptr<mg::Backend> be, decode_be;
  std::unique_ptr<mg::MusicGen> model;
  std::unique_ptr<Engine> engine;
  encodec_model* codec = nullptr;  // --codec
  encodec_session* codec_session = nullptr;
  std::mutex codec_mu;             // one codec request at a time
  ~AppState();
};

// Loads the model (and codec) and starts the engine; phase becomes ready or failed.
void load_models(AppState& app);
// Every route of API.md on `svr`.
void register_routes(httplib::Server& svr, AppState& app);

}  // namespace mgserver
