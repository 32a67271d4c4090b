// The f32 FMA peak (fma_peak.h).
//
// Each thread keeps kChains independent accumulators in vector registers and adds a product to
// each per round: an FMA's latency (4 cycles on Zen 4 and recent Intel cores) times the FMAs a
// core retires per cycle (one 512-bit or two 256-bit on Zen 4) is at most 8 chains in flight, so
// 16 (512-bit, of 32 registers) and 12 (256-bit, of 16) keep the units full with nothing spilled
// (the loop body is only FMAs: objdump -d shows 16 vfmadd231ps and no loads or stores). The
// inputs come through local volatiles, so the compiler can neither fold the loop nor drop it
// (without -ffast-math it may not reassociate the chains either); the sums go out through one (no
// shared global that every thread writes).
#include "fma_peak.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace mgbench {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr int kChains512 = 16, kChains256 = 12;

// `rounds` rounds of kChains512 512-bit FMAs; returns the FLOPs done.
__attribute__((target("avx512f"))) double fma_rounds_512(long rounds) {
  volatile float one = 1.0f, small = 1e-3f;  // inputs the compiler cannot see through
  const __m512 a = _mm512_set1_ps(small), b = _mm512_set1_ps(small);
  __m512 acc[kChains512];
  for (int i = 0; i < kChains512; ++i) acc[i] = _mm512_set1_ps(one * float(i));
  for (long r = 0; r < rounds; ++r)
#pragma GCC unroll 16
    for (int i = 0; i < kChains512; ++i) acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
  __m512 s = acc[0];
  for (int i = 1; i < kChains512; ++i) s = _mm512_add_ps(s, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(s);  // the sums are used, so the FMAs stay
  (void)sink;
  return 2.0 * 16 * kChains512 * double(rounds);
}

// `rounds` rounds of kChains256 256-bit FMAs; returns the FLOPs done.
__attribute__((target("avx2,fma"))) double fma_rounds_256(long rounds) {
  volatile float one = 1.0f, small = 1e-3f;  // inputs the compiler cannot see through
  const __m256 a = _mm256_set1_ps(small), b = _mm256_set1_ps(small);
  __m256 acc[kChains256];
  for (int i = 0; i < kChains256; ++i) acc[i] = _mm256_set1_ps(one * float(i));
  for (long r = 0; r < rounds; ++r)
#pragma GCC unroll 12
    for (int i = 0; i < kChains256; ++i) acc[i] = _mm256_fmadd_ps(a, b, acc[i]);
  __m256 s = acc[0];
  for (int i = 1; i < kChains256; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float t = 0;
  for (float v : lanes) t += v;
  volatile float sink = t;  // the sums are used, so the FMAs stay
  (void)sink;
  return 2.0 * 8 * kChains256 * double(rounds);
}

int vector_bits() {
  if (__builtin_cpu_supports("avx512f")) return 512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 256;
  return 0;
}

double fma_rounds(int bits, long rounds) { return bits == 512 ? fma_rounds_512(rounds) : fma_rounds_256(rounds); }

// `threads` threads, released together, each running `rounds` rounds: GFLOP/s over the slowest.
double timed_run(int bits, int threads, long rounds) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> seconds(size_t(threads), 0.0), flops(size_t(threads), 0.0);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      const auto t0 = clock_type::now();
      flops[size_t(t)] = fma_rounds(bits, rounds);
      seconds[size_t(t)] = std::chrono::duration<double>(clock_type::now() - t0).count();
    });
  while (ready.load() < threads) {
  }
  go.store(true, std::memory_order_release);
  for (auto& th : ts) th.join();
  double total = 0;
  for (double f : flops) total += f;
  return total / *std::max_element(seconds.begin(), seconds.end()) / 1e9;
}

}  // namespace

FmaPeak measure_fma_peak(int threads, double seconds, int reps) {
  FmaPeak p;
  p.threads = std::max(1, threads);
  p.vector_bits = vector_bits();
  if (p.vector_bits == 0) return p;
  reps = std::max(1, reps);
  // Rounds for about seconds / reps per run, from a short first run (which also warms the clocks).
  const long probe_rounds = 1 << 16;
  const double probe_gflops = timed_run(p.vector_bits, 1, probe_rounds);
  const double flops_per_round = 2.0 * (p.vector_bits == 512 ? 16 * kChains512 : 8 * kChains256);
  const long rounds =
      std::max(probe_rounds, long(probe_gflops * 1e9 * (seconds / reps) / flops_per_round));
  for (int r = 0; r < reps; ++r) p.gflops = std::max(p.gflops, timed_run(p.vector_bits, p.threads, rounds));
  return p;
}

}  // namespace mgbench
