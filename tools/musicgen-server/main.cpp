// musicgen-server: MusicGen over HTTP (API.md). One model loaded once; requests decode together in
// one continuously batched decode loop (engine.h). SIGTERM/SIGINT: stop taking requests, finish
// the running ones, exit 0.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include <CLI/CLI.hpp>

#include "server.h"

namespace {

const char* kDescription =
    "musicgen-server: text-to-music over HTTP (tools/musicgen-server/API.md).\n"
    "  POST /v1/music/generations  {\"prompt\": \"lofi beat\", \"duration\": 8} -> audio/wav\n"
    "  GET /v1/models, GET /health (503 until loaded), GET /metrics (Prometheus), GET / (web page)\n"
    "  POST /v1/audio/compress, /v1/audio/decompress (.ecdc, with --codec)\n"
    "Requests decode together: up to --max-batch share each decoder step; --max-queue more wait\n"
    "(then 429 with Retry-After). Each running request holds its KV caches (musicgen-small: 0.3 GB\n"
    "for 30 s with quantized or half weights, twice that with f32); while requests keep coming, a\n"
    "finished request's caches go to the next one (up to --max-batch kept), all freed when idle.\n"
    "The address it listens on is printed as 'listening on http://...'.";

mg::DType weight_dtype(const std::string& w) {
  if (w == "q8") return mg::DType::Q8_0;
  if (w == "q4") return mg::DType::Q4_0;
  if (w == "f16") return mg::DType::F16;
  if (w == "bf16") return mg::DType::BF16;
  return mg::DType::F32;
}

std::unique_ptr<mg::Backend> make_backend(const std::string& device, int threads) {
  if (device == "cuda" || (device == "auto" && mg::cuda_available())) return mg::make_cuda_backend(0);
  return mg::make_cpu_backend(threads);
}

}  // namespace

namespace mgserver {

void load_models(AppState& app) {
  const auto t0 = Clock::now();
  try {
    const ServerConfig& c = app.cfg;
    app.be = make_backend(c.device, c.threads);
    // The finisher decodes audio while the loop steps: on a GPU both share the device backend.
    app.decode_be = app.be->device() == mg::Device::CPU ? mg::make_cpu_backend(c.threads) : nullptr;
    app.model = mg::MusicGen::load(*app.be, c.model_dir, weight_dtype(c.weights));
    if (!c.codec_dir.empty()) {
      encodec_model_params mp = encodec_model_default_params();
      mp.device = c.device == "cuda" ? MUSICGEN_DEVICE_CUDA : c.device == "cpu" ? MUSICGEN_DEVICE_CPU : MUSICGEN_DEVICE_AUTO;
      if (encodec_model_load(c.codec_dir.c_str(), &mp, &app.codec) != MUSICGEN_OK)
        throw std::runtime_error(std::string("--codec ") + c.codec_dir + ": " + encodec_last_error());
      if (encodec_session_create(app.codec, nullptr, &app.codec_session) != MUSICGEN_OK)
        throw std::runtime_error(std::string("codec session: ") + encodec_last_error());
    }
    EngineOptions eo;
    eo.max_batch = c.max_batch;
    eo.max_queue = c.max_queue;
    eo.threads = c.threads > 0 ? c.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    eo.step_lanes = c.step_lanes;
    app.engine = std::make_unique<Engine>(*app.model, *app.be, app.decode_be ? *app.decode_be : *app.be, eo, app.metrics);
    app.metrics.set_model_load_seconds(std::chrono::duration<double>(Clock::now() - t0).count());
    Phase expected = Phase::loading;
    app.phase.compare_exchange_strong(expected, Phase::ready);
    std::fprintf(stderr, "musicgen-server: model %s loaded in %.2f s\n", app.model_id.c_str(),
                 std::chrono::duration<double>(Clock::now() - t0).count());
  } catch (const std::exception& e) {
    app.load_error = e.what();
    app.phase = Phase::failed;
    std::fprintf(stderr, "musicgen-server: loading failed: %s\n", e.what());
  }
}

}  // namespace mgserver

