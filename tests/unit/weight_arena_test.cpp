// kernels/weight_arena.h: tensors packed into shared 2 MiB-aligned chunks, each 64-byte aligned and
// disjoint from the others, alive as long as any tensor of their chunk (not the arena); a tensor
// larger than a chunk gets one of its own; on Linux the chunks are advised for huge pages.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/weight_arena.h"
#include "kernels/quant.h"

using namespace mg;

TEST(WeightArena, TensorsAreAlignedDisjointAndShareChunks) {
  WeightArena arena;
  std::vector<Tensor> t;
  for (int64_t n : {1, 7, 1024, 33, 4096}) t.push_back(arena.empty(DType::F32, {n, 3}));
  t.push_back(arena.empty(DType::Q4_0, {48, 1024}));
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t[i].data) % WeightArena::kAlign, 0u) << i;
    EXPECT_EQ(t[i].device, Device::CPU);
    std::memset(t[i].data, int(i + 1), t[i].nbytes());
  }
  for (size_t i = 0; i < t.size(); ++i) {
    const uint8_t* p = static_cast<const uint8_t*>(t[i].data);
    for (size_t j = 0; j < t[i].nbytes(); ++j) ASSERT_EQ(p[j], uint8_t(i + 1)) << "tensor " << i << " byte " << j;
    EXPECT_EQ(t[i].owner, t[0].owner) << "small tensors share the chunk";
  }
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t[0].owner.get()) % (uintptr_t(2) << 20), 0u) << "chunks are 2 MiB-aligned";
}

TEST(WeightArena, TensorsOutliveTheArenaAndLargeOnesGetTheirOwnChunk) {
  Tensor small, large;
  {
    WeightArena arena;
    small = arena.empty(DType::F32, {16, 16});
    const int64_t rows = int64_t(WeightArena::kChunkBytes / 4096) + 1;  // > one chunk
    large = arena.empty(DType::F32, {rows, 1024});
    EXPECT_NE(large.owner, small.owner);
  }
  std::memset(small.data, 1, small.nbytes());
  std::memset(large.data, 2, large.nbytes());
  EXPECT_EQ(static_cast<const uint8_t*>(large.data)[large.nbytes() - 1], 2);
}

TEST(WeightArena, RefusesWhatTensorEmptyRefuses) {
  WeightArena arena;
  EXPECT_THROW(arena.empty(DType::Q8_0, {4, 40}), Error);
  EXPECT_THROW(arena.empty(DType::F32, {-1, 4}), Error);
}
