// The CUDA backend's memory rules that need no GPU to state (plain C++, compiled in every build so
// that tests/unit/cuda_policy_test.cpp pins them on any machine):
//  - CaptureDeferrals: what must not be freed while a CUDA graph is captured. A free inside a
//    capture is either captured (a stream-ordered free would then run at every replay) or illegal
//    (cudaFree of a recording's arena invalidates the capture), so frees that happen then wait
//    here and run when the capture has ended.
//  - retry_after_release: an allocation that fails is tried once more after the stream-ordered
//    pool has given its cached free blocks back to the driver (the pool keeps them for reuse, so
//    after a long run they can starve allocations made outside it: an arena, cuFFT's work area).
#pragma once

#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace mg {
namespace cuda {

class CaptureDeferrals {
 public:
  // From now on release() keeps what it is given. Throws mg::Error when a capture is already on
  // (recordings do not nest).
  void begin();
  bool active() const;
  // During a capture: keeps `release` for end() and returns true. Otherwise returns false without
  // calling it: the caller frees now. (A template so that nothing is wrapped outside a capture.)
  template <class F>
  bool defer(F&& release) {
    std::lock_guard<std::mutex> lock(m_);
    if (!active_) return false;
    waiting_.emplace_back(std::forward<F>(release));
    return true;
  }
  // Stops deferring and hands back what waited, in the order it came; the caller runs them once
  // the capture has ended.
  std::vector<std::function<void()>> end();
  size_t waiting() const;

 private:
  mutable std::mutex m_;  // a tensor may be dropped on another thread than the capturing one
  bool active_ = false;
  std::vector<std::function<void()>> waiting_;
};

// attempt() -> bool (success); on failure release() runs and attempt() is tried once more.
// Returns whether an attempt succeeded.
template <class Attempt, class Release>
bool retry_after_release(Attempt&& attempt, Release&& release) {
  if (attempt()) return true;
  release();
  return attempt();
}

}  // namespace cuda
}  // namespace mg
