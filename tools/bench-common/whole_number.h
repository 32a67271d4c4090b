// Command-line numbers for the bench tools that parse their options by hand (bench-memory,
// bench-server-step): one parser, so that each refuses the same malformed values the same way.
// Header only: this folder has no CMakeLists.txt and builds nothing; a tool includes it as
// "bench-common/whole_number.h" with ${PROJECT_SOURCE_DIR}/tools on its include path.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace mgbench {

// s as a whole decimal number in [lo, hi] into *out. "abc", "", "2.5", "2x" and values out of
// range (or out of a long's) are refused with "<tool>: <name> <s>: expected a whole number from lo
// to hi" on stderr, and *out is left as it was.
template <typename Int>
bool whole_number(const char* tool, const char* name, const char* s, long lo, long hi, Int* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) {
    std::fprintf(stderr, "%s: %s %s: expected a whole number from %ld to %ld\n", tool, name, s, lo, hi);
    return false;
  }
  *out = Int(v);
  return true;
}

}  // namespace mgbench
