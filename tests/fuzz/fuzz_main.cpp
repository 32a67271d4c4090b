// The libFuzzer entry of one target: MG_FUZZ_TARGET (set by CMakeLists.txt) names the function of
// fuzz_entry.cpp this binary drives, so every target shares one harness file with the replay test.
#include <cstddef>
#include <cstdint>

#include "fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MG_FUZZ_TARGET(data, size);
  return 0;
}
