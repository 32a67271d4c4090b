// Failures of the CUDA backend on demand, for the tests of its failure paths (an allocation that
// fails, a device whose architecture the build has no kernels for), which a healthy GPU never
// takes. Plain C++, compiled in every build; the CUDA code asks fault_due() at the points below
// and, when a failure is due, makes the real CUDA call fail (an impossible size), so that the
// runtime's own error state is exercised too.
//
// Two ways in: inject_fault() from a test, or the environment variable MUSICGEN_CUDA_FAULTS
// (read once, at the first fault_due()): a comma-separated list of the names below, each failing
// every time, e.g. MUSICGEN_CUDA_FAULTS=probe musicgen-cli --device auto ... runs on the CPU.
#pragma once

#include <string>
#include <vector>

namespace mg {
namespace cuda {

enum class Fault {
  PoolAlloc,    // "pool-alloc": a stream-ordered allocation (cudaMallocAsync) of a tensor
  ArenaAlloc,   // "arena-alloc": a recording's arena (cudaMalloc)
  ChromaAlloc,  // "chroma-alloc": chroma's cached FFT buffers (cudaMalloc)
  Probe,        // "probe": the kernel launched to decide whether this build's kernels run on the device
  SelfCheck,    // "selfcheck": the device's results in a model load's op self-check (kernels/device_check.h)
  StepCheck,    // "selfcheck-step": the device's logits of the model self-check's decode step (lm/device_self_check.h)
  CodecCheck,   // "selfcheck-codec": the device's audio of the self-check's codec frame (codec/device_self_check.h)
};
constexpr int kFaultKinds = 7;

// The next `times` attempts of `f` fail (adds to what is already due). times < 0: every attempt.
void inject_fault(Fault f, int times = 1);
// Nothing is due any more (the environment's list included).
void clear_faults();
// True when a failure of `f` is due now (one fewer is then left).
bool fault_due(Fault f);

// "probe,arena-alloc" -> {Probe, ArenaAlloc}; throws mg::Error naming an unknown entry and the
// known names. Empty entries are ignored.
std::vector<Fault> parse_fault_list(const std::string& list);
const char* fault_name(Fault f);

}  // namespace cuda
}  // namespace mg
