// The clocks of the codec benchmarks (bench-codec, bench-stream-decode).
#pragma once

#include <sys/resource.h>

#include <chrono>

namespace bench_codec {

// Wall-clock seconds from an arbitrary start.
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the whole process (every thread), user + system.
inline double cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace bench_codec
