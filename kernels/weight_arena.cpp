#include "kernels/weight_arena.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "kernels/common.h"
#include "kernels/quant.h"

namespace mg {

namespace {

constexpr size_t kHugePage = size_t(2) << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// `bytes` (a multiple of kHugePage) of 2 MiB-aligned memory advised for transparent huge pages or
// against them, owned by the returned pointer; null when out of memory.
std::shared_ptr<void> new_chunk(size_t bytes, bool huge_pages) {
#if defined(__linux__)
  // Map a page's worth more, then unmap what lies before the first 2 MiB boundary and after.
  void* raw = mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw), aligned = round_up(start, kHugePage);
  if (aligned > start) munmap(raw, aligned - start);
  if (start + kHugePage > aligned) munmap(reinterpret_cast<void*>(aligned + bytes), start + kHugePage - aligned);
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, bytes, huge_pages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);  // hints: without THP, ordinary pages
  return std::shared_ptr<void>(p, [bytes](void* q) { munmap(q, bytes); });
#else
  (void)huge_pages;
  void* p = std::aligned_alloc(kHugePage, bytes);
  if (p == nullptr) return nullptr;
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
#endif
}

}  // namespace

Tensor WeightArena::empty(DType t, const Shape& s) {
  for (int64_t d : s) MG_CHECK(d >= 0, "WeightArena: negative dimension in shape ", shape_str(s));
  if (dtype_is_quantized(t)) check_quantizable(t, s);
  Tensor shape_only;  // for its byte count
  shape_only.dtype = t;
  shape_only.shape = s;
  const size_t bytes = std::max<size_t>(round_up(shape_only.nbytes(), kAlign), kAlign);
  std::shared_ptr<void> chunk;
  size_t at = 0;
  if (bytes > kChunkBytes) {
    chunk = new_chunk(round_up(bytes, kHugePage), huge_pages_);
  } else {
    std::lock_guard<std::mutex> lock(m_);
    chunk = chunk_.lock();
    if (!chunk || used_ + bytes > chunk_size_) {
      chunk = new_chunk(kChunkBytes, huge_pages_);
      chunk_ = chunk;
      chunk_size_ = chunk ? kChunkBytes : 0;
      used_ = 0;
    }
    at = used_;
    used_ += bytes;
  }
  MG_CHECK(chunk != nullptr, "out of memory allocating ", bytes, " bytes for the weight ", shape_str(s),
           " (", dtype_name(t), ")");
  void* data = static_cast<uint8_t*>(chunk.get()) + at;
  return Tensor::view(data, t, s, Device::CPU, std::move(chunk));
}

bool huge_pages_from_env() {
  const char* v = std::getenv("MUSICGEN_HUGE_PAGES");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "on") == 0) return true;
  if (std::strcmp(v, "off") == 0) return false;
  throw Error(std::string("MUSICGEN_HUGE_PAGES='") + v +
              "' is not a setting: use on (the default: decoder weights in 2 MiB pages) or off (ordinary pages: "
              "faster loads where the host backs 2 MiB pages slowly) (or unset it)");
}

}  // namespace mg
