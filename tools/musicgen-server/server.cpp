#include "server.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "client_socket.h"
#include "web_page.h"  // generated from web/index.html at build time (CMakeLists.txt)

namespace mgserver {

using nlohmann::json;

namespace {

constexpr const char* kGenerations = "/v1/music/generations";
constexpr int kPollMs = 50;  // how often a waiting handler checks its client and job

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void send_error(httplib::Response& res, int status, const std::string& type, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", {{"message", message}, {"type", type}}}}.dump(), "application/json");
}

void send_error(httplib::Response& res, const HttpError& e) { send_error(res, e.status, e.type, e.what()); }

const char* unavailable_reason(const AppState& app) {
  switch (app.phase.load()) {
    case Phase::loading: return "the model is still loading; retry when GET /health returns 200";
    case Phase::failed: return "the model failed to load (see the server log)";
    case Phase::stopping: return "the server is shutting down";
    default: return nullptr;
  }
}

// A label for http_requests_total that stays bounded whatever paths clients ask for.
std::string route_label(const std::string& path) {
  for (const char* r : {"/", "/health", "/metrics", "/v1/models", kGenerations, "/v1/audio/compress",
                        "/v1/audio/decompress"})
    if (path == r) return r;
  return "other";
}

// The body of a POST that carries one file: raw, or the multipart field `file`.
std::string file_body(const httplib::Request& req) {
  if (req.is_multipart_form_data()) {
    if (!req.has_file("file")) throw bad_request("multipart upload without a \"file\" field");
    return req.get_file_value("file").content;
  }
  return req.body;
}

json model_card(const AppState& app) {
  const mg::MusicGen& m = *app.model;
  return {{"id", app.model_id},
          {"object", "model"},
          {"owned_by", "libmusicgen"},
          {"sample_rate", m.sample_rate()},
          {"channels", m.channels()},
          {"frame_rate", m.config().frame_rate()},
          {"melody", m.config().melody},
          {"device", m.backend().device() == mg::Device::CPU ? "cpu" : "cuda"},
          {"max_duration", app.cfg.max_duration},
          {"codec", app.codec != nullptr}};
}

// The request body -> GenerationRequest (JSON or multipart, `model` checked against ours).
GenerationRequest read_generation(const httplib::Request& req, const AppState& app) {
  json body;
  std::string melody_bytes;
  bool has_melody = false;
  if (req.is_multipart_form_data()) {
    std::map<std::string, std::string> fields;
    for (const auto& kv : req.files) {
      if (kv.first == "melody") {
        melody_bytes = kv.second.content;
        has_melody = true;
      } else if (!kv.second.filename.empty()) {
        throw bad_request("unexpected file field \"" + kv.first + "\" (only \"melody\" takes a file)");
      } else {
        fields[kv.first] = kv.second.content;
      }
    }
    body = form_fields_to_json(fields);
  } else {
    const std::string ct = req.get_header_value("Content-Type");
    if (!ct.empty() && ct.find("application/json") == std::string::npos)
      throw HttpError(415, "unsupported_media_type_error",
                      "Content-Type must be application/json or multipart/form-data, got \"" + ct + "\"");
    body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) throw bad_request("the body is not valid JSON (NaN and Infinity are not JSON numbers)");
  }
  if (body.is_object() && body.contains("model")) {
    if (!body["model"].is_string()) throw bad_request("model must be a string");
    if (body["model"].get<std::string>() != app.model_id)
      throw HttpError(404, "not_found_error", "model '" + body["model"].get<std::string>() +
                                                  "' is not loaded; GET /v1/models lists the served one");
    body.erase("model");
  }
  RequestLimits limits;
  limits.max_duration = app.cfg.max_duration;
  limits.melody_model = app.model->config().melody;
  GenerationRequest r = parse_generation(body, limits);
  if (has_melody) {
    if (!limits.melody_model)
      throw bad_request("a melody upload needs a melody model (musicgen-melody*); this server runs a text-only model");
    attach_melody(r, melody_bytes, app.tmp);
  }
  return r;
}

// Waits until `ready(job)` holds (checked under job->mu), polling the client: a client gone
// cancels the job. Returns false when the client went away.
template <class Ready>
bool wait_for(Job& job, int fd, Ready ready) {
  std::unique_lock<std::mutex> lock(job.mu);
  while (!ready()) {
    job.cv.wait_for(lock, std::chrono::milliseconds(kPollMs));
    if (ready()) break;
    lock.unlock();
    const bool connected = client_connected(fd);
    lock.lock();
    if (!connected) {
      job.cancelled = true;
      while (job.state != Job::State::done) job.cv.wait(lock);
      return false;
    }
  }
  return true;
}

void record_outcome(AppState& app, Job& job, const std::string& label) {
  app.metrics.request_finished(label);
  app.metrics.request_latency(seconds_since(job.arrival));
}

void respond_whole(AppState& app, const std::shared_ptr<Job>& job, httplib::Response& res) {
  if (job->error_status) {
    send_error(res, job->error_status, job->error_type, job->error_message);
    record_outcome(app, *job, job->outcome);
    return;
  }
  musicgen_audio a{const_cast<float*>(job->audio.data()), job->audio_samples, job->channels, job->sample_rate};
  std::string bytes, error;
  if (!encode_audio(a, job->req.format, app.tmp, &bytes, &error)) {
    send_error(res, 500, "server_error", error);
    record_outcome(app, *job, "error");
    return;
  }
  const double seconds = double(job->audio_samples) / job->sample_rate;
  res.set_header("X-Seed", std::to_string(job->req.seed));
  res.set_header("X-Audio-Duration", std::to_string(seconds));
  res.set_header("X-Sample-Rate", std::to_string(job->sample_rate));
  res.set_header("X-Channels", std::to_string(job->channels));
  res.set_content(std::move(bytes), content_type_for(job->req.format));
  app.metrics.time_to_first_audio(seconds_since(job->arrival));
  app.metrics.audio_generated(seconds);
  record_outcome(app, *job, "ok");
}

void respond_stream(AppState& app, const std::shared_ptr<Job>& job, int fd, httplib::Response& res) {
  const int rate = app.model->sample_rate(), channels = app.model->channels();
  res.set_header("X-Seed", std::to_string(job->req.seed));
  res.set_header("X-Sample-Rate", std::to_string(rate));
  res.set_header("X-Channels", std::to_string(channels));
  const bool wav = job->req.format == "wav";
  const std::string type = wav ? "audio/wav"
                               : "audio/L16; rate=" + std::to_string(rate) + "; channels=" + std::to_string(channels);
  auto sent_header = std::make_shared<bool>(!wav);
  auto bytes_sent = std::make_shared<size_t>(0);
  res.set_chunked_content_provider(
      type,
      [job, sent_header, bytes_sent, rate, channels, fd](size_t, httplib::DataSink& sink) {
        if (!*sent_header) {
          const std::string h = wav_stream_header(rate, channels);
          *sent_header = true;
          if (!sink.write(h.data(), h.size())) return job->cancelled = true, false;
        }
        std::string chunk;
        bool done = false, failed = false;
        {
          std::unique_lock<std::mutex> lock(job->mu);
          job->cv.wait_for(lock, std::chrono::milliseconds(kPollMs),
                           [&] { return !job->stream_bytes.empty() || job->state == Job::State::done; });
          chunk.swap(job->stream_bytes);
          done = job->state == Job::State::done;
          failed = job->error_status != 0;
        }
        if (!chunk.empty()) {
          if (!sink.write(chunk.data(), chunk.size())) return job->cancelled = true, false;
          *bytes_sent += chunk.size();
        } else if (!done && !client_connected(fd)) {
          return job->cancelled = true, false;
        }
        if (done && chunk.empty()) {
          if (failed) return false;  // cut: the status was sent already
          sink.done();
        }
        return true;
      },
      [&app, job, bytes_sent, rate, channels](bool success) {
        if (!success) job->cancelled = true;
        std::unique_lock<std::mutex> lock(job->mu);
        while (job->state != Job::State::done) job->cv.wait(lock);
        const std::string label = job->error_status ? job->outcome : success ? "ok" : "cancelled";
        lock.unlock();
        if (label == "ok") app.metrics.audio_generated(double(*bytes_sent) / (2.0 * channels * rate));
        record_outcome(app, *job, label);
      });
}

void handle_generation(AppState& app, const httplib::Request& req, httplib::Response& res) {
  if (const char* why = unavailable_reason(app)) return send_error(res, 503, "unavailable_error", why);
  std::shared_ptr<Job> job;
  try {
    GenerationRequest r = read_generation(req, app);
    const auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(app.cfg.timeout_s * 1000));
    job = app.engine->submit(std::move(r), deadline);
  } catch (const HttpError& e) {
    if (e.status == 429) res.set_header("Retry-After", std::to_string(app.engine->retry_after_seconds()));
    send_error(res, e);
    if (e.status == 429 || e.status == 503) app.metrics.request_finished("rejected");
    return;
  }
  res.set_header("X-Request-Id", std::to_string(job->id));
  const int fd = find_client_socket(req.remote_addr, req.remote_port, req.local_port);
  if (!job->req.stream) {
    if (!wait_for(*job, fd, [&] { return job->state == Job::State::done; }))
      return record_outcome(app, *job, "cancelled");
    return respond_whole(app, job, res);
  }
  if (!wait_for(*job, fd, [&] { return job->any_audio || job->state == Job::State::done; }))
    return record_outcome(app, *job, "cancelled");
  if (job->state == Job::State::done && job->error_status) return respond_whole(app, job, res);  // the error as JSON
  respond_stream(app, job, fd, res);
}

