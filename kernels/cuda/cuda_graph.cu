// Device memory and recordings of the CUDA backend (kernels/cuda/cuda_device.h): the stream-
// ordered allocator, the arena a recording allocates from, and the capture of a decode step into
// a CUDA graph. Why graphs: a musicgen-small step is ~500 small kernels; launched one by one the
// CPU-side launch cost (several microseconds each) exceeds the GPU time of the whole step, while
// one graph launch replays them back to back.
#include <algorithm>
#include <exception>
#include <functional>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_device.h"

namespace mg {
namespace cuda {
namespace {

constexpr size_t kArenaAlign = 256;
constexpr size_t kFirstArenaBytes = size_t(64) << 20;  // a musicgen-large step needs a few MB
constexpr int kArenaAttempts = 4;                      // x4 each: up to 4 GB

class GraphRecording final : public Backend::Recording {
 public:
  GraphRecording(std::shared_ptr<DeviceState> st, cudaGraph_t graph, cudaGraphExec_t exec,
                 std::shared_ptr<DeviceArena> arena)
      : st_(std::move(st)), graph_(graph), exec_(exec), arena_(std::move(arena)) {}
  ~GraphRecording() override {
    cudaSetDevice(st_->device);
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  void replay() override {
    CUDA_CHECK(cudaSetDevice(st_->device));
    CUDA_CHECK(cudaGraphLaunch(exec_, st_->stream));
  }

 private:
  std::shared_ptr<DeviceState> st_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  std::shared_ptr<DeviceArena> arena_;  // the graph's activations (tensors handed out keep it too)
};

// Runs ops() with the stream in capture mode and the arena as allocator; always ends the capture.
cudaGraph_t capture(const std::shared_ptr<DeviceState>& st, const std::shared_ptr<DeviceArena>& arena,
                    const std::function<void()>& ops) {
  // ThreadLocal: another thread's unrelated CUDA calls do not invalidate this capture, and this
  // thread's forbidden calls (a synchronisation, a blocking copy) fail loudly instead of running.
  CUDA_CHECK(cudaStreamBeginCapture(st->stream, cudaStreamCaptureModeThreadLocal));
  st->deferrals->begin();
  st->arena = arena;
  std::exception_ptr failed;
  try {
    ops();
  } catch (...) {
    failed = std::current_exception();
  }
  st->arena.reset();
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(st->stream, &graph);
  for (const std::function<void()>& release : st->deferrals->end()) release();
  if (failed || end != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();  // clear the capture's error state
    if (failed) std::rethrow_exception(failed);
    throw Error(strcat("cuda record: capturing the step failed: ", cudaGetErrorName(end), " (", cudaGetErrorString(end),
                       "); an op synchronised or copied to the host while recording"));
  }
  return graph;
}

}  // namespace

// An allocation that can never succeed: an injected fault makes the real call fail, so that
// CUDA's own error state after a failed allocation is what the failure paths see.
constexpr size_t kImpossibleBytes = size_t(1) << 62;

void release_pool_cache(DeviceState& st) {
  if (!st.capturing()) cudaStreamSynchronize(st.stream);  // queued frees return their blocks first
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, st.device) == cudaSuccess) cudaMemPoolTrimTo(pool, 0);
  cudaGetLastError();  // best effort: what failed here is reported by the retried allocation
}

void* device_malloc(DeviceState& st, size_t bytes, const char* what, std::optional<Fault> fault) {
  CUDA_CHECK(cudaSetDevice(st.device));
  void* p = nullptr;
  cudaError_t err = cudaSuccess;
  auto attempt = [&] {
    err = cudaMalloc(&p, fault && fault_due(*fault) ? kImpossibleBytes : bytes);
    if (err != cudaSuccess) cudaGetLastError();  // not sticky: clear it so no later check reports it
    return err == cudaSuccess;
  };
  if (!retry_after_release(attempt, [&] { release_pool_cache(st); }))
    throw Error(strcat("cuda: cannot allocate ", bytes, " bytes for ", what, " on device ", st.device, ": ",
                       cudaGetErrorString(err), " (also after the memory pool gave its free blocks back)"));
  return p;
}

DeviceArena::DeviceArena(DeviceState& st, size_t bytes)
    : device(st.device), size(bytes), deferrals(st.deferrals) {
  base = static_cast<char*>(device_malloc(st, bytes, "a recording's activations (cuda record)", Fault::ArenaAlloc));
}

DeviceArena::~DeviceArena() {
  auto release = [dev = device, p = base] {
    cudaSetDevice(dev);
    cudaFree(p);  // waits for the device: a replay still running keeps its memory until it ends
  };
  if (!deferrals->defer(release)) release();  // dropped inside a capture: freed when it ends
}

DeviceState::~DeviceState() {
  // Destructors must not throw: errors here (e.g. the runtime already unloaded at exit) are ignored.
  cudaSetDevice(device);
  if (stream) cudaStreamSynchronize(stream);
  chroma.reset();  // its plans' buffers, before the stream goes
  checks.clear();
  if (bad_id_flag) cudaFree(bad_id_flag);
  if (flag_host) cudaFreeHost(flag_host);
  if (blas_workspace) cudaFree(blas_workspace);
  if (attention_counters) cudaFree(attention_counters);
  if (blas) cublasDestroy(blas);
  if (stream) cudaStreamDestroy(stream);
}

namespace {

// One stream-ordered allocation from the pool, retried once after the pool's cached blocks went
// back to the driver (fragmentation); CUDA's error state is cleared after a failure.
void* pool_malloc(DeviceState& st, size_t bytes, DType t, const Shape& shape) {
  void* p = nullptr;
  cudaError_t err = cudaSuccess;
  auto attempt = [&] {
    err = cudaMallocAsync(&p, fault_due(Fault::PoolAlloc) ? kImpossibleBytes : bytes, st.stream);
    if (err != cudaSuccess) cudaGetLastError();
    return err == cudaSuccess;
  };
  if (!retry_after_release(attempt, [&] { release_pool_cache(st); }))
    throw Error(strcat("cuda alloc: cannot allocate ", bytes, " bytes for ", dtype_name(t), " ", shape_str(shape),
                       " on device ", st.device, ": ", cudaGetErrorString(err)));
  return p;
}

}  // namespace

std::shared_ptr<void> device_alloc(const std::shared_ptr<DeviceState>& st, size_t bytes, DType t, const Shape& shape) {
  bytes = std::max<size_t>(bytes, kArenaAlign);
  if (st->capturing()) {
    DeviceArena& a = *st->arena;
    const size_t at = (a.used + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
    if (at + bytes > a.size) {
      // Hand out the arena's start so that the capture can finish; record_graph discards it and
      // captures again with a larger arena.
      a.overflow = true;
      return std::shared_ptr<void>(a.base, [arena = st->arena](void*) {});
    }
    a.used = at + bytes;
    return std::shared_ptr<void>(a.base + at, [arena = st->arena](void*) {});
  }
  void* p = pool_malloc(*st, bytes, t, shape);
  return std::shared_ptr<void>(p, [st](void* q) {
    cudaSetDevice(st->device);
    // Inside a capture a stream-ordered free would be captured (and run at every replay).
    auto release = [st, q] { cudaFreeAsync(q, st->stream); };  // no throw from a deleter; a failure only leaks
    if (!st->deferrals->defer(release)) release();
  });
}

std::unique_ptr<Backend::Recording> record_graph(const std::shared_ptr<DeviceState>& st, std::function<void()> ops) {
  MG_CHECK(bool(ops), "cuda record: nothing to record");
  MG_CHECK(!st->capturing(), "cuda record: recordings do not nest");
  CUDA_CHECK(cudaSetDevice(st->device));
  size_t bytes = kFirstArenaBytes;
  for (int attempt = 1;; ++attempt, bytes *= 4) {
    // A failed attempt's arena lives on in the tensors ops() handed out from it; when ops() drops
    // them during the next capture, its cudaFree waits for that capture's end (DeviceArena).
    auto arena = std::make_shared<DeviceArena>(*st, bytes);
    cudaGraph_t graph = capture(st, arena, ops);
    if (arena->overflow) {
      cudaGraphDestroy(graph);
      MG_CHECK(attempt < kArenaAttempts, "cuda record: the step needs more than ", bytes, " bytes of activations");
      continue;
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    if (err != cudaSuccess) {
      cudaGraphDestroy(graph);
      throw Error(strcat("cuda record: cannot instantiate the captured graph: ", cudaGetErrorString(err)));
    }
    return std::make_unique<GraphRecording>(st, graph, exec, std::move(arena));
  }
}

}  // namespace cuda
}  // namespace mg
