// bench-sessions: loads a MusicGen model once and runs N sessions generating at the same time, each
// on its own thread. Prints the resident memory after the load and at the peak, so that N sessions
// can be compared with one (run it twice: --sessions 1 and --sessions 4):
//   bench-sessions --model /tmp/mg-small --sessions 4 --duration 2 --threads 1
// RESULT line: sessions, seconds of audio each, wall seconds, RSS after load and peak RSS (MiB).
#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "musicgen.h"

namespace {

// VmRSS of this process now, in MiB (Linux /proc).
double rss_now_mib() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0.0;
}

// The peak resident memory of this process so far, in MiB (ru_maxrss is in KiB on Linux).
double rss_peak_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

int fail(const char* what) {
  std::fprintf(stderr, "bench-sessions: %s: %s\n", what, musicgen_last_error());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"N MusicGen sessions over one model, generating at the same time"};
  std::string model;
  int sessions = 4, threads = 1;
  float duration = 2.0f;
  app.add_option("-m,--model", model, "MusicGen snapshot folder")->required();
  app.add_option("-n,--sessions", sessions, "Sessions (each on its own thread)")->capture_default_str();
  app.add_option("-d,--duration", duration, "Seconds of audio each session generates")->capture_default_str();
  app.add_option("-t,--threads", threads, "CPU threads of each session")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (sessions < 1 || duration <= 0) return std::fprintf(stderr, "bench-sessions: need sessions >= 1, duration > 0\n"), 2;

  musicgen_model_params mp = musicgen_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  mp.n_threads = threads;
  musicgen_model* m = nullptr;
  if (musicgen_model_load(model.c_str(), &mp, &m) != MUSICGEN_OK) return fail("load");
  const double rss_loaded = rss_now_mib();

  std::vector<musicgen_session*> ss(size_t(sessions), nullptr);
  musicgen_session_params sp = musicgen_session_default_params();
  sp.n_threads = threads;
  for (auto& s : ss)
    if (musicgen_session_create(m, &sp, &s) != MUSICGEN_OK) return fail("session");
  std::vector<int> ok(size_t(sessions), 0);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int i = 0; i < sessions; ++i)
    workers.emplace_back([&, i] {
      musicgen_generate_params p = musicgen_generate_default_params();
      p.prompt = "lo-fi hip hop with a mellow piano";
      p.duration_s = duration;
      p.seed = uint64_t(i);
      musicgen_audio a{};
      ok[size_t(i)] = musicgen_session_generate(ss[size_t(i)], &p, &a) == MUSICGEN_OK;
      if (!ok[size_t(i)]) std::fprintf(stderr, "session %d: %s\n", i, musicgen_last_error());
      musicgen_audio_free(&a);
    });
  for (auto& w : workers) w.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto* s : ss) musicgen_session_free(s);
  musicgen_model_free(m);
  for (int v : ok)
    if (!v) return 1;
  std::printf("RESULT sessions %d duration_s %.1f threads_each %d wall_s %.2f rss_after_load_mib %.0f "
              "peak_rss_mib %.0f\n",
              sessions, double(duration), threads, wall, rss_loaded, rss_peak_mib());
  return 0;
}
