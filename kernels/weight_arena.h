// Host memory for tensors that live as long as a model: the CPU backend's repacked q8_0/q4_0
// decoder weights and its f32/bf16/f16 ones (kernels/cpu/cpu_backend.cpp upload_linear_weight).
//
// Why: a decode step reads every weight once, 4 KiB page after 4 KiB page, and a page is as far as
// the hardware prefetchers follow a stream; each new page also costs a TLB miss. Weights in 2 MiB
// pages stream faster: measured (bench-quant linear-style A/B, q4_0 x16, 2 rows, 2 threads, load
// 4) [1024, 1024] 21.5 -> 18.8 us, [4096, 1024] 83.6 -> 70.0 us, [1024, 4096] 59.7 -> 52.0 us; the
// whole musicgen-small q4 decode step ~15-20% faster. Linux backs anonymous memory with 2 MiB pages
// only inside one mapping, 2 MiB-aligned, advised MADV_HUGEPAGE (transparent_hugepage "madvise",
// the usual default), while each tensor of its own is a separate malloc'd mapping of 0.6-4.7 MB:
// so the arena packs many tensors into large 2 MiB-aligned chunks, with no size rounding (a 1024 x
// 1024 q4_0 weight in a 2 MiB page of its own would waste 1.4 MB).
//
// A tensor keeps its chunk alive (the chunk is its owner), so tensors may outlive the arena; the
// arena itself holds no chunk (only a weak reference to the one it is filling), so freeing every
// tensor of a chunk frees the chunk. Thread-safe. Elsewhere than Linux: ordinary aligned memory.
//
// The 2 MiB pages can be turned off (MUSICGEN_HUGE_PAGES=off, read when a CPU backend is made):
// some hosts back a fresh 2 MiB page slowly. On the 2-vCPU Firecracker VM of docs/PERFORMANCE.md
// the f32 musicgen-small load took 2.5-9.4 s with them and 1.3-1.7 s without, for a decode step
// 0-11% faster with them: there one short generation finishes sooner without them, while a server
// that loads once keeps them.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>

#include "kernels/tensor.h"

namespace mg {

class WeightArena {
 public:
  static constexpr size_t kChunkBytes = size_t(32) << 20;  // a multiple of the 2 MiB page
  static constexpr size_t kAlign = 64;                     // each tensor's start (SIMD loads)

  // huge_pages: the chunks advised for 2 MiB pages (MADV_HUGEPAGE), else kept in ordinary pages
  // (MADV_NOHUGEPAGE, also where transparent huge pages are "always").
  explicit WeightArena(bool huge_pages = true) : huge_pages_(huge_pages) {}
  bool huge_pages() const { return huge_pages_; }

  // An uninitialised CPU tensor of dtype t and shape s in the arena (a chunk of its own when larger
  // than kChunkBytes). Throws mg::Error when out of memory.
  Tensor empty(DType t, const Shape& s);

 private:
  std::mutex m_;
  const bool huge_pages_;
  std::weak_ptr<void> chunk_;  // the chunk being filled
  size_t chunk_size_ = 0, used_ = 0;
};

// MUSICGEN_HUGE_PAGES: unset, "" or "on" -> true (the default), "off" -> false; anything else is an
// mg::Error.
bool huge_pages_from_env();

}  // namespace mg
