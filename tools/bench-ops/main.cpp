// bench-ops: times the CPU ops that dominate MusicGen (linear: decode steps with 2 CFG rows and
// prompt prefill) and EnCodec (conv1d / conv_transpose1d on long audio), and prints GFLOP/s.
// Usage: bench-ops [threads] [seconds per case]
//        bench-ops rows [threads] [seconds per case]: the decode-step GEMV with 2 and 16 rows (one
//          request with CFG, and a server's shared step of 8) on the musicgen-small decoder shapes,
//          f32 and bf16 weights, beside f32 sgemm (M=512) as the FMA-bound yardstick and (f32) the
//          measured FMA peak; then the 16 rows with w in L2 (the GEMV's arithmetic alone)
//        bench-ops attention [options]: decode-step attention over a KV cache (attention_bench.cpp)
//        bench-ops peak [threads] [seconds]: the f32 FMA peak on 1 thread and on `threads` (default
//          all cores), 512-bit FMAs where the CPU has AVX-512F, else 256-bit (fma_peak.cpp): the
//          compute ceiling the GEMV rows above are compared with (bench-server-step prints a
//          step's compute bound from the same measurement)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <thread>

#include "fma_peak.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_ops.h"

namespace {

using mg::DType;
using mg::Tensor;
namespace cpu = mg::cpu;

Tensor random(const mg::Shape& s, uint32_t seed) {
  Tensor t = Tensor::empty(DType::F32, s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = d(rng) * 0.05f;
  return t;
}

// Runs fn until `seconds` have passed (at least 3 times) and prints flops / mean time; with
// `best`, flops / the fastest run instead (steadier on a shared machine). Returns the GFLOP/s.
double time_case(const std::string& name, double flops, double seconds, const std::function<void()>& fn,
                 bool best = false) {
  fn();  // warm up (page faults, OpenBLAS buffers)
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  int reps = 0;
  double elapsed = 0.0, fastest = 1e30;
  do {
    auto t0 = clock::now();
    fn();
    auto t1 = clock::now();
    fastest = std::min(fastest, std::chrono::duration<double>(t1 - t0).count());
    ++reps;
    elapsed = std::chrono::duration<double>(t1 - start).count();
  } while (elapsed < seconds || reps < 3);
  double per = best ? fastest : elapsed / reps;
  std::printf("%-48s %9.3f ms  %8.2f GFLOP/s%s\n", name.c_str(), per * 1e3, flops / per * 1e-9, best ? " (best)" : "");
  return flops / per * 1e-9;
}

// The GEMV rows mode: GFLOP/s per shape for M = 2 and 16, and as % of sgemm's on the same shape.
int run_rows_bench(int argc, char** argv) {
  char* end = nullptr;
  const long threads = argc > 2 ? std::strtol(argv[2], &end, 10) : 2;
  if (argc > 2 && (*end != '\0' || end == argv[2] || threads < 1 || threads > 256)) {
    std::fprintf(stderr, "bench-ops rows: threads '%s' is not a whole number from 1 to 256\n", argv[2]);
    return 2;
  }
  const double seconds = argc > 3 ? std::strtod(argv[3], &end) : 0.5;
  if (argc > 3 && (*end != '\0' || end == argv[3] || !(seconds >= 0.0 && seconds <= 600.0))) {
    std::fprintf(stderr, "bench-ops rows: seconds '%s' is not a number from 0 to 600\n", argv[3]);
    return 2;
  }
  cpu::ThreadPool pool(static_cast<int>(threads));
  cpu::Exec ex{&pool, true};
  // The f32 rows are also put against the FMA peak, measured now on the same thread count.
  const mgbench::FmaPeak peak = mgbench::measure_fma_peak(pool.size(), 0.2, 3);
  std::printf("bench-ops rows: %d threads, AVX-512 %s, f32 FMA peak %.1f GFLOP/s\n", pool.size(),
              cpu::cpu_has_avx512() ? "yes" : "no", peak.gflops);
  struct Shape { int64_t n, k; };
  for (Shape s : {Shape{1024, 1024}, Shape{3072, 1024}, Shape{4096, 1024}, Shape{1024, 4096}}) {
    Tensor w = random({s.n, s.k}, 1);
    const std::string dims = " K=" + std::to_string(s.k) + " N=" + std::to_string(s.n);
    Tensor x512 = random({512, s.k}, 2);
    const double sgemm = time_case("linear f32 M=512" + dims, 2.0 * 512 * s.n * s.k, seconds,
                                   [&] { cpu::linear(x512, w, nullptr, ex); }, true);
    for (DType dt : {DType::F32, DType::BF16}) {
      // Copies of w past the L3 cache, used in turn: a decode step reads its weights from memory.
      // 1 GiB: the Xeon VM of the issues has 260 MiB of L3, where 256 MiB of copies mostly stayed.
      std::vector<Tensor> wt;
      const int64_t bytes = s.n * s.k * int64_t(mg::dtype_size(dt));
      for (int64_t i = 0; i * bytes < (int64_t(1) << 30); ++i) wt.push_back(cpu::cast(w, dt));
      for (int64_t m : {2, 16}) {
        Tensor x = random({m, s.k}, 2);
        size_t next = 0;
        const double g = time_case("linear " + std::string(mg::dtype_name(dt)) + " M=" + std::to_string(m) + dims,
                                   2.0 * m * s.n * s.k, seconds,
                                   [&] { cpu::linear(x, wt[next++ % wt.size()], nullptr, ex); }, true);
        if (dt == DType::F32 && peak.gflops > 0)
          std::printf("%-48s %9.0f %% of sgemm M=512, %.0f %% of the FMA peak\n", "", 100.0 * g / sgemm,
                      100.0 * g / peak.gflops);
        else
          std::printf("%-48s %9.0f %% of sgemm M=512\n", "", 100.0 * g / sgemm);
      }
    }
  }
  // The 16-row GEMV's arithmetic alone: one w of 320 KiB (f32) per thread, read from L2 after the
  // first call, so memory cannot be what limits it.
  for (Shape s : {Shape{80 * pool.size(), 1024}, Shape{20 * pool.size(), 4096}}) {
    const std::string dims = " K=" + std::to_string(s.k) + " N=" + std::to_string(s.n) + " w in L2";
    Tensor x = random({16, s.k}, 2);
    for (DType dt : {DType::F32, DType::BF16}) {
      Tensor w = cpu::cast(random({s.n, s.k}, 1), dt);
      const double g = time_case("linear " + std::string(mg::dtype_name(dt)) + " M=16" + dims, 2.0 * 16 * s.n * s.k,
                                 seconds, [&] { cpu::linear(x, w, nullptr, ex); }, true);
      if (peak.gflops > 0) std::printf("%-48s %9.0f %% of the FMA peak\n", "", 100.0 * g / peak.gflops);
    }
  }
  return 0;
}

// The FMA peak mode: GFLOP/s on 1 thread and on `threads`, and per core.
int run_peak_bench(int argc, char** argv) {
  char* end = nullptr;
  const long all = long(std::max(1u, std::thread::hardware_concurrency()));
  if (argc > 2 && (std::string(argv[2]) == "-h" || std::string(argv[2]) == "--help")) {
    std::printf("usage: bench-ops peak [threads (default %ld)] [seconds (default 0.2)]\n"
                "The f32 FMA peak in GFLOP/s on 1 thread and on `threads`: 512-bit FMAs where the CPU has\n"
                "AVX-512F, else 256-bit; the best of 3 runs of seconds / 3 each.\n",
                all);
    return 0;
  }
  const long threads = argc > 2 ? std::strtol(argv[2], &end, 10) : all;
  if (argc > 2 && (*end != '\0' || end == argv[2] || threads < 1 || threads > 256)) {
    std::fprintf(stderr, "bench-ops peak: threads '%s' is not a whole number from 1 to 256\n", argv[2]);
    return 2;
  }
  const double seconds = argc > 3 ? std::strtod(argv[3], &end) : 0.2;
  if (argc > 3 && (*end != '\0' || end == argv[3] || !(seconds > 0.0 && seconds <= 60.0))) {
    std::fprintf(stderr, "bench-ops peak: seconds '%s' is not a number above 0 and at most 60\n", argv[3]);
    return 2;
  }
  if (argc > 4) {
    std::fprintf(stderr, "usage: bench-ops peak [threads (default %ld)] [seconds (default 0.2)]\n", all);
    return 2;
  }
  std::printf("bench-ops peak: f32 FMA, best of 3 runs of %.2f s, %ld cores\n", seconds / 3, all);
  for (long t : {1L, threads}) {
    const mgbench::FmaPeak p = mgbench::measure_fma_peak(int(t), seconds, 3);
    if (p.vector_bits == 0) {
      std::printf("no FMA on this CPU: no peak to measure\n");
      return 0;
    }
    std::printf("%-48s %8.2f GFLOP/s  (%d-bit FMAs, %.2f GFLOP/s per thread)\n",
                (std::to_string(t) + (t == 1 ? " thread" : " threads")).c_str(), p.gflops, p.vector_bits,
                p.gflops / double(t));
    if (threads == 1) break;
  }
  return 0;
}

}  // namespace

int run_attention_bench(int argc, char** argv);

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "attention") return run_attention_bench(argc, argv);
  if (argc > 1 && std::string(argv[1]) == "rows") return run_rows_bench(argc, argv);
  if (argc > 1 && std::string(argv[1]) == "peak") return run_peak_bench(argc, argv);
  const int threads = argc > 1 ? std::atoi(argv[1]) : 0;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 0.5;
  cpu::ThreadPool pool(threads);
  cpu::Exec ex{&pool, true};
  std::printf("bench-ops: %d threads, AVX2 %s, AVX-512 %s\nBLAS: %s\n", pool.size(), cpu::cpu_has_avx2() ? "yes" : "no",
              cpu::cpu_has_avx512() ? "yes" : "no", mg::cpu::blas::describe().c_str());

  // MusicGen decoder linears: d_model 1024 (small) / 1536 (medium), FFN 4x.
  for (int64_t d : {1024, 1536}) {
    for (int64_t n : {d, 4 * d}) {
      Tensor w = random({n, d}, 1);
      for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
        Tensor wt = dt == DType::F32 ? w : cpu::cast(w, dt);
        for (int64_t m : {2, 512}) {
          Tensor x = random({m, d}, 2);
          std::string name = "linear " + std::string(mg::dtype_name(dt)) + " M=" + std::to_string(m) +
                             " K=" + std::to_string(d) + " N=" + std::to_string(n);
          time_case(name, 2.0 * m * n * d, seconds, [&] { cpu::linear(x, wt, nullptr, ex); });
        }
      }
    }
  }

  // EnCodec 32 kHz decoder shapes for 10 s of audio (50 Hz frames, upsampling 8*5*4*4).
  struct Conv { int64_t cin, cout, k, t; int stride; bool transposed; };
  const Conv convs[] = {
      {128, 1024, 7, 500, 1, false},     // first decoder conv at the frame rate
      {1024, 512, 3, 500, 1, false},     // residual block conv, deepest level
      {1024, 512, 16, 500, 8, true},     // upsample x8
      {128, 64, 3, 40000, 1, false},     // residual block conv, 5 kHz level
      {64, 1, 7, 320000, 1, false},      // final conv to audio
  };
  for (const Conv& c : convs) {
    Tensor x = random({1, c.cin, c.t}, 3);
    if (c.transposed) {
      Tensor w = random({c.cin, c.cout, c.k}, 4);
      double flops = 2.0 * c.cin * c.cout * c.k * c.t;
      time_case("conv_transpose1d " + std::to_string(c.cin) + "->" + std::to_string(c.cout) + " K=" +
                    std::to_string(c.k) + " s=" + std::to_string(c.stride) + " T=" + std::to_string(c.t),
                flops, seconds, [&] { cpu::conv_transpose1d(x, w, nullptr, c.stride, ex); });
    } else {
      Tensor w = random({c.cout, c.cin, c.k}, 4);
      double flops = 2.0 * c.cin * c.cout * c.k * (c.t - c.k + 1);
      time_case("conv1d " + std::to_string(c.cin) + "->" + std::to_string(c.cout) + " K=" + std::to_string(c.k) +
                    " T=" + std::to_string(c.t),
                flops, seconds, [&] { cpu::conv1d(x, w, nullptr, 1, 1, ex); });
    }
  }
  return 0;
}
