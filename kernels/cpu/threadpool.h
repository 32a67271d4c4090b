// A small persistent thread pool for the CPU ops. Work is split into at most size() contiguous
// chunks with fixed boundaries, so a given thread count always cuts the work the same way and
// every output element is computed by exactly one thread: results never depend on scheduling.
// Chunks are claimed, not assigned: the caller takes the first, and any chunk no worker has
// started when the caller is free is run by the caller too, so a call never waits for a worker
// the OS has not scheduled yet (a busy machine) and costs at most what one thread would.
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
  void worker_loop();
  // Runs the chunks of the current job that nobody has claimed yet; `lock` holds mu_ on entry and
  // on return (released while a chunk runs).
  void run_unclaimed(std::unique_lock<std::mutex>& lock);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;    // bumped for each job; workers wait for a change
  bool stop_ = false;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
  int next_chunk_ = 0;         // the next chunk to claim
  int running_ = 0;            // chunks claimed and not finished
  std::exception_ptr error_;
  std::atomic<bool> busy_{false};
};

// [begin, end) of chunk `i` when n items are cut into `chunks` nearly equal pieces.
inline void chunk_range(int64_t n, int chunks, int i, int64_t* begin, int64_t* end) {
  int64_t base = n / chunks, extra = n % chunks;
  *begin = i * base + (i < extra ? i : extra);
  *end = *begin + base + (i < extra ? 1 : 0);
}

}  // namespace mg::cpu
