#include "kernels/cpu/threadpool.h"

#include <algorithm>
#include <chrono>

#include "kernels/common.h"
#include "kernels/cpu/spin.h"

namespace mg::cpu {

namespace {


using Clock = std::chrono::steady_clock;

}  // namespace

ThreadPool::ThreadPool(int threads) {
  MG_CHECK(threads <= kMaxThreads, "n_threads must be at most ", kMaxThreads, " (0: all cores), found ", threads);
  const int cores = std::clamp(int(std::thread::hardware_concurrency()), 1, kMaxThreads);
  if (threads <= 0) threads = cores;
  spin_ = threads <= cores;
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    stop_.store(true);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

uint64_t ThreadPool::wait_for_job(uint64_t seen) {
  if (spin_) {
    const auto deadline = Clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int i = 1;; ++i) {
      const uint64_t s = state_.load(std::memory_order_acquire);
      if (generation_of(s) != seen || stop_.load(std::memory_order_relaxed)) return s;
      cpu_relax();
      if (i % 64 == 0 && Clock::now() > deadline) break;
    }
  }
  std::unique_lock<std::mutex> lock(sleep_mu_);
  sleepers_.fetch_add(1);  // seq_cst: ordered before the check below (see parallel_for)
  uint64_t s = 0;
  wake_cv_.wait(lock, [&] {
    s = state_.load();
    return generation_of(s) != seen || stop_.load();
  });
  sleepers_.fetch_sub(1);
  return s;
}

int ThreadPool::claim(uint64_t gen) {
  uint64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    const int chunks = int((s >> 16) & 0xffff), next = int(s & 0xffff);
    if (generation_of(s) != gen || next >= chunks) return -1;
    if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) return next;
  }
}

void ThreadPool::run_one(int chunk) {
  int64_t b, e;
  chunk_range(job_n_, job_chunks_, chunk, &b, &e);
  try {
    (*job_)(b, e);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mu_);
    if (!error_) error_ = std::current_exception();
  }
  done_.fetch_add(1, std::memory_order_release);
}

void ThreadPool::run_chunks(uint64_t gen) {
  for (int c = claim(gen); c >= 0; c = claim(gen)) run_one(c);
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    const uint64_t s = wait_for_job(seen);
    if (stop_.load()) return;
    seen = generation_of(s);
    run_chunks(seen);  // nothing left when the caller was faster: the job may be over already
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
  // No worker touches the job fields now: every chunk of the previous job is done, and a claim
  // needs the new generation, published below with release order after these writes.
  job_ = &fn;
  job_n_ = n;
  job_chunks_ = chunks;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    error_ = nullptr;
  }
  done_.store(0, std::memory_order_relaxed);
  const uint64_t gen = (generation_of(state_.load(std::memory_order_relaxed)) + 1) & 0xffffffffu;
  state_.store(pack(gen, chunks, 1), std::memory_order_seq_cst);  // chunk 0 is the caller's
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    // Taking the lock waits out a worker between raising sleepers_ and sleeping.
    { std::lock_guard<std::mutex> lock(sleep_mu_); }
    wake_cv_.notify_all();
  }
  std::exception_ptr mine;
  int64_t b, e;
  chunk_range(n, chunks, 0, &b, &e);
  try {
    fn(b, e);
  } catch (...) {
    mine = std::current_exception();
  }
  done_.fetch_add(1, std::memory_order_relaxed);
  run_chunks(gen);  // what no worker has started yet
  // The chunks left run on workers that are already in them: poll, then give the core away.
  poll_then_yield([&] { return done_.load(std::memory_order_acquire) >= chunks; });
  std::exception_ptr err;
  if (mine) err = mine;
  else {
    std::lock_guard<std::mutex> lock(error_mu_);
    err = error_;
  }
  busy_.store(false);
  if (err) std::rethrow_exception(err);
}

}  // namespace mg::cpu
