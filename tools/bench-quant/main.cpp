// bench-quant: what quantized decoder weights cost and gain (docs/QUANTIZATION.md).
//
//   bench-quant kernels [--threads 2] [--reps 30] [--rows-div D]
//     GB/s of the decode-step linear (M = 2 rows, the CFG pair) at musicgen-small's shapes for
//     f32/f16/bf16 weights and q8_0/q4_0 on every kernel path this CPU runs ("avx512-vnni x16":
//     interleaved by 16 rows, as the CPU backend loads them on that path; the other rows read row
//     order). Bytes = the weight bytes read (scales included). Compare with tools/bench-memory's
//     read_gbps, run in the same quiet window (note cat /proc/loadavg); the q8_0 and q4_0 sets (24.5
//     and 13 MB) can fit a 32 MB L3, so bench-musicgen --profile is their memory-bound figure.
//     --rows-div 16 keeps the weights in the caches: the kernels' compute ceiling rather than the
//     memory's (--threads 1 for one core's).
//   bench-quant dispatch [--threads 2] [--reps 2000]
//     Microseconds per call of what a decode step calls a few hundred times: a parallel_for whose
//     chunks each take 0, 2 or 10 us (ideal: that long; the rest is the pool's hand-off and
//     completion) and one 1024x1024 linear at 1 and 2
//     rows per weights format (f32, bf16, q8_0, q4_0, best kernel path), next to the time its
//     weight bytes need at --read-gbps (default 33).
//   bench-quant linear [--threads 2] [--rows 2] [--reps 300] [--mb 128] [--pages 2m|4k|both]
//     Microseconds per call of one quantized linear at each of musicgen-small's decode shapes (q8_0
//     and q4_0, the layout and kernel path the CPU backend uses here), weights read from memory:
//     calls cycle through copies of the matrix totalling --mb MB (above the L3), as in a decode
//     step, which reads every weight once. --pages: the copies in 2 MiB pages (a WeightArena, as the
//     CPU backend keeps them), in 4 KiB pages, or both, alternating call by call (an A/B that a
//     busy machine disturbs alike). Columns: median and 10th-percentile wall time, the calling
//     thread's CPU time, GB/s of the weight bytes at the median, and the activations' quantization
//     alone (done once per call).
//   bench-quant parity MODEL [--steps 500] [--threads 2] [--prompt TEXT] [--weights f16,bf16,q8,q4]
//     For each precision against f32: relative error of the CFG (guided) logits over the steps
//     before the first differing greedy token (their histories are identical there), greedy token
//     agreement over --steps steps, and the fraction of identical tokens in sampled generation
//     (top-k 250, seed 1). Random weights say nothing about musical quality.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <time.h>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/threadpool.h"
#include "kernels/quant.h"
#include "kernels/weight_arena.h"
#include "lm/generate.h"

namespace {

std::string arg(int argc, char** argv, const char* name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

// A malformed or out-of-range option: main prints it with the usage and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Option `name` as a whole number in [lo, hi] (the fallback when absent): "abc", "2x", "-5" or a
// huge value is refused, not read as 0 or clamped.
int64_t int_arg(int argc, char** argv, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const std::string text = arg(argc, argv, name, std::to_string(fallback));
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi)
    throw UsageError(std::string(name) + " takes a whole number from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ", not '" + text + "'");
  return v;
}

// Option `name` as a finite number in [lo, hi] (NaN, inf and trailing text refused).
double real_arg(int argc, char** argv, const char* name, double fallback, double lo, double hi) {
  const std::string text = arg(argc, argv, name, std::to_string(fallback));
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
    char range[64];
    std::snprintf(range, sizeof range, "from %g to %g", lo, hi);
    throw UsageError(std::string(name) + " takes a number " + range + ", not '" + text + "'");
  }
  return v;
}

constexpr int64_t kMaxThreads = 256;  // 0: one per core

// An Exec on `pool` for the fastest kernel path this CPU runs (AVX-512 where it has it, else AVX2).
mg::cpu::Exec fastest_exec(mg::cpu::ThreadPool& pool, mg::cpu::KernelPath* best) {
  mg::cpu::Exec ex;
  ex.pool = &pool;
  *best = mg::cpu::kernel_path_supported(mg::cpu::KernelPath::Avx512) ? mg::cpu::KernelPath::Avx512
                                                                       : mg::cpu::KernelPath::Avx2;
  ex.allow_avx512 = *best == mg::cpu::KernelPath::Avx512;
  return ex;
}

mg::Tensor random_weights(int64_t n, int64_t k, uint32_t seed) {
  std::vector<float> v(size_t(n * k));
  uint32_t s = seed;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = (float(s >> 8) / float(1 << 24) - 0.5f) * 0.1f;
  }
  return mg::Tensor::from_vector(v, {n, k});
}

