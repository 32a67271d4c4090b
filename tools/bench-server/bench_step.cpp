// bench-server-step: the server's shared decode step without HTTP, T5 or EnCodec: N requests (each
// a MusicGen::SequenceStepper, CFG on, as the server holds them) stepped together with
// decoder_step_states, then sampled. Prints per step the wall time and this process's CPU time
// (CPU time does not grow when other processes share the cores: use it on a loaded machine, with
// --threads 1, where no pool worker spins), and the ratio of N requests' request-steps per second
// to one request's. --join-leave 1 then times what N requests sent together cost besides their
// steps: their prompts through T5 (one by one, and in one pass) and their 2 s of audio through
// EnCodec (one after another on T threads, and side by side on T 1-thread backends).
//
// Rounds: the 1-request and the N-request timings alternate --rounds times (default 3) in this
// process, and each round's ratio is of two runs seconds apart: the memory bandwidth of a shared VM
// moves minute to minute, and a ratio of runs far apart measures that as much as the step. Each
// round is printed, then the medians (the ratio line: the median of the rounds' ratios).
// Compute bound: the f32 FMA peak is measured here at the start of each round (tools/bench-ops/
// fma_peak.h, ~0.2 s, on the backend's thread count: what the other tenants leave of it is paired
// with the round too); 2 x rows x the weights a step reads (bench-musicgen's count) over it is the
// fastest the N-request step could be, and N x t1 / max(that, t1) the ceiling of the ratio (t1:
// the round's 1-request step). Each round also prints the core-to-core hand-off of a cache line
// (tools/bench-memory/core_handoff.h): when the VM's two vCPUs sit far apart it doubles and the
// shared step, whose every op reads what the other thread wrote, slows. It is the f32 FMA bound: the bf16, q8 and q4 kernels compute with other
// instructions, so for them it is a guide only. --profile 1 prints each round's N-request steps
// split per op (tools/bench-musicgen/profiling_backend.h: wall time of each backend call; what is
// left is the step's host work: ids, slices, each request's bookkeeping). --reuse-kv 1 (default)
// measures the steady state of a busy server, whose requests take over finished requests' KV cache
// blocks (pages already mapped); 0, every run's blocks fresh (a first request's page faults).
// --step: how the N requests' step runs (lm/step_lanes.h): auto (default, as musicgen-server:
// the fastest of the three by timing, which is printed), shared (one step over the whole pool),
// paced or free (--lanes groups of requests side by side, default 2). --profile times the ops
// of shared steps only (the lanes run on backends of their own).
// Usage:
//   bench-server-step MODEL_DIR [--threads T] [--requests N] [--steps S] [--weights f32|f16|bf16|q8|q4]
//                     [--rounds R] [--join-leave 0|1] [--profile 0|1] [--reuse-kv 1|0]
//                     [--step auto|shared|paced|free] [--lanes L]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench-common/whole_number.h"
#include "core_handoff.h"
#include "fma_peak.h"
#include "lm/batched_step.h"
#include "lm/sequence_stepper.h"
#include "lm/step_lanes.h"
#include "profiling_backend.h"
#include "step_weights.h"

