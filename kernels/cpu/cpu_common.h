// Helpers shared by the CPU op files only (not part of the op API): OpenBLAS calls pinned to the Exec's thread count, and parallel loops that fall back to the
// calling thread when there is no pool.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "kernels/cpu/cpu_ops.h"

namespace mg::cpu::detail {

// Reads id i of an i32/i64 tensor as int64.
inline int64_t id_at(const Tensor& ids, int64_t i) {
  return ids.dtype == DType::I32 ? ids.ptr<int32_t>()[i] : ids.ptr<int64_t>()[i];
}

// Row-major C[M, N] = alpha * op(A) . op(B) + beta * C. OpenBLAS always runs single-threaded
// here; the parallelism is ours: C is cut into fixed tiles (kGemmTileM x kGemmTileN, chosen from
// the shape alone) and each tile is one OpenBLAS call on some pool thread. The tiling never
// depends on the thread count, so 1 and 16 threads give the same bits; OpenBLAS's own threading
// does not (its partition changes which edge kernels see which columns).
constexpr int64_t kGemmTileM = 256;
constexpr int64_t kGemmTileN = 128;
constexpr int64_t kGemmMinTiledWork = int64_t(1) << 20;  // M*N*K below this: one call, no tiles
void sgemm(const Exec& ex, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// The same as one OpenBLAS call on the calling thread (for callers that parallelise themselves).
void sgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// y[M] = alpha * A[M, N] . x[N] + beta * y (row-major), rows cut into fixed blocks over the pool.
void sgemv(const Exec& ex, int64_t m, int64_t n, float alpha, const float* a, int64_t lda, const float* x,
           float beta, float* y);

// fn(begin, end) over [0, n): on ex.pool when there is one and the work is worth splitting.
void parallel_for(const Exec& ex, int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn);

// Runs items [0, n) claimed one at a time (a conv's tiles, attention's key blocks): body(claim) runs
// once on each of up to ex.threads() threads, and `claim(&i)` hands it the next item (false when
// none is left), `group` consecutive items at a time (several output-channel blocks of one time
// tile share its input window). A thread is started only per `min_groups` groups, so that small
// calls stay on fewer threads. The items are fixed by the shape, so which thread runs one never
// changes its bits; unlike parallel_for's fixed halves, a thread the OS pauses or slows (a busy
// machine) holds the call up by at most the group it is in, while the other threads do the rest.
template <class Body>
void parallel_tiles(const Exec& ex, int64_t n, int64_t group, int64_t min_groups, Body&& body) {
  std::atomic<int64_t> next{0};
  auto claim = [&, first = int64_t(0), end = int64_t(0)](int64_t* i) mutable {
    if (first == end) {
      first = next.fetch_add(group, std::memory_order_relaxed);
      end = std::min(n, first + group);
      if (first >= n) {
        first = end = n;
        return false;
      }
    }
    *i = first++;
    return true;
  };
  const int64_t groups = (n + group - 1) / group;
  const int64_t bodies =
      groups == 0 ? 0 : std::min<int64_t>(ex.threads(), std::max<int64_t>(1, groups / min_groups));
  parallel_for(ex, bodies, 1, [&](int64_t, int64_t) {
    auto mine = claim;  // each thread its own current group
    body(mine);
  });
}

// y[i] = x[i] > 0 ? x[i] : alpha * expm1(x[i]) (kernels/cpu/elu.cpp: vectorised, ~1 ulp); x may be y.
void elu_row(const Exec& ex, const float* x, float* y, int64_t n, float alpha);

// Converts n f16 or bf16 values to f32 (AVX2/F16C when ex allows, else portable).
void half_to_f32(const Exec& ex, DType dt, const uint16_t* src, float* dst, int64_t n);

}  // namespace mg::cpu::detail
