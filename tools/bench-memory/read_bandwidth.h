// The host read loop of bench-memory, shared with bench-musicgen's paired probes (--probe-every):
// each thread sums its own contiguous slice of one large f32 buffer, read as S sub-slices in
// lockstep (S streams per thread, as a GEMV reads several weight rows at once), optionally with a
// software prefetch PF bytes ahead of each stream. The buffer comes in 4 KiB or 2 MiB pages and is
// first written by the threads that later read it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace mgbench {

// The sub-slices per thread and the prefetch distances (bytes ahead of each stream; 0: the
// hardware prefetcher alone) that the sweeps try.
constexpr int kReadStreams[] = {1, 2, 4, 8};
constexpr int kPrefetchDistances[] = {0, 1024, 4096};

// One pass of `threads` threads over n floats; returns seconds. sink (one float per thread) keeps
// the sums alive.
double read_pass(const float* buf, size_t n, int threads, int streams, int prefetch, std::vector<float>& sink);

struct ReadResult {
  double best, median;  // GB/s (1e9 B/s)
};

// `reps` passes after one warm-up pass (page tables, frequency): the best and the median.
ReadResult measure_read(const float* buf, size_t n, int threads, int streams, int prefetch, int reps);

// An n-float buffer in 4 KiB pages or (huge) in 2 MiB pages where the kernel grants them
// (madvise), first written by `threads` threads; data is nullptr when the memory is not there.
class ReadBuffer {
 public:
  ReadBuffer(size_t n, bool huge, int threads);
  ~ReadBuffer();
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  float* data = nullptr;
  size_t floats = 0;

 private:
  void* base_ = nullptr;
  size_t bytes_ = 0;
};

// The huge-page memory of this process in kB (AnonHugePages in /proc/self/smaps_rollup), -1 where
// unknown: says whether a 2 MiB buffer really is in 2 MiB pages.
long anon_huge_kb();

// A short read-bandwidth measurement to pair in time with timed work (bench-musicgen
// --probe-every): an mb-MiB buffer in 4 KiB pages and one in 2 MiB pages, read by `threads`
// threads. The constructor picks, per page size, the (streams, prefetch) pattern that reads
// fastest (one pass of each, as bench-memory sweeps them); measure() then reads each buffer
// `passes` times with its pattern and returns the best pass of all in GB/s: the best, not the
// median, so that a roofline divided by it can only come out high (conservative).
class ReadProbe {
 public:
  ReadProbe(size_t mb, int threads, int passes);
  double measure();
  std::string describe() const;  // buffer, threads, passes and the patterns picked

 private:
  struct Pattern {
    int streams = 8, prefetch = 0;
  };
  size_t mb_;
  int threads_, passes_;
  ReadBuffer small_pages_, huge_pages_;
  Pattern small_pattern_, huge_pattern_;
  std::vector<float> sink_;
  Pattern fastest(const ReadBuffer& b);
};

}  // namespace mgbench