namespace {

using Stepper = mg::MusicGen::SequenceStepper;

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

mg::DType weight_dtype(const std::string& w) {
  if (w == "q8") return mg::DType::Q8_0;
  if (w == "q4") return mg::DType::Q4_0;
  if (w == "f16") return mg::DType::F16;
  if (w == "bf16") return mg::DType::BF16;
  return mg::DType::F32;  // "f32": main() refuses any other name
}

struct StepTimes {
  double wall_ms = 0, cpu_ms = 0;
};

// `requests` steppers (10 s each, so that no window ends), `steps` shared steps after one warm-up.
// prof: when profiling, cleared as the timed steps start.
// kv_pool (--reuse-kv 1): KV cache blocks to start the steppers with, as musicgen-server's engine
// does with finished requests' blocks, and where theirs go back at the end.
// How the shared step runs (lm/step_lanes.h); no `mode`: chosen by timing, as the server does.
struct StepWay {
  mg::StepLanes* lanes = nullptr;
  std::optional<mg::StepMode> mode;
};

StepTimes run(mg::MusicGen& model, mg::Backend& be, int requests, int steps, std::vector<mg::Tensor>* kv_pool,
              StepWay way, mgbench::ProfilingBackend* prof = nullptr) {
  std::vector<std::unique_ptr<Stepper>> st;
  for (int i = 0; i < requests; ++i) {
    mg::GenerateParams p;
    p.prompt = "benchmark " + std::to_string(i);
    p.seed = uint64_t(100 + i);
    p.duration_s = 10.0;
    p.guidance_scale = 3.0f;
    p.sampler.top_k = 250;
    p.max_window_s = model.max_duration_s();
    mg::Tensor text = model.project_text(be, model.text_hidden_states(be, model.tokenize(p.prompt)));
    mg::Tensor block;
    if (kv_pool && !kv_pool->empty()) {
      block = kv_pool->back();
      kv_pool->pop_back();
    }
    st.push_back(std::make_unique<Stepper>(model, be, p, text, block));
  }
  std::vector<Stepper*> steppers;
  for (auto& x : st) steppers.push_back(x.get());
  double w0 = 0, c0 = 0;
  for (int s = 0; s <= steps; ++s) {
    if (s == 1) {
      if (prof) prof->reset();
      w0 = wall_seconds();
      c0 = cpu_seconds();
    }
    const auto in = Stepper::shared_step_inputs(steppers);
    std::vector<mg::Tensor> tokens(st.size());
    auto draw = [&](size_t i, const mg::Tensor& logits, mg::Backend& lane_be) {
      tokens[i] = st[i]->sample_shared_step(logits, lane_be);
    };
    if (way.mode) way.lanes->step_as(*way.mode, model.decoder(), in.states, in.ids, draw);
    else way.lanes->step(model.decoder(), in.states, in.ids, draw);
    for (size_t i = 0; i < st.size(); ++i) st[i]->finish_sampled_step(tokens[i]);
  }
  const StepTimes t{(wall_seconds() - w0) / steps * 1e3, (cpu_seconds() - c0) / steps * 1e3};
  if (kv_pool)
    for (auto& x : st) kv_pool->push_back(x->state().kv_block);  // the 10 s requests are not done
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// The N-request steps' time per op (one round's timed steps).
void print_profile(const mgbench::ProfilingBackend& prof, int requests, int steps, double step_ms) {
  const double ops_ms = prof.total() * 1e3 / steps;
  std::printf("per op, %d requests, %d steps: %.2f ms a step in ops, %.2f ms a step outside them\n", requests, steps,
              ops_ms, step_ms - ops_ms);
  for (auto& [name, st] : prof.sorted())
    std::printf("  %-44s %6.1f calls/step %8.3f ms/step %5.1f%%  %8.1f us/call\n", name.c_str(),
                double(st.first) / steps, 1e3 * st.second / steps, 100.0 * 1e3 * st.second / steps / step_ms,
                1e6 * st.second / double(st.first));
}

// The compute bound of a step of `rows` rows: 2 x rows x the weights it reads, over the FMA peak.
struct ComputeBound {
  int64_t rows = 0, weights = 0;
  double gflop = 0, ms = 0;
  mgbench::FmaPeak peak;
  // The ceiling of the N-vs-1 ratio: N steps of one request, in the time of one N-request step,
  // which is no faster than the compute bound nor than one request's step.
  double ratio_ceiling(int requests, double one_ms) const { return requests * one_ms / std::max(ms, one_ms); }
};

ComputeBound compute_bound(const mg::MusicGen& model, int threads, int64_t rows) {
  ComputeBound b;
  b.peak = mgbench::measure_fma_peak(threads, 0.2, 3);
  b.rows = rows;
  b.weights = mgbench::weights_read_per_step(model.config());
  b.gflop = 2.0 * double(rows) * double(b.weights) / 1e9;
  b.ms = b.peak.gflops > 0 ? b.gflop / b.peak.gflops * 1e3 : 0.0;
  return b;
}

struct Cost {
  double wall_ms = 0, cpu_ms = 0;
};

template <typename Fn>
Cost measure(Fn&& fn) {
  const double w0 = wall_seconds(), c0 = cpu_seconds();
  fn();
  return {(wall_seconds() - w0) * 1e3, (cpu_seconds() - c0) * 1e3};
}

// What a request costs the server besides its steps, for `requests` requests sent together: the
// text encoder for their distinct prompts (one by one, as before, and in one pass), and the EnCodec
// decode of their 2 s of codes when they finish together (one after another on the pool's
// threads, as the server's finisher does, and side by side on 1-thread backends, which was
// measured slower on a quiet 2-core machine: docs/PERFORMANCE.md, server section).
void run_join_and_leave(mg::MusicGen& model, mg::Backend& be, int threads, int requests) {
  std::vector<std::vector<int>> ids;
  for (int i = 0; i < requests; ++i) ids.push_back(model.tokenize("benchmark " + std::to_string(1000 + i)));
  model.text_hidden_states(be, ids[0]);  // warm-up
  const Cost alone = measure([&] {
    for (const auto& p : ids) model.text_hidden_states(be, p);
  });
  const Cost pass = measure([&] { model.text_hidden_states(be, ids); });
  std::printf("text encoder, %d prompts: one by one %8.1f ms wall %8.1f ms CPU; one pass %8.1f ms wall %8.1f ms CPU\n",
              requests, alone.wall_ms, alone.cpu_ms, pass.wall_ms, pass.cpu_ms);

  const int K = model.config().decoder.num_codebooks, frames = 2 * model.config().frame_rate();
  mg::Codes codes(static_cast<size_t>(K), std::vector<int>(static_cast<size_t>(frames)));
  for (int k = 0; k < K; ++k)
    for (int t = 0; t < frames; ++t) codes[size_t(k)][size_t(t)] = (k * 37 + t * 11 + t * t) % 2048;
  model.decode_audio(be, codes);  // warm-up
  const Cost serial = measure([&] {
    for (int i = 0; i < requests; ++i) model.decode_audio(be, codes);
  });
  std::vector<std::unique_ptr<mg::Backend>> lanes;
  for (int i = 0; i < std::max(1, threads); ++i) lanes.push_back(mg::make_cpu_backend(1));
  const Cost side = measure([&] {
    std::vector<std::thread> workers;
    for (size_t l = 0; l < lanes.size(); ++l)
      workers.emplace_back([&, l] {
        for (size_t i = l; i < size_t(requests); i += lanes.size()) model.decode_audio(*lanes[l], codes);
      });
    for (auto& w : workers) w.join();
  });
  std::printf("EnCodec, %d x 2 s: one after another %8.1f ms wall %8.1f ms CPU; "
              "%zu side by side %8.1f ms wall %8.1f ms CPU\n",
              requests, serial.wall_ms, serial.cpu_ms, lanes.size(), side.wall_ms, side.cpu_ms);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr,
                 "usage: %s MODEL_DIR [--threads T] [--requests N] [--steps S] [--weights f32|f16|bf16|q8|q4] "
                 "[--rounds R] [--join-leave 0|1] [--profile 0|1] [--reuse-kv 1|0] [--step auto|shared|paced|free] "
                 "[--lanes L]\n",
                 argv[0]);
    return 2;
  }
  int threads = 1, requests = 8, steps = 20, rounds = 3, join_leave = 0, profile = 0, reuse_kv = 1, lanes = 2;
  std::string step = "auto";
  std::string weights = "f32";
  auto number = [](const char* name, const char* s, long lo, long hi, int* out) {
    return mgbench::whole_number("bench-server-step", name, s, lo, hi, out);
  };
  for (int i = 2; i < argc; i += 2) {
    const char* name = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench-server-step: %s needs a value\n", name);
      return 2;
    }
    const char* value = argv[i + 1];
    bool ok = true;
    if (!std::strcmp(name, "--threads")) ok = number(name, value, 0, 256, &threads);  // 0: one per core
    else if (!std::strcmp(name, "--requests")) ok = number(name, value, 1, 64, &requests);
    else if (!std::strcmp(name, "--steps")) ok = number(name, value, 1, 100000, &steps);
    else if (!std::strcmp(name, "--weights")) {
      weights = value;
      ok = weights == "f32" || weights == "f16" || weights == "bf16" || weights == "q8" || weights == "q4";
      if (!ok) std::fprintf(stderr, "bench-server-step: --weights %s: expected f32, f16, bf16, q8 or q4\n", value);
    }
    else if (!std::strcmp(name, "--rounds")) ok = number(name, value, 1, 1000, &rounds);
    else if (!std::strcmp(name, "--join-leave")) ok = number(name, value, 0, 1, &join_leave);
    else if (!std::strcmp(name, "--profile")) ok = number(name, value, 0, 1, &profile);
    else if (!std::strcmp(name, "--reuse-kv")) ok = number(name, value, 0, 1, &reuse_kv);
    else if (!std::strcmp(name, "--lanes")) ok = number(name, value, 0, 64, &lanes);
    else if (!std::strcmp(name, "--step")) {
      step = value;
      ok = step == "auto" || step == "shared" || step == "paced" || step == "free";
      if (!ok) std::fprintf(stderr, "bench-server-step: --step %s: expected auto, shared, paced or free\n", value);
    }
    else {
      std::fprintf(stderr, "bench-server-step: unknown option %s\n", name);
      return 2;
    }
    if (!ok) return 2;
  }
  try {
    auto cpu = mg::make_cpu_backend(threads);
    // --profile 1: every op's wall time through ProfilingBackend, split for the N-request steps only.
    mgbench::ProfilingBackend prof(*cpu);
    mg::Backend* be = profile ? static_cast<mg::Backend*>(&prof) : cpu.get();
    auto model = mg::MusicGen::load(*be, argv[1], weight_dtype(weights));
    std::printf("%s weights %s, %d threads, %d steps, %d rounds, %s\n", argv[1], weights.c_str(), threads, steps,
                rounds, reuse_kv ? "KV cache blocks reused (as musicgen-server while busy)" : "fresh KV cache blocks");
    // --reuse-kv 1: what a busy musicgen-server does (engine.cpp take_kv_block): a finished
    // request's KV block goes to the next one. One untimed run of all the requests first, as long as
    // the timed ones (a block's pages are mapped as positions are written), so every timed run
    // finds its blocks mapped, as requests after the first do in the server.
    std::vector<mg::Tensor> kv_blocks;
    std::vector<mg::Tensor>* kv_pool = reuse_kv ? &kv_blocks : nullptr;
    const int pool_threads = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
    mg::StepLanes step_lanes(*be, pool_threads, std::min(lanes, pool_threads));
    StepWay way{&step_lanes, std::nullopt};
    if (step != "auto")
      way.mode = step == "paced" ? mg::StepMode::lanes_paced : step == "free" ? mg::StepMode::lanes_free : mg::StepMode::shared;
    if (reuse_kv) run(*model, *be, requests, steps, kv_pool, way);
    // Two rows a request: the conditional and the null-text one (CFG, as run() sets it up).
    std::vector<double> one_wall, one_cpu, many_wall, many_cpu, by_wall, by_cpu, ceilings, peaks, bound_ms;
    ComputeBound bound;
    for (int r = 0; r < rounds; ++r) {
      bound = compute_bound(*model, pool_threads, 2 * int64_t(requests));
      const double handoff = mgbench::core_handoff_ns();
      peaks.push_back(bound.peak.gflops);
      bound_ms.push_back(bound.ms);
      const StepTimes one = run(*model, *be, 1, steps, kv_pool, way);
      const StepTimes many = run(*model, *be, requests, steps, kv_pool, way, profile ? &prof : nullptr);
      if (profile) print_profile(prof, requests, steps, many.wall_ms);
      one_wall.push_back(one.wall_ms);
      one_cpu.push_back(one.cpu_ms);
      many_wall.push_back(many.wall_ms);
      many_cpu.push_back(many.cpu_ms);
      by_wall.push_back(requests * one.wall_ms / many.wall_ms);
      by_cpu.push_back(requests * one.cpu_ms / many.cpu_ms);
      ceilings.push_back(bound.ratio_ceiling(requests, one.wall_ms));
      std::printf("round %d/%d: 1 request %8.2f ms wall %8.2f ms CPU; %d requests %8.2f ms wall %8.2f ms CPU; "
                  "x%.2f by wall, x%.2f by CPU (FMA peak %.1f GFLOP/s, ceiling x%.2f; core hand-off %.0f ns; "
                  "steps so far shared/paced/free %lld/%lld/%lld)\n",
                  r + 1, rounds, one.wall_ms, one.cpu_ms, requests, many.wall_ms, many.cpu_ms, by_wall.back(),
                  by_cpu.back(), bound.peak.gflops, ceilings.back(), handoff,
                  static_cast<long long>(step_lanes.steps_in(mg::StepMode::shared)),
                  static_cast<long long>(step_lanes.steps_in(mg::StepMode::lanes_paced)),
                  static_cast<long long>(step_lanes.steps_in(mg::StepMode::lanes_free)));
      std::fflush(stdout);
    }
    const char* of = rounds > 1 ? " (median of the rounds)" : "";
    std::printf("1 request:   step %8.2f ms wall %8.2f ms CPU%s\n", median(one_wall), median(one_cpu), of);
    std::printf("%d requests: step %8.2f ms wall %8.2f ms CPU%s\n", requests, median(many_wall), median(many_cpu), of);
    std::printf("request-steps/s, %d vs 1: x%.2f by wall time, x%.2f by CPU time", requests, median(by_wall),
                median(by_cpu));
    if (rounds > 1)
      std::printf(" (medians of the rounds' ratios; by wall x%.2f-x%.2f)",
                  *std::min_element(by_wall.begin(), by_wall.end()), *std::max_element(by_wall.begin(), by_wall.end()));
    std::printf("\n");
    if (bound.peak.gflops > 0)
      std::printf("compute bound: 2 x %lld rows x %lld weights = %.4g GFLOP a step / %.1f GFLOP/s f32 FMA peak (%d "
                  "threads, %d-bit, median of the rounds) = %.3g ms; ratio ceiling %d x t1 / max(bound, t1) = x%.2f "
                  "(median)\n",
                  (long long)bound.rows, (long long)bound.weights, bound.gflop, median(peaks), bound.peak.threads,
                  bound.peak.vector_bits, median(bound_ms), requests, median(ceilings));
    else
      std::printf("compute bound: no FMA on this CPU, no peak measured\n");
    if (join_leave) run_join_and_leave(*model, *be, threads, requests);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-server-step: %s\n", e.what());
    return 1;
  }
  return 0;
}
