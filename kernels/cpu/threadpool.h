// A small persistent thread pool for the CPU ops. Work is split into at most size() contiguous
// chunks with fixed boundaries, so a given thread count always cuts the work the same way and
// every output element is computed by exactly one thread: results never depend on scheduling.
// Chunks are claimed, not assigned: the caller takes the first, and any chunk no worker has
// started when the caller is free is run by the caller too, so a call never waits for a worker
// the OS has not scheduled yet (a busy machine) and costs at most what one thread would.
//
// Hand-off without system calls: a decode step makes a few hundred calls of tens of microseconds
// each, and waking a sleeping thread through a futex costs about as much as the work. So a job is
// published with one atomic store, a worker that finished a job keeps polling for the next one for
// kSpinMicros before it sleeps on a condition variable, and the caller waits for the last chunk by
// polling an atomic counter. The poll is bounded, so idle pools (many sessions, a server between
// requests) sleep; a pool with more threads than cores never polls (it would take the cores from
// the threads doing the work).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mg::cpu {

// The most threads a pool runs. Far above any useful count (the ops stop scaling long before), and
// a bound: a thread count typed with extra zeros must be an error, not tens of thousands of threads.
constexpr int kMaxThreads = 1024;

class ThreadPool {
 public:
  // How long an idle worker polls for the next job before it sleeps: longer than the gaps between
  // the ops of a decode step, short enough that an idle pool costs nothing measurable.
  static constexpr int kSpinMicros = 200;

  // threads <= 0: one per hardware thread (at most kMaxThreads). threads == 1 starts no worker at
  // all. threads > kMaxThreads: mg::Error.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }  // workers + the caller

  // Calls fn(begin, end) over [0, n) in chunks of at least min_chunk items and blocks until all
  // are done; the calling thread takes the first chunk, and any chunk still unclaimed after it.
  // A call made while the pool is already busy (from inside fn, or from another thread) runs
  // serially on the caller instead of deadlocking. An exception thrown by the caller's chunk, or
  // else the first thrown by another, is rethrown here.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk = 1);

 private:
  // The job state in one atomic word: generation (32 bits) | chunk count (16) | next chunk (16).
  // A claim is a compare-and-swap that also checks the generation, so a worker that saw an older
  // job can never take a chunk of a newer one.
  static uint64_t pack(uint64_t gen, int chunks, int next) {
    return (gen << 32) | (uint64_t(chunks) << 16) | uint64_t(next);
  }
  static uint64_t generation_of(uint64_t s) { return s >> 32; }

  void worker_loop();
  // Waits until the job generation differs from `seen` (or stop); returns the state seen.
  uint64_t wait_for_job(uint64_t seen);
  // Claims the next chunk of generation `gen`: its index, or -1 when none is left (or the job changed).
  int claim(uint64_t gen);
  // Claims and runs chunks of generation `gen` until none is left.
  void run_chunks(uint64_t gen);
  void run_one(int chunk);

  std::vector<std::thread> workers_;
  bool spin_ = false;                    // workers poll between jobs (threads <= cores)
  std::atomic<uint64_t> state_{0};       // see pack()
  std::atomic<int> done_{0};             // chunks of the current job finished
  std::atomic<bool> stop_{false};
  // The current job, written by the caller before it publishes the generation; read only after a
  // successful claim (the job cannot end while one of its chunks is unfinished).
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
  std::mutex error_mu_;
  std::exception_ptr error_;             // the first exception of a worker's chunk
  // Sleeping workers: sleepers_ is raised under sleep_mu_ before a worker's last check, so a
  // caller that publishes a job and sees no sleeper knows every worker will see the job.
  std::mutex sleep_mu_;
  std::condition_variable wake_cv_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> busy_{false};
};

// [begin, end) of chunk `i` when n items are cut into `chunks` nearly equal pieces.
inline void chunk_range(int64_t n, int chunks, int i, int64_t* begin, int64_t* end) {
  int64_t base = n / chunks, extra = n % chunks;
  *begin = i * base + (i < extra ? i : extra);
  *end = *begin + base + (i < extra ? 1 : 0);
}

}  // namespace mg::cpu
