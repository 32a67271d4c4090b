// bench-device-ops: every row of the device op case table (device_op_cases.h) on a device backend
// at full-size shapes (musicgen-small's decode step: D 1024, FFN 4096, 16 heads, 4 x 2048 codes, CFG
// pair; EnCodec 32 kHz's layers), each checked against the CPU backend on random inputs (never
// zeros) and then timed, with the achieved GB/s (bytes the op must move) or TFLOP/s next to the
// card's ceiling. The GPU test (tests/gpu/cuda_op_cases_test.cpp) walks the same table at small sizes.
//
//   bench-device-ops [--device cuda] [--copy-gbps 4000] [--tflops 60] [--reps 50] [--filter linear]
//                    [--size small]
//
// Timing: `reps` back-to-back calls of the op are captured as ONE recording (Backend::record: a CUDA
// graph) and the recording is replayed, so what is measured is device time, not launch cost; with
// --eager each call is launched on its own instead (what the graph saves). --copy-gbps: the device
// copy bandwidth (bench-memory --device cuda), the ceiling of the memory-bound ops; --tflops: the
// f32 peak to compare the compute-bound ones with (H200: 67 TFLOP/s f32 on paper).
// Works on the CPU backend too (--device cpu), where the check is trivially exact: with --size small
// that runs every row's test inputs, a check of the table itself on a machine without a GPU.
// Last lines: "OP name=... rel_err=... us=... gbps=... tflops=... pct=..." per case, machine-readable
// (rel_err is the case's error measure: 0/1 for the exact ones, 1e30 for NaN or a wrong shape).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "kernels/ops.h"
#include "tools/bench-device-ops/device_op_cases.h"

namespace {

using mg::Backend;
using mg::Tensor;

struct Options {
  double copy_gbps = 0, tflops = 0;
  int reps = 50;
  bool eager = false;
};

using clock_type = std::chrono::steady_clock;

// Checks one input set of a case against the CPU, times it on `dev` and prints its two lines.
// Returns whether it was within the case's tolerance.
bool bench(const mgcases::DeviceOpCase& c, const mgcases::OpInputs& in, Backend& dev, Backend& cpu, Options o) {
  if (in.heavy) o.reps = 2;  // itself thousands of launches, or long: a couple of calls per timing
  const std::string name = c.name + " " + in.tag;
  const double err = mgcases::check_against_cpu(c, in, dev, cpu);
  const auto run = mgcases::prepare(c, in, dev);
  // Timing: reps calls in one recording (device time), or launched one by one (--eager).
  Tensor sink;
  std::unique_ptr<Backend::Recording> rec;
  if (!o.eager) rec = dev.record([&] {
    for (int i = 0; i < o.reps; ++i) sink = run();
  });
  auto once = [&] {
    if (rec) {
      rec->replay();
    } else {
      for (int i = 0; i < o.reps; ++i) sink = run();
    }
    dev.synchronize();
  };
  once();  // warm-up
  double best = INFINITY;
  for (int t = 0; t < 5; ++t) {
    const auto t0 = clock_type::now();
    once();
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - t0).count() / o.reps);
  }
  const double gbps = in.bytes / best / 1e9, tflops = in.flops / best / 1e12;
  double pct = 0;
  if (in.flops > 0 && o.tflops > 0) pct = 100.0 * tflops / o.tflops;
  else if (in.bytes > 0 && o.copy_gbps > 0) pct = 100.0 * gbps / o.copy_gbps;
  std::printf("%-64s rel_err %.1e  %9.2f us  %8.1f GB/s  %7.2f TFLOP/s  %5.1f%% of %s\n", name.c_str(), err,
              best * 1e6, gbps, tflops, pct, in.flops > 0 ? "f32 peak" : "copy bandwidth");
  std::printf("OP name=%s rel_err=%.3e us=%.3f gbps=%.2f tflops=%.3f pct=%.1f\n", name.c_str(), err, best * 1e6, gbps,
              tflops, pct);
  std::fflush(stdout);
  return err <= c.tol;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Device ops at full-size shapes: checked against the CPU, timed, GB/s against the ceiling"};
  std::string device = "cuda", size = "full", filter;
  Options o;
  app.add_option("--device", device, "cuda or cpu")->check(CLI::IsMember({"cuda", "cpu"}))->capture_default_str();
  app.add_option("--copy-gbps", o.copy_gbps, "Device copy bandwidth (bench-memory --device cuda)");
  app.add_option("--tflops", o.tflops, "f32 peak TFLOP/s of the card");
  app.add_option("--reps", o.reps, "Calls per timed recording")->capture_default_str();
  app.add_flag("--eager", o.eager, "Launch each call on its own instead of replaying one recording");
  app.add_option("--filter", filter, "Only cases whose name contains this");
  app.add_option("--size", size, "full: the model's shapes; small: the GPU test's")
      ->check(CLI::IsMember({"full", "small"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (device == "cuda" && !mg::cuda_available()) {
      std::fprintf(stderr, "bench-device-ops: no CUDA device here (or a build without CUDA)\n");
      return 1;
    }
    auto cpu = mg::make_cpu_backend(0);
    auto dev = device == "cuda" ? mg::make_cuda_backend(0) : mg::make_cpu_backend(0);
    const mgcases::Size sz = size == "small" ? mgcases::Size::Small : mgcases::Size::Full;
    int failed = 0;
    for (const mgcases::DeviceOpCase& c : mgcases::device_op_cases())
      for (const mgcases::OpInputs& in : c.inputs(sz))
        if (filter.empty() || (c.name + " " + in.tag).find(filter) != std::string::npos)
          failed += bench(c, in, *dev, *cpu, o) ? 0 : 1;
    // Reported, not an exit status: the tolerances are the GPU test's, set for its small shapes, and
    // tools/gpu-check.sh judges the OP lines by its own bound.
    if (failed > 0) std::fprintf(stderr, "bench-device-ops: %d cases beyond the GPU test's tolerance\n", failed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-device-ops: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
