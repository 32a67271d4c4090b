// bench-ops: times the CPU ops that dominate MusicGen (linear: decode steps with 2 CFG rows and
// prompt prefill) and EnCodec (conv1d / conv_transpose1d on long audio), and prints GFLOP/s.
// Usage: bench-ops [threads] [seconds per case]
//        bench-ops attention [options]: decode-step attention over a KV cache (attention_bench.cpp)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>

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

// Runs fn until `seconds` have passed (at least 3 times) and prints flops / mean time.
void time_case(const std::string& name, double flops, double seconds, const std::function<void()>& fn) {
  fn();  // warm up (page faults, OpenBLAS buffers)
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  int reps = 0;
  double elapsed = 0.0;
  do {
    fn();
    ++reps;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < seconds || reps < 3);
  double per = elapsed / reps;
  std::printf("%-48s %9.3f ms  %8.2f GFLOP/s\n", name.c_str(), per * 1e3, flops / per * 1e-9);
}

}  // namespace

int run_attention_bench(int argc, char** argv);

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "attention") return run_attention_bench(argc, argv);
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
