// kernels/weight_arena.h: tensors packed into shared 2 MiB-aligned chunks, each 64-byte aligned and
// disjoint from the others, alive as long as any tensor of their chunk (not the arena); a tensor
// larger than a chunk gets one of its own; on Linux the chunks are advised for huge pages, or
// against them with MUSICGEN_HUGE_PAGES=off.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/weight_arena.h"
#include "kernels/quant.h"
#include "test_util.h"

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

// The advice on the mapping that holds `p`, from /proc/self/smaps: its VmFlags line ("hg": advised
// for huge pages, "nh": advised against), or "" when there is no such file (not Linux).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line + " ";
  }
  return "";
}

// Why the switch exists: on some hosts (a Firecracker VM in docs/PERFORMANCE.md) every fresh 2 MiB
// page is slow to back, and an f32 model load took seconds longer for a step a few percent faster.
// The trap: a switch that is read but never reaches the mapping (or reaches it as no advice at all,
// which a system with transparent huge pages "always" still backs with 2 MiB pages).
TEST(WeightArena, TheChunksAreAdvisedAsAsked) {
  WeightArena huge(true), plain(false);
  const Tensor a = huge.empty(DType::F32, {256, 1024}), b = plain.empty(DType::F32, {256, 1024});
  EXPECT_TRUE(huge.huge_pages());
  EXPECT_FALSE(plain.huge_pages());
  const std::string fa = vm_flags_of(a.data), fb = vm_flags_of(b.data);
  if (fa.empty()) GTEST_SKIP() << "no /proc/self/smaps here: the advice cannot be read";
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"))
    GTEST_SKIP() << "a kernel without transparent huge pages refuses both advices";
  EXPECT_NE(fa.find(" hg "), std::string::npos) << fa;
  EXPECT_EQ(fa.find(" nh "), std::string::npos) << fa;
  EXPECT_NE(fb.find(" nh "), std::string::npos) << fb;
  EXPECT_EQ(fb.find(" hg "), std::string::npos) << fb;
}

// MUSICGEN_HUGE_PAGES: on by default, off on request, and a clear error for anything else (a
// misspelt "of" must not silently keep the default).
TEST(WeightArena, HugePagesFromTheEnvironment) {
  const mgtest::ScopedEnv env("MUSICGEN_HUGE_PAGES");
  env.unset();
  EXPECT_TRUE(huge_pages_from_env());
  env.set("on");
  EXPECT_TRUE(huge_pages_from_env());
  env.set("off");
  EXPECT_FALSE(huge_pages_from_env());
  env.set("of");
  const std::string error = mgtest::error_of([] { huge_pages_from_env(); });
  EXPECT_NE(error.find("MUSICGEN_HUGE_PAGES='of' is not a setting"), std::string::npos) << error;
}
