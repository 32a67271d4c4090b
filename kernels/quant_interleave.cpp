// Q8_0/Q4_0 rows <-> QuantLayout::Interleaved16 (the layout is described in kernels/quant.h).
// The CPU backend repacks decoder weights once at load; a group of 16 rows occupies exactly the
// bytes of those 16 rows, so the two layouts have the same size and the same tail, and a buffer can
// be repacked in place.
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/quant.h"
#include "kernels/weight_arena.h"

namespace mg {

namespace {

constexpr int64_t kGroup = 16;

size_t block_bytes(DType t) { return t == DType::Q8_0 ? kQ8BlockBytes : kQ4BlockBytes; }

void check_interleavable(const Tensor& w, QuantLayout from) {
  MG_CHECK(w.device == Device::CPU && dtype_is_quantized(w.dtype) && w.ndim() == 2 && w.layout == from,
           "interleave_rows16: expected a 2-D host q8_0/q4_0 tensor in ",
           from == QuantLayout::Rows ? "row" : "interleaved", " order, got ", dtype_name(w.dtype), " ",
           shape_str(w.shape), " on ", device_name(w.device));
}

// One group's 16 rows (row-ordered blocks) <-> its interleaved bytes: ToGroup packs src (rows) into
// dst (group), else unpacks src (group) into dst (rows). Both directions move the same byte pairs;
// q8_0's values are flipped (q + 128 in the group) by v ^ 0x80, which is its own inverse.
// (The direction is a template parameter, fixed per call rather than tested per byte: a load
// repacks every decoder weight through here.)
template <bool ToGroup>
void move_group(DType t, int64_t nb, const uint8_t* src, uint8_t* dst) {
  const size_t bb = block_bytes(t), row_bytes = size_t(nb) * bb;
  const uint8_t flip = t == DType::Q8_0 ? 0x80 : 0;
  auto move = [&](size_t row_at, size_t group_at, uint8_t mask) {
    if constexpr (ToGroup)
      dst[group_at] = src[row_at] ^ mask;
    else
      dst[row_at] = src[group_at] ^ mask;
  };
  for (int64_t b = 0; b < nb; ++b) {
    const size_t group_block = size_t(b) * kGroup * bb;
    for (int64_t r = 0; r < kGroup; ++r) {
      const size_t row_block = size_t(r) * row_bytes + size_t(b) * bb;
      for (size_t i = 0; i < 2; ++i) move(row_block + i, group_block + 2 * r + i, 0);  // the f16 scale
      for (size_t c = 0; c < (bb - 2) / 4; ++c)
        for (size_t i = 0; i < 4; ++i) move(row_block + 2 + 4 * c + i, group_block + 32 + 64 * c + 4 * r + i, flip);
    }
  }
}

// In place when w holds the only reference to its buffer (nothing else can see the bytes change):
// one group at a time through a group-sized scratch. A load then frees no large buffer as it goes
// (measured: a copy of each stacked or quantized source, freed at once, raised glibc's mmap
// threshold and left the heap fragmented: peak RSS +38 MB loading musicgen-small q8).
// With an arena (WeightArena: 2 MiB pages), always a copy into it.
Tensor convert(Tensor w, QuantLayout from, QuantLayout to, WeightArena* arena) {
  check_interleavable(w, from);
  const int64_t n = w.dim(0), nb = w.dim(1) / kQuantBlock;
  if (n < kGroup) return w;
  const bool in_place = !arena && w.owner && w.owner.use_count() == 1;
  Tensor out = in_place ? w : arena ? arena->empty(w.dtype, w.shape) : Tensor::empty(w.dtype, w.shape);
  out.layout = to;
  const size_t group_bytes = size_t(kGroup * nb) * block_bytes(w.dtype);
  std::vector<uint8_t> scratch(in_place ? group_bytes : 0);
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  uint8_t* dst = static_cast<uint8_t*>(out.data);
  const int64_t groups = n / kGroup;
  for (int64_t g = 0; g < groups; ++g) {
    const size_t at = size_t(g) * group_bytes;
    const uint8_t* from_bytes = src + at;
    if (in_place) from_bytes = static_cast<const uint8_t*>(std::memcpy(scratch.data(), src + at, group_bytes));
    if (to == QuantLayout::Interleaved16)
      move_group<true>(w.dtype, nb, from_bytes, dst + at);
    else
      move_group<false>(w.dtype, nb, from_bytes, dst + at);
  }
  const size_t tail = size_t(groups) * group_bytes;
  if (!in_place) std::memcpy(dst + tail, src + tail, w.nbytes() - tail);  // the last n % 16 rows: row order in both
  return out;
}

}  // namespace

Tensor interleave_rows16(Tensor w, WeightArena* arena) {
  return convert(std::move(w), QuantLayout::Rows, QuantLayout::Interleaved16, arena);
}
Tensor deinterleave_rows16(Tensor w) {
  return convert(std::move(w), QuantLayout::Interleaved16, QuantLayout::Rows, nullptr);
}

}  // namespace mg
