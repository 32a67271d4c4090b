// Plain C++ (no CUDA header): see pending_checks.h.
#include "kernels/cuda/pending_checks.h"

#include <climits>

#include "kernels/common.h"

namespace mg {
namespace cuda {

int PendingChecks::add(PendingCheck check) {
  MG_CHECK(checks_.size() < size_t(INT_MAX), "cuda: too many checked launches without a synchronisation");
  check.shape = check.input.shape;
  if (checks_.size() >= kKeptInputs) check.input = Tensor();
  checks_.push_back(std::move(check));
  return int(checks_.size());
}

const PendingCheck* PendingChecks::find(int tag) const {
  if (tag < 1 || size_t(tag) > checks_.size()) return nullptr;
  return &checks_[size_t(tag) - 1];
}

std::string failed_check_message(const PendingCheck* check, int tag, const std::string& first_bad) {
  if (!check) return strcat("cuda: a device-side check failed (checked launch ", tag, ", no longer known)");
  const char* when = " (found at the first synchronisation after the call)";
  if (check->vocab.empty())
    return strcat("cuda ", check->op, ": a value of ", shape_str(check->shape), " does not fit in i32", when);
  if (!first_bad.empty()) return strcat("cuda ", check->op, ": ", first_bad, when);
  std::string sizes;
  for (int64_t v : check->vocab) sizes += (sizes.empty() ? "" : ", ") + std::to_string(v);
  return strcat("cuda ", check->op, ": an id of ", shape_str(check->shape), " is outside its table (sizes ", sizes,
                ")", when);
}

}  // namespace cuda
}  // namespace mg