double median_seconds(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int run_kernels(int argc, char** argv) {
  const int threads = int(int_arg(argc, argv, "--threads", 2, 0, kMaxThreads));
  const int reps = int(int_arg(argc, argv, "--reps", 30, 1, 100000));
  mg::cpu::ThreadPool pool(threads);
  // One decoder layer's step weights of musicgen-small plus a head block: 56 MB of f32, > the caches.
  struct Shape { int64_t n, k; };
  const std::vector<Shape> shapes = {{3072, 1024}, {1024, 1024}, {1024, 1024}, {1024, 1024},
                                     {4096, 1024}, {1024, 4096}, {8192, 1024}};
  std::vector<mg::Tensor> f32;
  // --rows-div D: 1/D of each matrix's rows, e.g. 16 to fit the caches and see the compute ceiling.
  const int64_t div = int_arg(argc, argv, "--rows-div", 1, 1, 1024);
  for (size_t i = 0; i < shapes.size(); ++i)
    f32.push_back(random_weights(shapes[i].n / div, shapes[i].k, uint32_t(i + 1)));
  std::printf("bench-quant kernels: M = 2, %d threads, median of %d passes over %zu weights (one decoder layer + a head block)\n",
              threads, reps, shapes.size());
  std::printf("%-6s %-16s %10s %10s\n", "dtype", "path", "MB/pass", "GB/s");
  // interleave: q8_0/q4_0 repacked by 16 rows, as the CPU backend loads them for avx512-vnni.
  auto bench = [&](mg::DType dt, mg::cpu::KernelPath path, bool quant, bool interleave = false) {
    std::vector<mg::Tensor> w;
    size_t bytes = 0;
    for (const mg::Tensor& t : f32) {
      w.push_back(quant ? mg::quantize(t, dt) : mg::cpu::cast(t, dt));
      if (interleave) w.back() = mg::interleave_rows16(w.back());
      bytes += w.back().nbytes();
    }
    mg::cpu::Exec ex;
    ex.pool = &pool;
    ex.allow_avx512 = path == mg::cpu::KernelPath::Avx512;
    ex.allow_simd = path != mg::cpu::KernelPath::Portable;
    std::vector<mg::Tensor> x;
    for (const Shape& s : shapes) x.push_back(random_weights(2, s.k, 99));
    std::vector<double> times;
    for (int r = 0; r < reps + 2; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < w.size(); ++i)
        quant ? mg::cpu::linear_quantized(x[i], w[i], nullptr, ex, path) : mg::cpu::linear(x[i], w[i], nullptr, ex);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r >= 2) times.push_back(s);
    }
    const std::string name = !quant ? "(linear.cpp)" : std::string(mg::cpu::kernel_path_name(path)) + (interleave ? " x16" : "");
    std::printf("%-6s %-16s %10.1f %10.2f\n", mg::dtype_name(dt), name.c_str(), bytes / 1e6,
                bytes / median_seconds(times) / 1e9);
  };
  const mg::cpu::KernelPath best = mg::cpu::kernel_path_supported(mg::cpu::KernelPath::Avx512)
                                       ? mg::cpu::KernelPath::Avx512
                                       : mg::cpu::KernelPath::Avx2;
  for (mg::DType dt : {mg::DType::F32, mg::DType::F16, mg::DType::BF16}) bench(dt, best, false);
  for (mg::DType dt : {mg::DType::Q8_0, mg::DType::Q4_0})
    for (mg::cpu::KernelPath p : {mg::cpu::KernelPath::Avx512, mg::cpu::KernelPath::Avx2})
      if (mg::cpu::kernel_path_supported(p)) {
        if (p == mg::cpu::KernelPath::Avx512) bench(dt, p, true, true);  // the layout the backend loads
        bench(dt, p, true);
      }
  return 0;
}

