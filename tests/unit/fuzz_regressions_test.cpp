// Replays every input the fuzzers found (tests/fuzz/regressions/<target>/) and every seed
// (tests/fuzz/corpus/<target>/) through the same entry points as the libFuzzer targets, with the
// normal build: each must end in success or a clean mg::Error (the entry points swallow those), so
// any other exception fails here, and a crash fails the binary. docs/FUZZING.md lists the findings.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// The entry points are compiled into this test itself: tests/CMakeLists.txt builds each test from
// its one source file, and the fuzz build compiles the same file for the fuzzers.
#include "../fuzz/fuzz_entry.cpp"

namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Feeds every file under tests/fuzz/<kind>/<target>/; returns how many.
int replay(const std::string& kind) {
  const fs::path root = fs::path(MG_SOURCE_DIR) / "tests" / "fuzz" / kind;
  int n = 0;
  for (const auto& dir : fs::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    const std::string target = dir.path().filename().string();
    MgFuzzEntry entry = mg_fuzz_entry(target);
    EXPECT_NE(entry, nullptr) << "tests/fuzz/" << kind << "/" << target << " names no fuzz target";
    if (entry == nullptr) continue;
    for (const auto& f : fs::directory_iterator(dir.path())) {
      if (!f.is_regular_file()) continue;
      const std::vector<uint8_t> bytes = read_bytes(f.path());
      SCOPED_TRACE(f.path().string());
      EXPECT_NO_THROW(entry(bytes.data(), bytes.size())) << "not a clean mg::Error: " << f.path();
      ++n;
    }
  }
  return n;
}

}  // namespace

TEST(FuzzRegressions, EveryFoundInputEndsInSuccessOrError) { EXPECT_GT(replay("regressions"), 0); }

TEST(FuzzRegressions, EverySeedEndsInSuccessOrError) { EXPECT_GT(replay("corpus"), 0); }