void handle_compress(AppState& app, const httplib::Request& req, httplib::Response& res) {
  if (const char* why = unavailable_reason(app)) return send_error(res, 503, "unavailable_error", why);
  if (!app.codec) return send_error(res, 501, "not_implemented_error", "no codec loaded: start the server with --codec DIR");
  double kbps = 0;
  if (req.has_param("bandwidth")) {
    const std::string s = req.get_param_value("bandwidth");
    char* end = nullptr;
    kbps = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end || !std::isfinite(kbps) || kbps <= 0)
      return send_error(res, 400, "invalid_request_error", "bandwidth must be a positive number of kbps, got \"" + s + "\"");
  }
  const std::string path = app.tmp.unique_name(".upload");
  if (!write_file_bytes(path, file_body(req)))
    return send_error(res, 500, "server_error", "cannot store the upload under " + app.tmp.path());
  encodec_audio* audio = nullptr;
  const bool read_ok = encodec_audio_read(path.c_str(), &audio) == MUSICGEN_OK;
  std::filesystem::remove(path);
  if (!read_ok) return send_error(res, 400, "invalid_request_error", std::string("not a readable audio file: ") + encodec_last_error());
  uint8_t* data = nullptr;
  size_t size = 0;
  musicgen_status st;
  {
    std::lock_guard<std::mutex> lock(app.codec_mu);
    st = encodec_session_compress(app.codec_session, audio, kbps, &data, &size);
  }
  encodec_audio_free(audio);
  if (st != MUSICGEN_OK)
    return send_error(res, st == MUSICGEN_ERROR_INVALID_ARGUMENT ? 400 : 500,
                      st == MUSICGEN_ERROR_INVALID_ARGUMENT ? "invalid_request_error" : "server_error", encodec_last_error());
  res.set_content(std::string(reinterpret_cast<const char*>(data), size), "application/octet-stream");
  encodec_bytes_free(data);
}

