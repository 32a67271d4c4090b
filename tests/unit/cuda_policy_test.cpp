// The CUDA backend's rules that need no GPU (kernels/cuda/*.cpp, compiled in every build): frees
// deferred while a graph is captured (a recording's arena dropped mid-capture included), one retry
// of a failed allocation after the pool gave its blocks back, the fault-injection hooks the GPU
// tests use, the architecture list behind the "no kernels for this GPU" message, and the device
// checks read at the next synchronisation point.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/arch_list.h"
#include "kernels/cuda/fault_injection.h"
#include "kernels/cuda/memory_policy.h"
#include "kernels/cuda/pending_checks.h"
#include "test_util.h"

using namespace mg::cuda;

namespace {

// A stand-in for DeviceArena: its destructor hands its "cudaFree" to the deferrals, as the real one does.
struct FakeArena {
  std::shared_ptr<CaptureDeferrals> deferrals;
  std::vector<std::string>* freed;
  FakeArena(std::shared_ptr<CaptureDeferrals> d, std::vector<std::string>* f) : deferrals(std::move(d)), freed(f) {}
  FakeArena(const FakeArena&) = delete;
  ~FakeArena() {
    auto release = [f = freed] { f->push_back("arena"); };
    if (!deferrals->defer(release)) release();
  }
};

}  // namespace

TEST(CudaCaptureDeferrals, FreesWaitForTheEndOfTheCaptureOnly) {
  CaptureDeferrals d;
  int runs = 0;
  EXPECT_FALSE(d.defer([&] { ++runs; }));  // no capture: the caller frees now
  EXPECT_EQ(runs, 0);
  d.begin();
  EXPECT_TRUE(d.active());
  EXPECT_THROW(d.begin(), mg::Error);  // recordings do not nest
  std::vector<int> order;
  EXPECT_TRUE(d.defer([&] { order.push_back(1); }));
  EXPECT_TRUE(d.defer([&] { order.push_back(2); }));
  EXPECT_EQ(d.waiting(), 2u);
  EXPECT_TRUE(order.empty());
  auto released = d.end();
  EXPECT_FALSE(d.active());
  EXPECT_EQ(d.waiting(), 0u);
  for (auto& f : released) f();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(d.defer([&] { ++runs; }));
  EXPECT_TRUE(d.end().empty());  // ending twice hands back nothing
}

TEST(CudaCaptureDeferrals, AnOldRecordingsArenaDroppedMidCaptureIsParked) {
  // Trap: a capture that reassigns the last tensor of an older recording (whose recording is gone)
  // drops that recording's arena; its cudaFree would be illegal inside the capture.
  auto d = std::make_shared<CaptureDeferrals>();
  std::vector<std::string> freed;
  auto old_output = std::make_shared<FakeArena>(d, &freed);
  d->begin();
  old_output.reset();  // the last reference, mid-capture
  EXPECT_TRUE(freed.empty());
  for (auto& f : d->end()) f();
  EXPECT_EQ(freed, std::vector<std::string>{"arena"});
  auto later = std::make_shared<FakeArena>(d, &freed);
  later.reset();  // outside a capture: freed at once
  EXPECT_EQ(freed.size(), 2u);
}

TEST(CudaMemoryPolicy, AFailedAllocationIsRetriedOnceAfterTheRelease) {
  int attempts = 0, releases = 0;
  auto fail_first = [&] { return ++attempts > 1; };
  EXPECT_TRUE(retry_after_release(fail_first, [&] { ++releases; }));
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(releases, 1);
  attempts = releases = 0;
  EXPECT_TRUE(retry_after_release([&] { return ++attempts > 0; }, [&] { ++releases; }));
  EXPECT_EQ(releases, 0);  // no release when the first attempt succeeds
  attempts = releases = 0;
  EXPECT_FALSE(retry_after_release([&] { ++attempts; return false; }, [&] { ++releases; }));
  EXPECT_EQ(attempts, 2);  // once more, not forever
  EXPECT_EQ(releases, 1);
}