// Median microseconds of fn over reps calls (after 20 to warm up), calls made back to back.
double median_micros(int reps, const std::function<void()>& fn) {
  for (int i = 0; i < 20; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  return median_seconds(t);
}

int run_dispatch(int argc, char** argv) {
  const int threads = int(int_arg(argc, argv, "--threads", 2, 0, kMaxThreads));
  const int reps = int(int_arg(argc, argv, "--reps", 2000, 1, 1000000));
  const double gbps = real_arg(argc, argv, "--read-gbps", 33, 0.001, 100000);
  mg::cpu::ThreadPool pool(threads);
  std::printf("bench-quant dispatch: %d threads, median of %d calls\n", pool.size(), reps);
  std::printf("%-28s %10s %12s\n", "call", "us/call", "bytes us");
  // Every chunk busy for `us` microseconds: with n threads a call ideally takes `us`, alone n * us.
  for (double us : {0.0, 2.0, 10.0}) {
    const std::function<void(int64_t, int64_t)> busy = [us](int64_t, int64_t) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double, std::micro>(us);
      while (std::chrono::steady_clock::now() < until) {
      }
    };
    const std::string name = "parallel_for " + std::to_string(int(us)) + " us/chunk";
    std::printf("%-28s %10.2f %12s\n", name.c_str(), median_micros(reps, [&] { pool.parallel_for(pool.size(), busy); }),
                "-");
  }
  mg::cpu::KernelPath best;
  const mg::cpu::Exec ex = fastest_exec(pool, &best);
  // Eight different matrices in turn, 4-32 MB together: each call reads its weights from memory.
  const mg::Tensor w32 = random_weights(1024, 1024, 7);
  for (mg::DType dt : {mg::DType::F32, mg::DType::BF16, mg::DType::Q8_0, mg::DType::Q4_0}) {
    const bool quant = mg::dtype_is_quantized(dt);
    std::vector<mg::Tensor> w;
    for (int i = 0; i < 8; ++i) w.push_back(quant ? mg::quantize(w32, dt) : mg::cpu::cast(w32, dt));
    for (int64_t m : {1, 2}) {
      const mg::Tensor x = random_weights(m, 1024, 99);
      size_t i = 0;
      const double us = median_micros(reps, [&] {
        const mg::Tensor& wi = w[i++ % w.size()];
        quant ? mg::cpu::linear_quantized(x, wi, nullptr, ex, best) : mg::cpu::linear(x, wi, nullptr, ex);
      });
      const std::string name = std::string("linear 1024x1024 ") + mg::dtype_name(dt) + " m=" + std::to_string(m);
      std::printf("%-28s %10.2f %12.2f\n", name.c_str(), us, w[0].nbytes() / gbps / 1e3);
    }
  }
  return 0;
}

// Copies of `one` totalling about `mb` MB: in 4 KiB pages (Tensor::empty) or, as the CPU backend
// keeps its repacked weights, in a WeightArena's 2 MiB pages.
std::vector<mg::Tensor> weight_copies(const mg::Tensor& one, double mb, bool huge, mg::WeightArena& arena) {
  const size_t copies = std::max<size_t>(2, size_t(mb * 1e6 / double(one.nbytes())));
  std::vector<mg::Tensor> w;
  for (size_t i = 0; i < copies; ++i) {
    if (!huge) {
      w.push_back(one.clone());
      continue;
    }
    mg::Tensor t = arena.empty(one.dtype, one.shape);
    std::memcpy(t.data, one.data, one.nbytes());
    t.layout = one.layout;
    w.push_back(t);
  }
  return w;
}

