// embedding / embedding_sum: out[n, :] = sum_k table_k[ids[k, n], :]. The table pointers travel
// by value in a kernel parameter (no device-side pointer array to upload). An id outside its
// table is never dereferenced: the kernel writes its launch's tag into a device flag, which the
// backend reads at its next synchronisation point and turns into an mg::Error (a bad token id
// must not read foreign memory; kernels/cuda/pending_checks.h says why not at once).
#include <algorithm>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

struct TableSet {
  const void* table[kMaxEmbeddingTables];
  int64_t vocab[kMaxEmbeddingTables];
};

template <typename T, typename Id>
__global__ void embedding_sum_kernel(TableSet set, int K, const Id* __restrict__ ids, float* __restrict__ out,
                                     int64_t N, int64_t D, int* bad_flag, int tag) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    float* row = out + n * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) row[d] = 0.0f;
    for (int k = 0; k < K; ++k) {
      const int64_t id = static_cast<int64_t>(ids[int64_t(k) * N + n]);
      if (id < 0 || id >= set.vocab[k]) {
        if (bad_flag && threadIdx.x == 0) atomicCAS(bad_flag, 0, tag);  // the first failing launch's tag stays
        continue;
      }
      const T* src = static_cast<const T*>(set.table[k]) + id * D;
      // Each thread adds to the same elements it zeroed: no sync needed between the passes.
      for (int64_t d = threadIdx.x; d < D; d += blockDim.x) row[d] += to_f32(src[d]);
    }
  }
}

template <typename T>
void launch_for_table(cudaStream_t s, const TableSet& set, int K, const void* ids, DType id_dtype, float* out,
                      int64_t N, int64_t D, int* bad_flag, int tag) {
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(N, 65535));
  const int block = D <= 64 ? 64 : D <= 128 ? 128 : 256;
  if (id_dtype == DType::I32)
    embedding_sum_kernel<T><<<grid, block, 0, s>>>(set, K, static_cast<const int32_t*>(ids), out, N, D, bad_flag, tag);
  else
    embedding_sum_kernel<T><<<grid, block, 0, s>>>(set, K, static_cast<const int64_t*>(ids), out, N, D, bad_flag, tag);
}

}  // namespace

void embedding_sum(cudaStream_t s, const void* const* tables, const int64_t* vocab, DType table_dtype, int K,
                   const void* ids, DType id_dtype, float* out, int64_t N, int64_t D, int* bad_flag, int tag) {
  if (N == 0 || D == 0) return;
  MG_CHECK(K >= 1 && K <= kMaxEmbeddingTables, "cuda embedding_sum: ", K, " tables (1..", kMaxEmbeddingTables,
           " supported)");
  MG_CHECK(id_dtype == DType::I32 || id_dtype == DType::I64, "cuda embedding: ids must be i32 or i64, got ",
           dtype_name(id_dtype));
  TableSet set{};
  for (int k = 0; k < K; ++k) {
    set.table[k] = tables[k];
    set.vocab[k] = vocab[k];
  }
  switch (table_dtype) {
    case DType::F32: launch_for_table<float>(s, set, K, ids, id_dtype, out, N, D, bad_flag, tag); break;
    case DType::F16: launch_for_table<__half>(s, set, K, ids, id_dtype, out, N, D, bad_flag, tag); break;
    case DType::BF16: launch_for_table<__nv_bfloat16>(s, set, K, ids, id_dtype, out, N, D, bad_flag, tag); break;
    default: throw Error(strcat("cuda embedding: table dtype ", dtype_name(table_dtype), " is not a float type"));
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace mg
