// Busy-waits of the CPU code (the thread pool's hand-offs, the LSTM's steps, the step lanes' pacing
// in lm/step_lanes.cpp): a wait there is shorter than a sleep and a wake-up would cost, so the
// waiting thread polls.
#pragma once

#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace mg::cpu {

// One polling iteration: tells the core (and a hyperthread sibling) that this is a wait loop.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#else
  std::this_thread::yield();
#endif
}

// Polls until done() is true: 4095 pauses, then giving the core away between polls, because the
// thread waited for may be the one that needs this core (a busy machine, more threads than cores).
template <typename Done>
void poll_then_yield(Done&& done) {
  for (int i = 1; !done(); ++i) {
    if (i < 4096) cpu_relax();
    else std::this_thread::yield();
  }
}

}  // namespace mg::cpu