int run_linear(int argc, char** argv) {
  const int threads = int(int_arg(argc, argv, "--threads", 2, 0, kMaxThreads));
  const int64_t rows = int_arg(argc, argv, "--rows", 2, 1, 64);
  const int reps = int(int_arg(argc, argv, "--reps", 300, 1, 1000000));
  const double mb = real_arg(argc, argv, "--mb", 128, 1, 16384);
  const std::string pages = arg(argc, argv, "--pages", "2m");
  if (pages != "2m" && pages != "4k" && pages != "both") {
    throw UsageError("--pages is 2m, 4k or both, not '" + pages + "'");
  }
  mg::cpu::ThreadPool pool(threads);
  mg::cpu::KernelPath best;
  const mg::cpu::Exec ex = fastest_exec(pool, &best);
  std::printf("bench-quant linear: %lld rows, %d threads, %s%s, weights cycled over %.0f MB per page size, %d calls"
              " (with --pages both the two alternate call by call)\n",
              (long long)rows, pool.size(), mg::cpu::kernel_path_name(best), ex.allow_avx512 ? " x16" : "", mb, reps);
  std::printf("%-6s %-12s %-6s %10s %10s %10s %10s %12s\n", "dtype", "[N, K]", "pages", "us/call", "p10 us", "cpu us",
              "GB/s", "quant x us");
  struct Shape { int64_t n, k; };
  std::vector<bool> kinds;
  if (pages != "4k") kinds.push_back(true);
  if (pages != "2m") kinds.push_back(false);
  for (mg::DType dt : {mg::DType::Q4_0, mg::DType::Q8_0})
    for (const Shape s : std::vector<Shape>{{1024, 4096}, {1024, 1024}, {4096, 1024}, {3072, 1024}, {8192, 1024}}) {
      mg::Tensor one = mg::quantize(random_weights(s.n, s.k, 7), dt);
      if (ex.allow_avx512) one = mg::interleave_rows16(one);
      mg::WeightArena arena;
      std::vector<std::vector<mg::Tensor>> w;
      for (bool huge : kinds) w.push_back(weight_copies(one, mb, huge, arena));
      const mg::Tensor x = random_weights(rows, s.k, 99);
      // Wall and calling-thread CPU time per call (CPU time: what a busy machine disturbs least).
      std::vector<std::vector<double>> wall(kinds.size()), cpu(kinds.size());
      for (int r = -20; r < reps; ++r)
        for (size_t v = 0; v < kinds.size(); ++v) {
          timespec c0, c1;
          clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
          const auto t0 = std::chrono::steady_clock::now();
          mg::cpu::linear_quantized(x, w[v][size_t(r + 20) % w[v].size()], nullptr, ex, best);
          const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
          clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
          if (r < 0) continue;  // warm-up
          wall[v].push_back(us);
          cpu[v].push_back((c1.tv_sec - c0.tv_sec) * 1e6 + (c1.tv_nsec - c0.tv_nsec) * 1e-3);
        }
      std::vector<int8_t> q(size_t(rows * s.k));
      std::vector<float> d(size_t(rows * s.k / mg::kQuantBlock));
      const double qus = median_micros(reps, [&] {
        for (int64_t r = 0; r < rows; ++r)
          mg::quantize_activations(x.f32() + r * s.k, s.k, q.data() + r * s.k, d.data() + r * (s.k / mg::kQuantBlock));
      });
      const std::string name = "[" + std::to_string(s.n) + ", " + std::to_string(s.k) + "]";
      for (size_t v = 0; v < kinds.size(); ++v) {
        std::sort(wall[v].begin(), wall[v].end());
        const double med = wall[v][wall[v].size() / 2];
        std::printf("%-6s %-12s %-6s %10.1f %10.1f %10.1f %10.1f %12.2f\n", mg::dtype_name(dt), name.c_str(),
                    kinds[v] ? "2m" : "4k", med, wall[v][wall[v].size() / 10], median_seconds(cpu[v]),
                    one.nbytes() / med / 1e3, qus);
      }
      std::fflush(stdout);
    }
  return 0;
}

struct Run {
  mg::Codes codes;
  std::vector<std::vector<float>> logits;  // per step, guided [K * vocab] of sequence 0
};

Run generate(mg::MusicGen& model, const std::string& prompt, int steps, bool greedy) {
  mg::GenerateParams p;
  p.prompt = prompt;
  p.sampler.greedy = greedy;
  p.seed = 1;
  p.duration_s = double(steps) / model.config().frame_rate();
  Run r;
  p.on_logits = [&](int64_t, const float* l, int K, int V) { r.logits.emplace_back(l, l + size_t(K) * V); };
  r.codes = model.generate_codes(p);
  return r;
}

