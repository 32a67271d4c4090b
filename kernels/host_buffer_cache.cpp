#include "kernels/host_buffer_cache.h"

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <algorithm>
#include <map>
#include <set>
#include <mutex>

#include "kernels/common.h"

namespace mg {

namespace {

class Cache {
 public:
  void enter(size_t budget) {
    std::lock_guard<std::mutex> lock(m_);
    budgets_.insert(budget);
  }
  void leave(size_t budget) {
    std::multimap<size_t, void*> drop;
    {
      std::lock_guard<std::mutex> lock(m_);
      budgets_.erase(budgets_.find(budget));
      if (budgets_.empty()) {
        drop.swap(free_);
        bytes_ = 0;
      } else {
        shrink_to(*budgets_.rbegin(), 0, drop);  // a larger scope ended: back under the others' cap
      }
    }
    for (auto& kv : drop) std::free(kv.second);
  }
  void* take(size_t bytes, size_t* granted) {
    if (bytes >= kHostCacheMinBytes) {
      std::lock_guard<std::mutex> lock(m_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= bytes + bytes / 4) {
        void* p = it->second;
        *granted = it->first;
        bytes_ -= it->first;
        free_.erase(it);
        return p;
      }
    }
    *granted = bytes;
    return std::aligned_alloc(64, bytes);
  }
  void give(void* p, size_t granted) {
    std::multimap<size_t, void*> drop;
    bool kept = false;
    if (granted >= kHostCacheMinBytes) {
      std::lock_guard<std::mutex> lock(m_);
      if (!budgets_.empty() && granted <= *budgets_.rbegin()) {
        shrink_to(*budgets_.rbegin(), granted, drop);
        free_.emplace(granted, p);
        bytes_ += granted;
        kept = true;
      }
    }
    if (!kept) std::free(p);
    for (auto& kv : drop) std::free(kv.second);  // outside the lock: munmap can take a while
  }
  size_t bytes() {
    std::lock_guard<std::mutex> lock(m_);
    return bytes_;
  }

 private:
  // Moves the largest kept buffers (the rarest sizes) to `drop` until `incoming` more bytes fit
  // under cap. Called with m_ held.
  void shrink_to(size_t cap, size_t incoming, std::multimap<size_t, void*>& drop) {
    while (bytes_ + incoming > cap && !free_.empty()) {
      auto last = std::prev(free_.end());
      bytes_ -= last->first;
      drop.emplace(last->first, last->second);
      free_.erase(last);
    }
  }

  std::mutex m_;
  std::multiset<size_t> budgets_;  // of the live scopes
  size_t bytes_ = 0;
  std::multimap<size_t, void*> free_;  // size -> buffer
};

// One per process, never destroyed: tensors freed during static destruction still find it.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

HostBufferReuse::HostBufferReuse(size_t budget) : budget_(std::max(budget, kHostCacheBytes)) {
  cache().enter(budget_);
}
HostBufferReuse::~HostBufferReuse() { cache().leave(budget_); }

void trim_host_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

namespace detail {

void* host_alloc(size_t bytes, size_t* granted) {
  void* p = cache().take(bytes, granted);
  MG_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes of host memory");
  return p;
}

void host_release(void* p, size_t granted) { cache().give(p, granted); }

size_t host_cache_bytes() { return cache().bytes(); }

}  // namespace detail

}  // namespace mg
