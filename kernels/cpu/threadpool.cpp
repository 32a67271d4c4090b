#include "kernels/cpu/threadpool.h"

#include <algorithm>

#include "kernels/common.h"

namespace mg::cpu {

ThreadPool::ThreadPool(int threads) {
  MG_CHECK(threads <= kMaxThreads, "n_threads must be at most ", kMaxThreads, " (0: all cores), found ", threads);
  if (threads <= 0) threads = std::clamp(int(std::thread::hardware_concurrency()), 1, kMaxThreads);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_unclaimed(std::unique_lock<std::mutex>& lock) {
  while (next_chunk_ < job_chunks_) {
    const int i = next_chunk_++;
    ++running_;
    const auto* job = job_;
    int64_t b, e;
    chunk_range(job_n_, job_chunks_, i, &b, &e);
    lock.unlock();
    std::exception_ptr err;
    try {
      (*job)(b, e);
    } catch (...) {
      err = std::current_exception();
    }
    lock.lock();
    if (err && !error_) error_ = err;
    if (--running_ == 0 && next_chunk_ >= job_chunks_) done_cv_.notify_one();
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    run_unclaimed(lock);  // nothing left when the caller was faster: the job may be over already
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                              int64_t min_chunk) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  int chunks = static_cast<int>(std::min<int64_t>(size(), (n + min_chunk - 1) / min_chunk));
  bool expected = false;
  if (chunks <= 1 || !busy_.compare_exchange_strong(expected, true)) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  job_ = &fn;
  job_n_ = n;
  job_chunks_ = chunks;
  next_chunk_ = 1;  // chunk 0 is the caller's
  running_ = 1;
  error_ = nullptr;
  ++generation_;
  lock.unlock();
  start_cv_.notify_all();
  std::exception_ptr mine;
  int64_t b, e;
  chunk_range(n, chunks, 0, &b, &e);
  try {
    fn(b, e);
  } catch (...) {
    mine = std::current_exception();
  }
  lock.lock();
  --running_;
  run_unclaimed(lock);  // what no worker has started yet
  done_cv_.wait(lock, [&] { return running_ == 0; });
  std::exception_ptr err = mine ? mine : error_;
  job_ = nullptr;
  job_chunks_ = 0;
  next_chunk_ = 0;
  lock.unlock();
  busy_.store(false);
  if (err) std::rethrow_exception(err);
}

}  // namespace mg::cpu
