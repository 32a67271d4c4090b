// bench-memory: read bandwidth of this machine, the ceiling of a weight-streaming decode step.
//
//   bench-memory [--mb 1024] [--threads T] [--reps 10]
//   bench-memory --device cuda [--mb 1024] [--reps 10]
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
// decode steps it is compared with are averages over many steps too).
//
// --device cuda: device-to-device copies of an MB buffer through the Backend API (alloc, copy_rows,
// synchronize: kernels/ops.h), counted as bytes read + bytes written, as CUDA's bandwidthTest and
// vendors' HBM figures count them. Last line "copy_gbps <median>": the roofline of a GPU decode step
// (tools/bench-musicgen --copy-gbps). Only this mode uses the library.
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kernels/ops.h"

namespace {

// Sums n floats read as S contiguous parts in lockstep (64 floats per round in all; S is a
// template argument so that the 8 accumulators stay in registers). PF > 0: each stream also
// requests the line PF bytes ahead of it (software prefetch), as the decode GEMVs do for the weight
// rows they read next: on some machines that reads faster than the hardware prefetcher alone, and
// the bound is the fastest way to read, whichever it is.
template <int S, int PF>
__attribute__((target("avx2"))) float sum_avx2(const float* p, size_t n) {
  constexpr int streams = S;
  constexpr size_t step = 64 / S;
  const size_t part = n / size_t(streams) / 64 * 64;
  __m256 a[8];
  for (auto& v : a) v = _mm256_setzero_ps();
  for (size_t i = 0; i < part; i += step)
    for (int s = 0; s < streams; ++s) {
      if constexpr (PF > 0)
        if ((i * sizeof(float)) % 64 < step * sizeof(float))  // once per line of each stream
          _mm_prefetch(reinterpret_cast<const char*>(p + s * part + i) + PF, _MM_HINT_T0);
      for (size_t j = 0; j < step / 8; ++j) {
        __m256& acc = a[(size_t(s) * step / 8 + j) & 7];
        acc = _mm256_add_ps(acc, _mm256_load_ps(p + s * part + i + 8 * j));
      }
    }
  for (int j = 1; j < 8; ++j) a[0] = _mm256_add_ps(a[0], a[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, a[0]);
  float s = 0;
  for (float v : lanes) s += v;
  for (size_t i = part * streams; i < n; ++i) s += p[i];
  return s;
}

float sum_portable(const float* p, size_t n, int streams) {
  const size_t part = n / size_t(streams);
  float s[8] = {};
  for (size_t i = 0; i + 8 <= part; i += 8)
    for (int t = 0; t < streams; ++t)
      for (int j = 0; j < 8; ++j) s[j] += p[t * part + i + j];
  float t = 0;
  for (float v : s) t += v;
  for (size_t i = part / 8 * 8 * streams; i < n; ++i) t += p[i];
  return t;
}

// Prefetch distances tried (bytes ahead of each stream; 0: the hardware prefetcher alone).
constexpr int kPrefetchDistances[] = {0, 1024, 4096};

template <int S>
float sum_streams(const float* p, size_t n, int prefetch) {
  switch (prefetch) {
    case 1024: return sum_avx2<S, 1024>(p, n);
    case 4096: return sum_avx2<S, 4096>(p, n);
    default: return sum_avx2<S, 0>(p, n);
  }
}

float sum(const float* p, size_t n, int streams, int prefetch) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (!avx2) return sum_portable(p, n, streams);
  switch (streams) {
    case 1: return sum_streams<1>(p, n, prefetch);
    case 2: return sum_streams<2>(p, n, prefetch);
    case 4: return sum_streams<4>(p, n, prefetch);
    default: return sum_streams<8>(p, n, prefetch);
  }
}

// One pass of `threads` threads over the buffer; returns seconds.
double pass(const float* buf, size_t n, int threads, int streams, int prefetch, std::vector<float>& sink) {
  std::vector<std::thread> ts;
  auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      const size_t b = n * t / threads / 64 * 64, e = t + 1 == threads ? n : n * (t + 1) / threads / 64 * 64;
      sink[t] += sum(buf + b, e - b, streams, prefetch);
    });
  for (auto& th : ts) th.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Result {
  double best, median;
};