double identical_fraction(const mg::Codes& a, const mg::Codes& b) {
  size_t same = 0, all = 0;
  for (size_t k = 0; k < a.size() && k < b.size(); ++k)
    for (size_t t = 0; t < a[k].size() && t < b[k].size(); ++t, ++all) same += a[k][t] == b[k][t];
  return all ? double(same) / double(all) : 0.0;
}

int run_parity(int argc, char** argv) {
  const std::string model_dir = argv[2];
  const int steps = int(int_arg(argc, argv, "--steps", 500, 1, 100000));
  const int threads = int(int_arg(argc, argv, "--threads", 2, 0, kMaxThreads));
  const std::string prompt = arg(argc, argv, "--prompt", "80s pop track with bassy drums and synth");
  const std::string list = arg(argc, argv, "--weights", "f16,bf16,q8,q4");
  auto be = mg::make_cpu_backend(threads);
  auto ref_model = mg::MusicGen::load(*be, model_dir, mg::DType::F32);
  const Run ref_greedy = generate(*ref_model, prompt, steps, true);
  const Run ref_sampled = generate(*ref_model, prompt, steps, false);
  ref_model.reset();
  std::printf("bench-quant parity: %s, %d steps, prompt \"%s\", %d threads\n", model_dir.c_str(), steps,
              prompt.c_str(), threads);
  std::printf("%-6s %22s %16s %20s %18s\n", "dtype", "logits rel err (mean)", "(steps compared)",
              "greedy tokens same", "sampled same");
  for (size_t at = 0; at < list.size();) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    const std::string name = list.substr(at, comma - at);
    at = comma + 1;
    const mg::DType dt = name == "f16" ? mg::DType::F16 : name == "bf16" ? mg::DType::BF16
                         : name == "q8" ? mg::DType::Q8_0 : name == "q4" ? mg::DType::Q4_0 : mg::DType::F32;
    auto model = mg::MusicGen::load(*be, model_dir, dt);
    const Run g = generate(*model, prompt, steps, true);
    const Run s = generate(*model, prompt, steps, false);
    // Steps before the first differing greedy token (including it: its logits had the same history).
    size_t compared = 0;
    double err_sum = 0;
    for (size_t i = 0; i < g.logits.size() && i < ref_greedy.logits.size(); ++i) {
      double num = 0, den = 0;
      for (size_t j = 0; j < g.logits[i].size(); ++j) {
        const double d = double(g.logits[i][j]) - ref_greedy.logits[i][j];
        num += d * d;
        den += double(ref_greedy.logits[i][j]) * ref_greedy.logits[i][j];
      }
      err_sum += std::sqrt(num / std::max(den, 1e-30));
      ++compared;
      bool same_step = true;  // tokens chosen at step i (argmax of the guided logits per codebook)
      const size_t V = size_t(model->config().decoder.vocab_size);
      for (size_t k = 0; k * V < g.logits[i].size(); ++k) {
        auto am = [&](const std::vector<float>& l) {
          return std::max_element(l.begin() + k * V, l.begin() + (k + 1) * V) - l.begin();
        };
        same_step = same_step && am(g.logits[i]) == am(ref_greedy.logits[i]);
      }
      if (!same_step) break;
    }
    std::printf("%-6s %22.3e %16zu %19.1f%% %17.1f%%\n", name.c_str(), compared ? err_sum / compared : 0.0, compared,
                100.0 * identical_fraction(g.codes, ref_greedy.codes), 100.0 * identical_fraction(s.codes, ref_sampled.codes));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 2 && std::string(argv[1]) == "kernels") return run_kernels(argc, argv);
    if (argc >= 2 && std::string(argv[1]) == "dispatch") return run_dispatch(argc, argv);
    if (argc >= 2 && std::string(argv[1]) == "linear") return run_linear(argc, argv);
    if (argc >= 3 && std::string(argv[1]) == "parity") return run_parity(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "bench-quant: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-quant: error: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: bench-quant kernels [--threads 2] [--reps 30] [--rows-div D]\n"
                       "       bench-quant dispatch [--threads 2] [--reps 2000] [--read-gbps 33]\n"
                       "       bench-quant linear [--threads 2] [--rows 2] [--reps 300] [--mb 128] [--pages 2m|4k|both]\n"
                       "       bench-quant parity MODEL [--steps 500] [--threads 2] [--prompt TEXT] [--weights f16,bf16,q8,q4]\n");
  return 2;
}
