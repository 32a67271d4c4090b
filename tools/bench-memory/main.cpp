// bench-memory: read bandwidth of this machine, the ceiling of a weight-streaming decode step.
//
//   bench-memory [--mb 1024] [--threads T] [--reps 10]
//   bench-memory --device cuda [--mb 1024] [--reps 10]
//   bench-memory --handoff
//
// Each thread sums its own contiguous slice of one large f32 buffer (much larger than the caches),
// with 8 independent AVX2 accumulators when the CPU has them. A slice is read as S sub-slices in
// lockstep (S = 1, 2, 4, 8 streams per thread), as a GEMV reads several weight rows at once: on
// the 2-core Xeon VM this was written on one stream per thread gets about half of what 8 get.
// The buffer is first written by the thread that later reads it (first touch puts the pages near it).
// It is measured twice: in ordinary 4 KiB pages and in 2 MiB pages (madvise(MADV_HUGEPAGE), as
// the CPU backend keeps its converted and repacked weights: kernels/weight_arena.h). A stream
// that crosses a 4 KiB page misses the TLB and restarts the hardware prefetcher, so the 2 MiB
// figure is the higher one where transparent huge pages are available, and the physical bound.
// Reports the best and the median of `reps` passes per (pages, threads, streams), in GB/s (1e9
// B/s). The last line, "read_gbps <highest median>", is what tools/bench-musicgen/run.sh parses: the median,
// not the best pass, because on a shared machine a lone pass can catch the other tenants idle (the
// decode steps it is compared with are averages over many steps too). The read loop and the
// buffers are in read_bandwidth.cpp, which bench-musicgen --probe-every also runs between its
// decode windows (a bandwidth paired in time with the steps it bounds). Before that last line: how
// long a cache line takes to go from one core to the other (core_handoff.h), the cost every op
// pays when it reads what the other thread of the pool wrote.
//
// --device cuda: device-to-device copies of an MB buffer through the Backend API (alloc, copy_rows,
// synchronize: kernels/ops.h), counted as bytes read + bytes written, as CUDA's bandwidthTest and
// vendors' HBM figures count them. Last line "copy_gbps <median>": the roofline of a GPU decode step
// (tools/bench-musicgen --copy-gbps). Only this mode uses the library.
//
// --handoff: only the core-to-core hand-off, as "core_handoff_ns N" (-1: fewer than two CPUs, or
// threads cannot be pinned), in a few milliseconds. tools/bench-server/bench_server.py runs it
// around each round to tell the VM's two placements of its vCPUs apart (docs/PERFORMANCE.md,
// "Machine").
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench-common/whole_number.h"
#include "core_handoff.h"
#include "kernels/ops.h"
#include "read_bandwidth.h"

namespace {

using mgbench::kPrefetchDistances;
using mgbench::kReadStreams;

int usage(FILE* to = stderr) {
  std::fprintf(to,
               "usage: bench-memory [--device cpu|cuda] [--mb MB (default 1024)] [--threads T (default all; cpu)] "
               "[--reps N (default 10)]\n"
               "       bench-memory --handoff   (only the core-to-core hand-off: core_handoff_ns N)\n");
  return to == stderr ? 2 : 0;
}

// Device copy bandwidth: `reps` timed copies of an mb-MiB buffer into another, after one warm-up.
int cuda_copy(size_t mb, int reps) {
  if (!mg::cuda_available()) {
    std::fprintf(stderr, "bench-memory: --device cuda: no CUDA device here (or a build without CUDA)\n");
    return 1;
  }
  try {
    auto be = mg::make_cuda_backend(0);
    // Rows of 4 MiB; the contents do not matter to a copy, so the buffers stay uninitialised.
    const int64_t cols = int64_t(1) << 20, rows = std::max<int64_t>(1, int64_t(mb) / 4);
    mg::Tensor src = be->alloc(mg::DType::F32, {rows, cols});
    mg::Tensor dst = be->alloc(mg::DType::F32, {rows, cols});
    const double bytes = double(src.nbytes());
    be->copy_rows(dst, 0, src);  // warm-up (first touch, clocks)
    be->synchronize();
    std::vector<double> gbps;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      be->copy_rows(dst, 0, src);
      be->synchronize();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      gbps.push_back(2.0 * bytes / s / 1e9);
    }
    std::sort(gbps.begin(), gbps.end());
    std::printf("cuda device copy of %.0f MiB, %d copies: best %7.1f GB/s, median %7.1f GB/s (read + written)\n",
                bytes / (1 << 20), reps, gbps.back(), gbps[gbps.size() / 2]);
    std::printf("copy_gbps %.3f\n", gbps[gbps.size() / 2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-memory: cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  size_t mb = 1024;
  int threads = int(std::max(1u, std::thread::hardware_concurrency())), reps = 10;
  std::string device = "cpu";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return usage(stdout);
    if (a == "--handoff") {
      std::printf("core_handoff_ns %.0f\n", mgbench::core_handoff_ns());
      return 0;
    }
    if (i + 1 >= argc) return usage();
    const char* value = argv[++i];
    using mgbench::whole_number;
    bool ok = true;
    if (a == "--device") device = value;
    else if (a == "--mb") ok = whole_number("bench-memory", "--mb", value, 1, 1 << 20, &mb);
    else if (a == "--threads") ok = whole_number("bench-memory", "--threads", value, 1, 256, &threads);
    else if (a == "--reps") ok = whole_number("bench-memory", "--reps", value, 1, 100000, &reps);
    else return usage();
    if (!ok) return 2;
  }
  if (device != "cpu" && device != "cuda") {
    std::fprintf(stderr, "bench-memory: --device %s: expected cpu or cuda\n", device.c_str());
    return 2;
  }
  if (device == "cuda") return cuda_copy(mb, reps);
  const size_t n = mb * (1u << 20) / sizeof(float);
  std::printf("buffer %zu MB, %d passes each, %s\n", mb, reps,
              __builtin_cpu_supports("avx2") ? "AVX2 loads" : "portable loads");
  double best = 0;
  for (const bool huge : {false, true}) {
    mgbench::ReadBuffer buf(n, huge, threads);
    if (!buf.data) {
      std::fprintf(stderr, "bench-memory: cannot map %zu MB\n", mb);
      return 1;
    }
    const long huge_kb = mgbench::anon_huge_kb();
    std::printf("%s pages (%ld MB of this process in 2 MiB pages)\n", huge ? "2 MiB" : "4 KiB",
                huge_kb < 0 ? -1 : huge_kb / 1024);
    for (int t : {1, threads}) {
      for (int streams : kReadStreams)
        for (int prefetch : kPrefetchDistances) {
          const mgbench::ReadResult r = mgbench::measure_read(buf.data, n, t, streams, prefetch, reps);
          std::printf("  %2d thread%s x %d stream%s, prefetch %4d B: best %6.2f GB/s, median %6.2f GB/s\n", t,
                      t == 1 ? " " : "s", streams, streams == 1 ? " " : "s", prefetch, r.best, r.median);
          best = std::max(best, r.median);
        }
      if (threads == 1) break;
    }
  }
  const double handoff = mgbench::core_handoff_ns();
  if (handoff > 0) std::printf("core-to-core hand-off of a cache line: %.0f ns (core_handoff.h)\n", handoff);
  std::printf("read_gbps %.3f\n", best);
  return 0;
}
