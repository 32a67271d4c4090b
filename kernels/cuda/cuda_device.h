// What the CUDA backend (cuda_backend.cu), its tensors and its recordings (cuda_graph.cu) share:
// the device, the stream, the cuBLAS handle, and the capture state of a recording in progress.
// Tensors keep it alive through their deleters, so the stream outlives the last tensor even when
// the backend object is destroyed first.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/cuda/fault_injection.h"
#include "kernels/cuda/memory_policy.h"
#include "kernels/cuda/pending_checks.h"
#include "kernels/ops.h"

namespace mg {
namespace cuda {

struct DeviceState;

// One recording's activations: a bump allocator over one cudaMalloc block. A captured graph's
// kernels read and write fixed addresses, so the tensors a step creates while it is captured
// must keep their memory for as long as the graph may be replayed: they live here, not in the
// stream-ordered pool (whose frees would be captured into the graph too). When the last owner
// lets go during another capture (a step reassigning the last tensor of an older, destroyed
// recording), the cudaFree waits in `deferrals` until that capture ends: inside it, it is illegal.
struct DeviceArena {
  int device = 0;
  char* base = nullptr;
  size_t size = 0, used = 0;
  bool overflow = false;  // a capture asked for more than `size`: it is redone with a larger arena
  std::shared_ptr<CaptureDeferrals> deferrals;

  DeviceArena(DeviceState& st, size_t bytes);
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
};

struct ChromaPlans;  // kernels/cuda/chroma.cu: cuFFT plans and buffers, cached per size

struct DeviceState {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  // Device int that checked launches (an embedding id out of range, an i64 -> i32 cast that
  // overflows) set to their tag; read at the next synchronisation point (kernels/cuda/pending_checks.h).
  int* bad_id_flag = nullptr;
  int* flag_host = nullptr;  // page-locked: the flag is copied here in stream order
  PendingChecks checks;
  void* blas_workspace = nullptr;  // cuBLAS's own, so that it never allocates while a graph is captured
  unsigned* attention_counters = nullptr;  // zeroed; the attention's fused merge (kernels/cuda/attention.cu)
  // While a recording captures: allocations come from `arena`, and frees (of pool memory, of
  // older arenas) wait in `deferrals` until the capture ends (a captured free would free the block
  // at every replay; a cudaFree would break the capture).
  std::shared_ptr<DeviceArena> arena;
  std::shared_ptr<CaptureDeferrals> deferrals = std::make_shared<CaptureDeferrals>();
  std::shared_ptr<ChromaPlans> chroma;  // made by the first chroma call

  bool capturing() const { return arena != nullptr; }
  ~DeviceState();
};

// An allocation outside the stream-ordered pool (cudaMalloc: an arena, a workspace, chroma's FFT
// buffers). The pool keeps freed blocks for reuse (no release threshold), so after a long run it
// may hold what this needs: on failure the pool's cached blocks go back to the driver and the
// allocation is tried once more. `fault`: the injected failure (kernels/cuda/fault_injection.h)
// this allocation takes, if any. Throws mg::Error naming `what`, with CUDA's error state cleared (a failed
// allocation must not be reported again by the next kernel's launch check).
void* device_malloc(DeviceState& st, size_t bytes, const char* what, std::optional<Fault> fault = std::nullopt);
// Gives the pool's cached free blocks back to the driver, after the stream's queued frees have
// happened (waits for the stream; not while capturing).
void release_pool_cache(DeviceState& st);

// Device memory of at least `bytes` (256 at least, so that an empty tensor is still "defined"):
// stream-ordered from the pool, or from the arena while a recording captures. The returned owner
// frees it (dtype and shape name the tensor in an error; stream-ordered, so kernels still queued that read it finish
// first). Throws on failure.
std::shared_ptr<void> device_alloc(const std::shared_ptr<DeviceState>& st, size_t bytes, DType t, const Shape& shape);

// Backend::record on CUDA: captures what ops() launches on the stream into a CUDA graph (ops()
// runs once, on the host), instantiates it, and returns a recording whose replay() launches it.
std::unique_ptr<Backend::Recording> record_graph(const std::shared_ptr<DeviceState>& st, std::function<void()> ops);

}  // namespace cuda
}  // namespace mg