Result measure(const float* buf, size_t n, int threads, int streams, int prefetch, int reps) {
  std::vector<float> sink(threads, 0.0f);
  pass(buf, n, threads, streams, prefetch, sink);  // warm-up (page tables, frequency)
  std::vector<double> gbps;
  for (int r = 0; r < reps; ++r)
    gbps.push_back(double(n) * sizeof(float) / pass(buf, n, threads, streams, prefetch, sink) / 1e9);
  std::sort(gbps.begin(), gbps.end());
  if (sink[0] == 12345.0f) std::printf(" ");  // keeps the sums alive
  return {gbps.back(), gbps[gbps.size() / 2]};
}

// An n-float buffer in 4 KiB pages or (huge) in 2 MiB pages where the kernel grants them, first
// written by the threads that read it; nullptr when the memory is not there.
struct Buffer {
  float* data = nullptr;
  size_t bytes = 0;
  Buffer(size_t n, bool huge, int threads) {
    constexpr size_t kHuge = size_t(2) << 20;
    bytes = (n * sizeof(float) + kHuge - 1) / kHuge * kHuge + kHuge;  // room to align to 2 MiB
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    base = p;
    char* aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + kHuge - 1) / kHuge * kHuge);
    madvise(aligned, bytes - size_t(aligned - static_cast<char*>(p)), huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    data = reinterpret_cast<float*>(aligned);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        const size_t b = n * t / threads, e = n * (t + 1) / threads;
        for (size_t i = b; i < e; ++i) data[i] = float(i & 1023) * 1e-3f;
      });
    for (auto& th : ts) th.join();
  }
  ~Buffer() {
    if (base) munmap(base, bytes);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* base = nullptr;
};

// The huge-page memory of this process in kB (AnonHugePages in /proc/self/smaps_rollup): says
// whether the 2 MiB pass really ran in 2 MiB pages.
long anon_huge_kb() {
  FILE* f = std::fopen("/proc/self/smaps_rollup", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb;
}

int usage() {
  std::fprintf(stderr,
               "usage: bench-memory [--device cpu|cuda] [--mb MB (default 1024)] [--threads T (default all; cpu)] "
               "[--reps N (default 10)]\n");
  return 2;
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
    if (i + 1 >= argc) return usage();
    if (a == "--device") device = argv[++i];
    else if (a == "--mb") mb = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--threads") threads = std::atoi(argv[++i]);
    else if (a == "--reps") reps = std::atoi(argv[++i]);
    else return usage();
  }
  if (mb == 0 || threads < 1 || reps < 1 || (device != "cpu" && device != "cuda")) return usage();
  if (device == "cuda") return cuda_copy(mb, reps);
  const size_t n = mb * (1u << 20) / sizeof(float);
  std::printf("buffer %zu MB, %d passes each, %s\n", mb, reps,
              __builtin_cpu_supports("avx2") ? "AVX2 loads" : "portable loads");
  double best = 0;
  for (const bool huge : {false, true}) {
    Buffer buf(n, huge, threads);
    if (!buf.data) {
      std::fprintf(stderr, "bench-memory: cannot map %zu MB\n", mb);
      return 1;
    }
    const long huge_kb = anon_huge_kb();
    std::printf("%s pages (%ld MB of this process in 2 MiB pages)\n", huge ? "2 MiB" : "4 KiB",
                huge_kb < 0 ? -1 : huge_kb / 1024);
    for (int t : {1, threads}) {
      for (int streams : {1, 2, 4, 8})
        for (int prefetch : kPrefetchDistances) {
          Result r = measure(buf.data, n, t, streams, prefetch, reps);
          std::printf("  %2d thread%s x %d stream%s, prefetch %4d B: best %6.2f GB/s, median %6.2f GB/s\n", t,
                      t == 1 ? " " : "s", streams, streams == 1 ? " " : "s", prefetch, r.best, r.median);
          best = std::max(best, r.median);
        }
      if (threads == 1) break;
    }
  }
  std::printf("read_gbps %.3f\n", best);
  return 0;
}
