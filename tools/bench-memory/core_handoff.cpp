#include "core_handoff.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace mgbench {

namespace {

#if defined(__linux__)
bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// One run: `trips` round trips of the flag between the calling thread (on cpu a) and a helper (b).
double run_ns(int a, int b, int trips) {
  alignas(64) std::atomic<int> flag{0};
  std::atomic<bool> pinned{true};
  std::thread helper([&] {
    if (!pin_to(b)) pinned = false;
    for (int i = 0; i < trips; ++i) {
      while (flag.load(std::memory_order_acquire) != 2 * i + 1) {
      }
      flag.store(2 * i + 2, std::memory_order_release);
    }
  });
  cpu_set_t before;
  const bool saved = sched_getaffinity(0, sizeof before, &before) == 0;
  if (!pin_to(a)) pinned = false;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < trips; ++i) {
    flag.store(2 * i + 1, std::memory_order_release);
    while (flag.load(std::memory_order_acquire) != 2 * i + 2) {
    }
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  helper.join();
  if (saved) pthread_setaffinity_np(pthread_self(), sizeof before, &before);  // unpinned again
  return pinned ? ns / trips / 2 : -1;
}
#endif

}  // namespace

double core_handoff_ns() {
#if defined(__linux__)
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return -1;
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c)
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  if (cpus.size() < 2) return -1;
  std::vector<double> runs;
  for (int r = 0; r < 5; ++r) {
    const double ns = run_ns(cpus[0], cpus[1], 20000);
    if (ns < 0) return -1;
    runs.push_back(ns);
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
#else
  return -1;
#endif
}

}  // namespace mgbench