void handle_decompress(AppState& app, const httplib::Request& req, httplib::Response& res) {
  if (const char* why = unavailable_reason(app)) return send_error(res, 503, "unavailable_error", why);
  if (!app.codec) return send_error(res, 501, "not_implemented_error", "no codec loaded: start the server with --codec DIR");
  const std::string format = req.has_param("format") ? req.get_param_value("format") : "wav";
  if (format != "wav" && format != "flac" && format != "ogg" && format != "mp3")
    return send_error(res, 400, "invalid_request_error", "format must be one of wav, flac, ogg, mp3; got \"" + format + "\"");
  const std::string body = file_body(req);
  encodec_audio* audio = nullptr;
  musicgen_status st;
  {
    std::lock_guard<std::mutex> lock(app.codec_mu);
    st = encodec_session_decompress(app.codec_session, reinterpret_cast<const uint8_t*>(body.data()), body.size(), &audio);
  }
  if (st != MUSICGEN_OK)
    return send_error(res, st == MUSICGEN_ERROR_INVALID_ARGUMENT || st == MUSICGEN_ERROR_FORMAT ? 400 : 500,
                      st == MUSICGEN_ERROR_INVALID_ARGUMENT || st == MUSICGEN_ERROR_FORMAT ? "invalid_request_error"
                                                                                        : "server_error",
                      std::string("not a usable .ecdc file: ") + encodec_last_error());
  const std::string path = app.tmp.unique_name("." + format);
  std::string bytes;
  const bool ok = encodec_audio_write(path.c_str(), audio, ENCODEC_SUBTYPE_PCM16) == MUSICGEN_OK && read_file_bytes(path, &bytes);
  encodec_audio_free(audio);
  std::filesystem::remove(path);
  if (!ok) return send_error(res, 500, "server_error", std::string("cannot encode the audio: ") + encodec_last_error());
  res.set_content(std::move(bytes), content_type_for(format));
}

}  // namespace

