// The host read loop shared by bench-memory and bench-musicgen (read_bandwidth.h).
#include "read_bandwidth.h"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace mgbench {

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

double gbps_of(size_t n, double seconds) { return double(n) * sizeof(float) / seconds / 1e9; }

}  // namespace

double read_pass(const float* buf, size_t n, int threads, int streams, int prefetch, std::vector<float>& sink) {
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

ReadResult measure_read(const float* buf, size_t n, int threads, int streams, int prefetch, int reps) {
  std::vector<float> sink(threads, 0.0f);
  read_pass(buf, n, threads, streams, prefetch, sink);  // warm-up (page tables, frequency)
  std::vector<double> gbps;
  for (int r = 0; r < reps; ++r) gbps.push_back(gbps_of(n, read_pass(buf, n, threads, streams, prefetch, sink)));
  std::sort(gbps.begin(), gbps.end());
  if (sink[0] == 12345.0f) std::printf(" ");  // keeps the sums alive
  return {gbps.back(), gbps[gbps.size() / 2]};
}

ReadBuffer::ReadBuffer(size_t n, bool huge, int threads) {
  constexpr size_t kHuge = size_t(2) << 20;
  bytes_ = (n * sizeof(float) + kHuge - 1) / kHuge * kHuge + kHuge;  // room to align to 2 MiB
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  base_ = p;
  char* aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + kHuge - 1) / kHuge * kHuge);
  madvise(aligned, bytes_ - size_t(aligned - static_cast<char*>(p)), huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  data = reinterpret_cast<float*>(aligned);
  floats = n;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      const size_t b = n * t / threads, e = n * (t + 1) / threads;
      for (size_t i = b; i < e; ++i) data[i] = float(i & 1023) * 1e-3f;
    });
  for (auto& th : ts) th.join();
}

ReadBuffer::~ReadBuffer() {
  if (base_) munmap(base_, bytes_);
}

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

ReadProbe::ReadProbe(size_t mb, int threads, int passes)
    : mb_(mb),
      threads_(threads),
      passes_(passes),
      small_pages_(mb * (size_t(1) << 20) / sizeof(float), false, threads),
      huge_pages_(mb * (size_t(1) << 20) / sizeof(float), true, threads),
      sink_(size_t(threads), 0.0f) {
  if (!small_pages_.data || !huge_pages_.data)
    throw std::runtime_error("read probe: cannot map 2 x " + std::to_string(mb) +
                             " MiB for the bandwidth probe buffers; pass a smaller --probe-mb");
  small_pattern_ = fastest(small_pages_);
  huge_pattern_ = fastest(huge_pages_);
}

ReadProbe::Pattern ReadProbe::fastest(const ReadBuffer& b) {
  Pattern best;
  double best_gbps = 0;
  read_pass(b.data, b.floats, threads_, best.streams, best.prefetch, sink_);  // warm-up
  for (int streams : kReadStreams)
    for (int prefetch : kPrefetchDistances) {
      const double g = gbps_of(b.floats, read_pass(b.data, b.floats, threads_, streams, prefetch, sink_));
      if (g > best_gbps) {
        best_gbps = g;
        best = {streams, prefetch};
      }
    }
  return best;
}

double ReadProbe::measure() {
  double best = 0;
  for (int r = 0; r < passes_; ++r) {
    best = std::max(best, gbps_of(small_pages_.floats, read_pass(small_pages_.data, small_pages_.floats, threads_,
                                                                 small_pattern_.streams, small_pattern_.prefetch, sink_)));
    best = std::max(best, gbps_of(huge_pages_.floats, read_pass(huge_pages_.data, huge_pages_.floats, threads_,
                                                                huge_pattern_.streams, huge_pattern_.prefetch, sink_)));
  }
  if (sink_[0] == 12345.0f) std::printf(" ");  // keeps the sums alive
  return best;
}

std::string ReadProbe::describe() const {
  char s[256];
  std::snprintf(s, sizeof s,
                "%zu MiB in 4 KiB pages (%d streams, prefetch %d B) and in 2 MiB pages (%d streams, prefetch %d B), "
                "%d threads, best of %d passes each",
                mb_, small_pattern_.streams, small_pattern_.prefetch, huge_pattern_.streams, huge_pattern_.prefetch,
                threads_, passes_);
  return s;
}

}  // namespace mgbench
