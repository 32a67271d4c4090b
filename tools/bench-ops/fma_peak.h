// The machine's f32 FMA peak, measured: the compute ceiling the GEMV benchmarks are put against
// (bench-ops peak, and bench-server-step's compute bound of a shared step). Each thread runs
// independent fused multiply-adds on registers only, 512-bit where the CPU has AVX-512F, else
// 256-bit with FMA3; nothing is read from memory, so the figure is the cores' arithmetic alone.
#pragma once

namespace mgbench {

struct FmaPeak {
  double gflops = 0;     // f32 GFLOP/s (an FMA counts 2), 0 where the CPU has no FMA
  int threads = 0;
  int vector_bits = 0;   // 512, 256, or 0 (no FMA)
};

// The best of `reps` timed runs of about seconds / reps each (after a warm-up one), `threads`
// threads started together; the time is the slowest thread's.
FmaPeak measure_fma_peak(int threads, double seconds = 0.1, int reps = 3);

}  // namespace mgbench
