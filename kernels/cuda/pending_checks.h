// Checks that device kernels make and the host reads later: an embedding id outside its table, an
// i64 -> i32 cast that overflows. Reading the device's error flag after each such launch would
// cost a synchronisation per call (an EnCodec decode looks up every codebook), so the launches
// only set it and the backend reads it at its next synchronisation point (download, synchronize),
// where the host waits anyway. Each checked launch gets a tag (1, 2, ...) that its kernel writes
// into the flag only when the flag is still 0, so the flag names the first launch that failed,
// and this list says which op that was, with what inputs, for the error message.
// Plain C++ (no CUDA header), pinned by tests/unit/cuda_policy_test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/tensor.h"

namespace mg {
namespace cuda {

struct PendingCheck {
  std::string op;              // "embedding_sum", "cast i64 -> i32"
  std::vector<int64_t> vocab;  // the tables' sizes (embeddings); empty for a cast
  Tensor input;                // the ids / the cast's input, to name the culprit (undefined once dropped)
  Shape shape;                 // the input's shape, kept when the tensor is dropped
};

class PendingChecks {
 public:
  // Inputs are kept (device memory stays allocated) for the first this many checks after a
  // synchronisation point only: code that never synchronises must not pile up memory.
  static constexpr size_t kKeptInputs = 1024;

  // Registers a checked launch; returns the tag its kernel writes (>= 1).
  int add(PendingCheck check);
  bool empty() const { return checks_.empty(); }
  size_t size() const { return checks_.size(); }
  // The launch that wrote `tag`, or null for a tag this list does not know.
  const PendingCheck* find(int tag) const;
  void clear() { checks_.clear(); }

 private:
  std::vector<PendingCheck> checks_;  // tag t is checks_[t - 1]
};

// The message for a failed check. first_bad: "id 2049 at [3, 0]" style detail found by the caller
// on the host ("" when the input was not kept or shows nothing wrong any more).
std::string failed_check_message(const PendingCheck* check, int tag, const std::string& first_bad);

}  // namespace cuda
}  // namespace mg
