// The probe kernel behind cuda_available() and make_cuda_backend() (kernels/cuda/probe.cu).
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace mg {
namespace cuda {

// cudaSuccess when this build's kernels run on `device` (a trivial kernel launched and finished
// there); the error otherwise. Probed once per device; an injected Fault::Probe fails it anyway.
cudaError_t probe_device(int device);
// The mg::Error text for a failed probe: the card, its compute capability, the architectures the
// build holds (kernels/cuda/arch_list.h) and what to do.
std::string probe_failure_message(int device, cudaError_t err);

}  // namespace cuda
}  // namespace mg
