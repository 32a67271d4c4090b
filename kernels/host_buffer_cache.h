// Reuse of large host buffers while a long operation runs (Tensor::empty allocates through it).
//
// Why: glibc serves every allocation above 32 MB with a fresh mmap and gives it back with munmap on
// free, so each large tensor page-faults and the kernel zeroes all its pages again. EnCodec's outer
// levels make tens of such tensors per window (64 channels x 5 s at 32 kHz = 41 MB), and the faults
// cost 10-25% of the convolutions that wrote them (an ELU over 41 MB: 50 ms fresh, 14 ms reused).
//
// While at least one HostBufferReuse is alive (EnCodec encode/decode hold one), freed buffers of
// 1 MiB or more are kept, up to kHostCacheBytes in all, and handed to the next tensor that fits
// (at most 25% larger than asked). A buffer made inside a scope is made up to 12.5% larger than asked
// (a size class), so that the next window's request a frame longer still fits it. When the last
// HostBufferReuse ends, the kept buffers are freed, so an idle application holds no extra memory.
// Thread-safe; scopes may nest and overlap.
#pragma once

#include <cstddef>

namespace mg {

constexpr size_t kHostCacheMinBytes = size_t(1) << 20;
constexpr size_t kHostCacheBytes = size_t(256) << 20;

class HostBufferReuse {
 public:
  HostBufferReuse();
  ~HostBufferReuse();
  HostBufferReuse(const HostBufferReuse&) = delete;
  HostBufferReuse& operator=(const HostBufferReuse&) = delete;
};

// Hands the pages of freed heap memory back to the system (glibc's malloc_trim; elsewhere nothing).
// Why: glibc raises its mmap threshold (up to 32 MB) each time a large mapped block is freed, so
// later temporaries of a few MB come from its heap, whose pages stay resident after they are freed.
// A converting decoder load (stacked q|k|v, then cast or quantized) kept 12-80 MB so (musicgen-small
// q4 943 -> 895 MB peak, musicgen-medium bf16 4344 -> 4263 MB); the loader calls this at its end.
void trim_host_heap();

namespace detail {
// 64-byte aligned memory of at least `bytes` (throws mg::Error when out of memory); release() takes
// it back. Both go through the cache when it is active and the buffer is large.
void* host_alloc(size_t bytes, size_t* granted);
void host_release(void* p, size_t granted);
// Bytes held in the cache now (for tests).
size_t host_cache_bytes();
}  // namespace detail

}  // namespace mg
