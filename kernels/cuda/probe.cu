// Whether this build's kernels run on a device at all: a GPU older than every architecture the
// library was compiled for (or newer than its machine code, without PTX) is found by the device
// count like any other, and would fail only at the first kernel of a model load. So
// cuda_available() and make_cuda_backend() launch one trivial kernel first: compiled with the same
// architectures as every other kernel, it runs exactly where they do. The answer is kept per
// device for the life of the process (a context is made once anyway).
#include <map>
#include <mutex>
#include <string>

#include "kernels/cuda/arch_list.h"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/fault_injection.h"
#include "kernels/cuda/probe.h"

namespace mg {
namespace cuda {
namespace {

__global__ void probe_kernel() {}

// Launches the probe on its own stream (nothing else is waited for) and restores the thread's
// current device. CUDA's last error is left clear.
cudaError_t run_probe(int device) {
  int previous = 0;
  const bool had_previous = cudaGetDevice(&previous) == cudaSuccess;
  cudaError_t err = cudaSetDevice(device);
  cudaStream_t s = nullptr;
  if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  if (err == cudaSuccess) {
    probe_kernel<<<1, 1, 0, s>>>();
    err = cudaGetLastError();  // no kernel image for this device shows here
    const cudaError_t done = cudaStreamSynchronize(s);  // a JIT or launch failure may show here
    if (err == cudaSuccess) err = done;
    cudaStreamDestroy(s);
  }
  cudaGetLastError();
  if (had_previous) cudaSetDevice(previous);
  return err;
}

bool is_architecture_error(cudaError_t err) {
  return err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction ||
         err == cudaErrorUnsupportedPtxVersion || err == cudaErrorInvalidPtx || err == cudaErrorJitCompilerNotFound ||
         err == cudaErrorInvalidKernelImage;
}

}  // namespace

cudaError_t probe_device(int device) {
  // An injected failure looks like a card the build has no kernels for (fault_injection.h).
  if (fault_due(Fault::Probe)) return cudaErrorNoKernelImageForDevice;
  static std::mutex m;
  static std::map<int, cudaError_t> known;
  std::lock_guard<std::mutex> lock(m);
  auto it = known.find(device);
  if (it == known.end()) it = known.emplace(device, run_probe(device)).first;
  return it->second;
}

std::string probe_failure_message(int device, cudaError_t err) {
  cudaDeviceProp prop{};
  const bool have_prop = cudaGetDeviceProperties(&prop, device) == cudaSuccess;
  cudaGetLastError();
  const std::string cause = strcat(cudaGetErrorName(err), " (", cudaGetErrorString(err), ")");
  if (have_prop && is_architecture_error(err))
    return no_kernels_message(device, prop.name, prop.major, prop.minor, built_arch_list(), cause);
  const std::string card =
      have_prop ? strcat(prop.name, ", compute capability ", prop.major, ".", prop.minor) : std::string("unknown card");
  return strcat("CUDA device ", device, " (", card, ") cannot run a test kernel: ", cause,
                "; libmusicgen was built for CUDA architectures '", built_arch_list().text,
                "'. Run on the CPU (--device cpu; --device auto falls back to it)");
}

}  // namespace cuda
}  // namespace mg
