// How long one cache line takes to go from one core to another: two threads, pinned to the first
// two CPUs this process may use, take turns writing one atomic word (a ping-pong); half the round
// trip is one hand-off.
//
// Why: every op of a decode step is split over the thread pool, and the next op reads what the
// other thread wrote. On the 2-vCPU VM the same binary's shared step moved between ~27 and ~31 ms
// while its kernels alone ran at their best and memory read fastest; a hand-off of ~170 ns in
// those periods says where the time went (the two vCPUs far apart: other CCDs or sockets), so
// bench-memory and bench-server-step print it beside their own figures.
#pragma once

namespace mgbench {

// Nanoseconds per hand-off (the median of 5 runs of 20000 round trips); -1 when this process may
// run on fewer than two CPUs or cannot pin its threads.
double core_handoff_ns();

}  // namespace mgbench