AppState::~AppState() {
  if (engine) engine->shutdown();
  engine.reset();
  if (codec_session) encodec_session_free(codec_session);
  if (codec) encodec_model_free(codec);
}

void register_routes(httplib::Server& svr, AppState& app) {
  svr.set_payload_max_length(size_t(app.cfg.max_body_mb * 1024 * 1024));
  svr.set_read_timeout(app.cfg.read_timeout_s, 0);
  svr.set_logger([&app](const httplib::Request& req, const httplib::Response& res) {
    app.metrics.http_response(route_label(req.path), res.status);
  });
  svr.set_post_routing_handler([&app](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Server-Id", app.server_id);
  });
  // Bodies for the statuses cpp-httplib sets by itself (404 no route, 413 too large, 400 bad HTTP).
  svr.set_error_handler([&app](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) send_error(res, 404, "not_found_error", "no route " + req.method + " " + req.path + " (API.md lists them)");
    else if (res.status == 413)
      send_error(res, 413, "payload_too_large_error",
                 "the body is larger than --max-body-mb (" + std::to_string(app.cfg.max_body_mb) + " MB)");
    else send_error(res, res.status, res.status >= 500 ? "server_error" : "invalid_request_error", "HTTP error " + std::to_string(res.status));
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const HttpError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, 500, "server_error", e.what());
    } catch (...) {
      send_error(res, 500, "server_error", "unknown error");
    }
  });

  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(reinterpret_cast<const char*>(kWebPage), kWebPageSize), "text/html; charset=utf-8");
  });
  svr.Get("/health", [&app](const httplib::Request&, httplib::Response& res) {
    const Phase p = app.phase.load();
    const char* status = p == Phase::ready ? "ok" : p == Phase::loading ? "loading" : p == Phase::failed ? "failed" : "shutting_down";
    res.status = p == Phase::ready ? 200 : 503;
    res.set_content(json{{"status", status}}.dump(), "application/json");
  });
  svr.Get("/metrics", [&app](const httplib::Request&, httplib::Response& res) {
    std::string text = app.metrics.render();
    text += "# HELP musicgen:sessions_active Requests holding decoder state (KV caches) now.\n"
            "# TYPE musicgen:sessions_active gauge\nmusicgen:sessions_active " +
            std::to_string(app.engine ? app.engine->active_sequences() : 0) + "\n";
    res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/v1/models", [&app](const httplib::Request&, httplib::Response& res) {
    if (const char* why = unavailable_reason(app)) return send_error(res, 503, "unavailable_error", why);
    res.set_content(json{{"object", "list"}, {"data", json::array({model_card(app)})}}.dump(), "application/json");
  });
  svr.Post(kGenerations, [&app](const httplib::Request& req, httplib::Response& res) { handle_generation(app, req, res); });
  svr.Post("/v1/audio/compress", [&app](const httplib::Request& req, httplib::Response& res) { handle_compress(app, req, res); });
  svr.Post("/v1/audio/decompress", [&app](const httplib::Request& req, httplib::Response& res) { handle_decompress(app, req, res); });

  auto not_allowed = [](const char* allowed) {
    return [allowed](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", allowed);
      send_error(res, 405, "method_not_allowed_error", req.method + " " + req.path + " is not allowed; use " + allowed);
    };
  };
  for (const char* path : {kGenerations, "/v1/audio/compress", "/v1/audio/decompress"}) {
    svr.Get(path, not_allowed("POST"));
    svr.Put(path, not_allowed("POST"));
    svr.Delete(path, not_allowed("POST"));
  }
  for (const char* path : {"/", "/health", "/metrics", "/v1/models"}) {
    svr.Post(path, not_allowed("GET"));
    svr.Put(path, not_allowed("GET"));
    svr.Delete(path, not_allowed("GET"));
  }
}

}  // namespace mgserver