int main(int argc, char** argv) {
  mgserver::ServerConfig c;
  CLI::App app{kDescription};
  app.add_option("--model", c.model_dir, "Hugging Face MusicGen snapshot folder (config.json, weights, spiece.model)")
      ->required()->check(CLI::ExistingDirectory);
  app.add_option("--codec", c.codec_dir, "EnCodec snapshot folder: enables /v1/audio/compress and /decompress")
      ->check(CLI::ExistingDirectory);
  app.add_option("--host", c.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", c.port, "Port; 0 picks a free one (printed)")->capture_default_str()->check(CLI::Range(0, 65535));
  app.add_option("--max-batch", c.max_batch, "Requests that share each decoder step")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--max-queue", c.max_queue, "Requests that may wait for a slot; more get 429")->capture_default_str()->check(CLI::Range(0, 100000));
  app.add_option("--max-duration", c.max_duration, "Longest audio a request may ask for, seconds")
      ->capture_default_str()->check(CLI::Range(0.02, double(MUSICGEN_MAX_DURATION_S)));
  app.add_option("--threads", c.threads, "CPU threads of the decode loop (0: all cores)")->capture_default_str()->check(CLI::Range(0, MUSICGEN_MAX_THREADS));
  app.add_option("--step-lanes", c.step_lanes,
                 "CPU: with at least 2 requests per lane, the shared step may run as this many groups of requests "
                 "side by side, each on threads/lanes threads, when timing shows it faster (same output); "
                 "0 or 1: never")
      ->capture_default_str()->check(CLI::Range(0, MUSICGEN_MAX_THREADS));
  app.add_option("--device", c.device, "cpu, cuda or auto")->capture_default_str()->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  app.add_option("--weights", c.weights, "Decoder weight precision: f32 (as stored), f16, bf16, q8 or q4 (docs/QUANTIZATION.md)")
      ->capture_default_str()->check(CLI::IsMember({"f32", "f16", "bf16", "q8", "q4"}));
  app.add_option("--timeout", c.timeout_s, "Seconds a request may take, queueing included (then 504)")->capture_default_str()->check(CLI::Range(0.1, 86400.0));
  app.add_option("--max-body-mb", c.max_body_mb, "Largest request body, MiB (then 413)")->capture_default_str()->check(CLI::Range(0.001, 4096.0));
  app.add_option("--read-timeout", c.read_timeout_s, "Seconds a client may stall while sending its request")->capture_default_str()->check(CLI::Range(1, 3600));
  CLI11_PARSE(app, argc, argv);

  // SIGTERM/SIGINT go to one thread that waits for them (blocked everywhere else, so every thread
  // started below inherits the mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  mgserver::AppState state(c);
  state.model_id = std::filesystem::path(c.model_dir).lexically_normal().filename().string();
  if (state.model_id.empty()) state.model_id = std::filesystem::path(c.model_dir).parent_path().filename().string();
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  state.server_id = std::string(host) + ":" + std::to_string(getpid());

  httplib::Server svr;
  // Handlers block while their request is computed: enough threads for every running and
  // waiting request plus the cheap routes.
  const int pool = c.max_batch + c.max_queue + 8;
  svr.new_task_queue = [pool] { return new httplib::ThreadPool(size_t(pool)); };
  mgserver::register_routes(svr, state);
  const int port = c.port == 0 ? svr.bind_to_any_port(c.host) : (svr.bind_to_port(c.host, c.port) ? c.port : -1);
  if (port < 0) {
    std::fprintf(stderr, "musicgen-server: cannot listen on %s:%d (in use, or not an address of this machine)\n",
                 c.host.c_str(), c.port);
    return 1;
  }
  std::printf("musicgen-server: listening on http://%s:%d\n", c.host.c_str(), port);
  std::fflush(stdout);

  std::thread loader([&] { mgserver::load_models(state); });
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "musicgen-server: %s: finishing running requests, then exiting\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    state.phase = mgserver::Phase::stopping;
    if (loader.joinable()) loader.join();
    if (state.engine) state.engine->shutdown();
    svr.stop();
  });
  svr.listen_after_bind();
  if (loader.joinable()) loader.join();
  waiter.join();
  std::fprintf(stderr, "musicgen-server: stopped\n");
  return 0;
}
