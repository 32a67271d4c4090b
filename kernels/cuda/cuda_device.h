// What the CUDA backend (cuda_backend.cu), its tensors and its recordings (cuda_graph.cu) share:
// the device, the stream, the cuBLAS handle, and the capture state of a recording in progress.
// Tensors keep it alive through their deleters, so the stream outlives the last tensor even when
// the backend object is destroyed first.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <functional>
#include <memory>
#include <vector>

#include "kernels/ops.h"

namespace mg {
namespace cuda {

// One recording's activations: a bump allocator over one cudaMalloc block. A captured graph's
// kernels read and write fixed addresses, so the tensors a step creates while it is captured
// must keep their memory for as long as the graph may be replayed: they live here, not in the
// stream-ordered pool (whose frees would be captured into the graph too).
struct DeviceArena {
  int device = 0;
  char* base = nullptr;
  size_t size = 0, used = 0;
  bool overflow = false;  // a capture asked for more than `size`: it is redone with a larger arena

  DeviceArena(int device, size_t bytes);
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
};

struct DeviceState {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  int* bad_id_flag = nullptr;      // device int: set on an out-of-range embedding id or i64 -> i32 overflow
  void* blas_workspace = nullptr;  // cuBLAS's own, so that it never allocates while a graph is captured
  unsigned* attention_counters = nullptr;  // zeroed; the attention's fused merge (kernels/cuda/attention.cu)
  // While a recording captures: allocations come from `arena`, and frees of pool memory wait in
  // `deferred_frees` until the capture ends (a captured free would free the block at every replay).
  std::shared_ptr<DeviceArena> arena;
  std::vector<void*> deferred_frees;

  bool capturing() const { return arena != nullptr; }
  ~DeviceState();
};

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
