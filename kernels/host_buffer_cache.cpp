#include "kernels/host_buffer_cache.h"

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <map>
#include <mutex>

#include "kernels/common.h"

namespace mg {

namespace {

// bytes rounded up to the next of 8 steps per doubling (at most 12.5% more). Why: EnCodec's windows
// differ by a frame or two of context (160,640 or 161,280 samples at 32 kHz), so one activation asks
// for slightly different sizes from window to window. With exact sizes the smaller requests took
// the larger kept buffers and the larger ones then missed, each miss a fresh mapping to fault in.
size_t size_class(size_t bytes) {
  size_t top = kHostCacheMinBytes;
  while (top < bytes) top <<= 1;
  const size_t step = top / 16;  // top / 2 .. top in 8 steps
  return (bytes + step - 1) / step * step;
}

class Cache {
 public:
  void enter() {
    std::lock_guard<std::mutex> lock(m_);
    ++scopes_;
  }
  void leave() {
    std::multimap<size_t, void*> drop;
    {
      std::lock_guard<std::mutex> lock(m_);
      if (--scopes_ > 0) return;
      drop.swap(free_);
      bytes_ = 0;
    }
    for (auto& kv : drop) std::free(kv.second);
  }
  void* take(size_t bytes, size_t* granted) {
    *granted = bytes;
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
      if (scopes_ > 0) *granted = size_class(bytes);  // kept afterwards: room for the next window's size
    }
    return std::aligned_alloc(64, *granted);
  }
  void give(void* p, size_t granted) {
    if (granted >= kHostCacheMinBytes && granted <= kHostCacheBytes) {
      std::lock_guard<std::mutex> lock(m_);
      if (scopes_ > 0) {
        // Make room by freeing the largest kept buffers first (the rarest sizes).
        while (bytes_ + granted > kHostCacheBytes && !free_.empty()) {
          auto last = std::prev(free_.end());
          std::free(last->second);
          bytes_ -= last->first;
          free_.erase(last);
        }
        free_.emplace(granted, p);
        bytes_ += granted;
        return;
      }
    }
    std::free(p);
  }
  size_t bytes() {
    std::lock_guard<std::mutex> lock(m_);
    return bytes_;
  }

 private:
  std::mutex m_;
  int scopes_ = 0;
  size_t bytes_ = 0;
  std::multimap<size_t, void*> free_;  // size -> buffer
};

// One per process, never destroyed: tensors freed during static destruction still find it.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

HostBufferReuse::HostBufferReuse() { cache().enter(); }
HostBufferReuse::~HostBufferReuse() { cache().leave(); }

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