TEST(CudaFaultInjection, CountsAndNames) {
  clear_faults();
  EXPECT_FALSE(fault_due(Fault::ArenaAlloc));
  inject_fault(Fault::ArenaAlloc, 2);
  EXPECT_FALSE(fault_due(Fault::PoolAlloc));  // kinds are separate
  EXPECT_TRUE(fault_due(Fault::ArenaAlloc));
  EXPECT_TRUE(fault_due(Fault::ArenaAlloc));
  EXPECT_FALSE(fault_due(Fault::ArenaAlloc));
  inject_fault(Fault::Probe, -1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(fault_due(Fault::Probe));
  clear_faults();
  EXPECT_FALSE(fault_due(Fault::Probe));

  const std::vector<Fault> parsed = parse_fault_list("probe,,arena-alloc");
  EXPECT_EQ(parsed, (std::vector<Fault>{Fault::Probe, Fault::ArenaAlloc}));
  EXPECT_TRUE(parse_fault_list("").empty());
  const std::string err = mgtest::error_of([] { parse_fault_list("probe,oom"); });
  EXPECT_NE(err.find("'oom'"), std::string::npos) << err;
  EXPECT_NE(err.find("chroma-alloc"), std::string::npos) << err;  // lists the known names
  EXPECT_STREQ(fault_name(Fault::PoolAlloc), "pool-alloc");
}

TEST(CudaArchList, TheDefaultListRunsOnAmpereThroughHopperAndNewerByPtx) {
  const ArchList l = parse_arch_list("75-real;80-real;86-real;89-real;90-real;90-virtual");
  ASSERT_EQ(l.entries.size(), 6u);
  EXPECT_FALSE(l.opaque);
  for (auto [major, minor] : {std::pair{7, 5}, {8, 0}, {8, 6}, {8, 7}, {8, 9}, {9, 0}, {10, 0}, {12, 0}})
    EXPECT_TRUE(runs_on(l, major, minor)) << major << "." << minor;
  for (auto [major, minor] : {std::pair{6, 1}, {7, 0}, {7, 2}})
    EXPECT_FALSE(runs_on(l, major, minor)) << major << "." << minor;
  const std::string d = describe(l);
  EXPECT_NE(d.find("sm_75, sm_80, sm_86, sm_89, sm_90"), std::string::npos) << d;
  EXPECT_NE(d.find("PTX for compute_90"), std::string::npos) << d;
  EXPECT_NE(d.find("9.0 and newer"), std::string::npos) << d;
}

TEST(CudaArchList, EntryForms) {
  // "80;90": machine code and PTX for both, so 8.6 (sm_80's minor) and 12.0 (compute_90) run, 7.5 not.
  const ArchList both = parse_arch_list("80;90");
  EXPECT_TRUE(runs_on(both, 8, 6));
  EXPECT_TRUE(runs_on(both, 12, 0));
  EXPECT_FALSE(runs_on(both, 7, 5));
  // Machine code only does not cross a major version.
  const ArchList one = parse_arch_list("75-real");
  EXPECT_TRUE(runs_on(one, 7, 5));
  EXPECT_FALSE(runs_on(one, 8, 0));
  EXPECT_NE(describe(one).find("no PTX"), std::string::npos);
  // PTX only runs everywhere from its capability up.
  EXPECT_TRUE(runs_on(parse_arch_list("80-virtual"), 9, 0));
  EXPECT_FALSE(runs_on(parse_arch_list("80-virtual"), 7, 5));
  // Arch-specific ("a") code runs on exactly its capability.
  const ArchList a = parse_arch_list("90a-real, 90a-virtual");
  EXPECT_TRUE(runs_on(a, 9, 0));
  EXPECT_FALSE(runs_on(a, 10, 0));
  // Space-separated (how the build passes it), and what cannot be judged.
  EXPECT_EQ(parse_arch_list("80-real 90-virtual").entries.size(), 2u);
  EXPECT_TRUE(parse_arch_list("native").opaque);
  EXPECT_TRUE(runs_on(parse_arch_list("all-major"), 3, 0));  // opaque: the probe kernel decides
  EXPECT_TRUE(parse_arch_list("").opaque);
  EXPECT_THROW(parse_arch_list("sm_80"), mg::Error);
  EXPECT_THROW(parse_arch_list("8"), mg::Error);
}

TEST(CudaArchList, TheMessageNamesTheCardAndTheBuild) {
  const ArchList l = parse_arch_list("80-real;90-virtual");
  const std::string m = no_kernels_message(0, "Tesla V100", 7, 0, l, "no kernel image is available");
  for (const char* part : {"device 0", "Tesla V100", "compute capability 7.0", "80-real;90-virtual", "sm_80",
                           "compute_90", "no kernel image", "-DCMAKE_CUDA_ARCHITECTURES=70", "CPU"})
    EXPECT_NE(m.find(part), std::string::npos) << part << " missing from: " << m;
}

TEST(CudaArchList, TheBuildKnowsItsList) {
  const ArchList& l = built_arch_list();
#ifdef MUSICGEN_HAVE_CUDA
  EXPECT_FALSE(l.text.empty()) << "MG_CUDA_ARCHITECTURES was not compiled in";
#else
  EXPECT_TRUE(l.opaque);
#endif
}

TEST(CudaPendingChecks, TagsNameTheFirstFailingLaunch) {
  PendingChecks p;
  EXPECT_TRUE(p.empty());
  mg::Tensor ids = mg::Tensor::zeros(mg::DType::I64, {4, 6});
  EXPECT_EQ(p.add({"embedding_sum", {2048, 2048, 2048, 2048}, ids, {}}), 1);
  EXPECT_EQ(p.add({"cast i64 -> i32", {}, ids, {}}), 2);
  ASSERT_NE(p.find(1), nullptr);
  EXPECT_EQ(p.find(1)->op, "embedding_sum");
  EXPECT_EQ(p.find(2)->shape, (mg::Shape{4, 6}));
  EXPECT_EQ(p.find(0), nullptr);
  EXPECT_EQ(p.find(3), nullptr);

  std::string m = failed_check_message(p.find(1), 1, "id 2049 at [3, 0] is outside table 3 of size 2048");
  EXPECT_NE(m.find("cuda embedding_sum: id 2049 at [3, 0]"), std::string::npos) << m;
  EXPECT_NE(m.find("synchronisation"), std::string::npos) << m;
  m = failed_check_message(p.find(1), 1, "");
  EXPECT_NE(m.find("[4, 6]"), std::string::npos) << m;
  EXPECT_NE(m.find("2048"), std::string::npos) << m;
  m = failed_check_message(p.find(2), 2, "");
  EXPECT_NE(m.find("does not fit in i32"), std::string::npos) << m;
  EXPECT_NE(failed_check_message(nullptr, 7, "").find("no longer known"), std::string::npos);
  p.clear();
  EXPECT_TRUE(p.empty());
}

TEST(CudaPendingChecks, InputsAreKeptForABoundedNumberOfLaunches) {
  // Code that never synchronises must not keep every ids tensor alive.
  PendingChecks p;
  mg::Tensor ids = mg::Tensor::zeros(mg::DType::I32, {1, 3});
  for (size_t i = 0; i < PendingChecks::kKeptInputs + 5; ++i) p.add({"embedding", {10}, ids, {}});
  EXPECT_TRUE(p.find(1)->input.defined());
  EXPECT_TRUE(p.find(int(PendingChecks::kKeptInputs))->input.defined());
  const mg::cuda::PendingCheck* late = p.find(int(PendingChecks::kKeptInputs) + 1);
  EXPECT_FALSE(late->input.defined());
  EXPECT_EQ(late->shape, (mg::Shape{1, 3}));  // still named in the message
}
