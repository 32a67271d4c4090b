// Plain C++ (no CUDA header): see fault_injection.h.
#include "kernels/cuda/fault_injection.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>

#include "kernels/common.h"

namespace mg {
namespace cuda {
namespace {

constexpr int kAlways = -1;
const char* const kNames[kFaultKinds] = {"pool-alloc", "arena-alloc",    "chroma-alloc",   "probe",
                                         "selfcheck",  "selfcheck-step", "selfcheck-codec"};

// Failures due per kind: 0 none, > 0 that many, kAlways every time. Atomics: fault_due sits on the
// allocation path, which several backends may take at once.
std::atomic<int> g_due[kFaultKinds];
std::once_flag g_env_once;

// Never throws: it runs on the allocation path; a misspelt list is reported and ignored.
void read_environment() {
  const char* env = std::getenv("MUSICGEN_CUDA_FAULTS");
  if (!env || !*env) return;
  try {
    for (Fault f : parse_fault_list(env)) g_due[int(f)].store(kAlways);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libmusicgen: %s: ignored\n", e.what());
  }
}

}  // namespace

const char* fault_name(Fault f) { return kNames[int(f)]; }

std::vector<Fault> parse_fault_list(const std::string& list) {
  std::vector<Fault> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string name = list.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    int kind = -1;
    for (int k = 0; k < kFaultKinds; ++k)
      if (name == kNames[k]) kind = k;
    MG_CHECK(kind >= 0, "MUSICGEN_CUDA_FAULTS: unknown fault '", name,
             "' (known: pool-alloc, arena-alloc, chroma-alloc, probe, selfcheck, selfcheck-step, selfcheck-codec)");
    out.push_back(Fault(kind));
  }
  return out;
}

void inject_fault(Fault f, int times) {
  std::call_once(g_env_once, read_environment);  // so that the environment's list cannot undo this later
  std::atomic<int>& due = g_due[int(f)];
  if (times < 0) {
    due.store(kAlways);
    return;
  }
  int cur = due.load();
  while (cur != kAlways && !due.compare_exchange_weak(cur, cur + times)) {
  }
}

void clear_faults() {
  std::call_once(g_env_once, read_environment);
  for (std::atomic<int>& d : g_due) d.store(0);
}

bool fault_due(Fault f) {
  std::call_once(g_env_once, read_environment);
  std::atomic<int>& due = g_due[int(f)];
  int cur = due.load(std::memory_order_relaxed);
  while (true) {
    if (cur == 0) return false;
    if (cur == kAlways) return true;
    if (due.compare_exchange_weak(cur, cur - 1)) return true;
  }
}

}  // namespace cuda
}  // namespace mg
