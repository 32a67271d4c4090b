// Plain C++ (no CUDA header): see memory_policy.h.
#include "kernels/cuda/memory_policy.h"

#include "kernels/common.h"

namespace mg {
namespace cuda {

void CaptureDeferrals::begin() {
  std::lock_guard<std::mutex> lock(m_);
  MG_CHECK(!active_, "cuda record: recordings do not nest");
  active_ = true;
}

bool CaptureDeferrals::active() const {
  std::lock_guard<std::mutex> lock(m_);
  return active_;
}

std::vector<std::function<void()>> CaptureDeferrals::end() {
  std::lock_guard<std::mutex> lock(m_);
  active_ = false;
  std::vector<std::function<void()>> out;
  out.swap(waiting_);
  return out;
}

size_t CaptureDeferrals::waiting() const {
  std::lock_guard<std::mutex> lock(m_);
  return waiting_.size();
}

}  // namespace cuda
}  // namespace mg
