// linear: y[..., N] = x[..., K] . w[N, K]^T (+ b[N]), nn.Linear layout.
//
// Two paths, because the best one depends on how many rows share each weight read:
//  - a decode step has M <= 4 rows: the op is bound by reading w, so a GEMV streams w once
//    (f16/bf16 converted to f32 in registers, at half the bytes; AVX-512 where the CPU has it,
//    else AVX2) and keeps all M dot products going; sgemm would first copy (pack) all of w, doubling the memory traffic;
//    up to 16 rows (a step of 8 CFG sequences: a batch, or a server's requests) run the same GEMV
//    on groups of 4 rows per L2-sized tile of w, so w still comes from memory once, and every
//    output keeps the GEMV's arithmetic: a row gets the same bits whatever the other rows are;
//  - a prompt/prefill has many rows: f32 w goes to sgemm as is, half w is converted to f32 in
//    blocks first, and sgemm's blocking beats anything hand written here.
// Both accumulate in f32, as PyTorch does after upcasting half weights.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/hsum_avx512.h"
#include "kernels/cpu/linear_bf16.h"
#include "kernels/cpu/vec_math.h"

// GCC 12 warns about the "undefined" pass-through operand inside its own AVX-512 intrinsics when
// they are inlined into target("avx512f") functions (GCC bug 105593): not ours to fix.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace mg::cpu {


namespace {

constexpr int64_t kGemvMaxRows = 4;           // rows one GEMV pass keeps in registers
constexpr int64_t kGroupedGemvMaxRows = 16;   // M at or below this takes the GEMV (in row groups)
constexpr int64_t kGemvTileBytes = 256 << 10;  // weight rows per tile: re-read from L2 by each group
constexpr int64_t kConvertBlockFloats = 1 << 18;  // 1 MiB of f32 weights converted per sgemm call
// Next-tile cache lines requested per inner-loop step (see below). 2 on the Zen 4 VM of 2026-12-06;
// on the 2-vCPU Xeon of the issues 1 is 5-6% faster from memory for 16 rows on every shape
// (docs/PERFORMANCE.md, "The server's step lanes probe less; one next-tile line per step").
constexpr int kPrefetchLinesPerStep = 1;
constexpr int kAvx2RowsPer4 = 3;    // weight rows per pass with 4 x rows: AVX2 (12 of 16 ymm) ...
constexpr int kAvx512RowsPer4 = 5;  // ... and AVX-512 (20 of 32 zmm)

// The next weight tile, fetched into cache while the later row groups of this tile compute from
// L2: the first group of a tile is bound by memory and the others by the FMAs, so without this
// the two alternate instead of overlapping (measured: 16 rows cost ~2.8x one row, the sum of the
// memory time and the FMA time). Prefetches only move data: no output changes.
// The first group of a tile (and a call of 1-4 rows, a single group) reads rows from memory
// instead: it prefetches, at each step, the same line of the weight rows its next pass reads
// (measured, 1 thread, weights from memory: 16 rows +5-10%, 2 rows K=1024 +14%).
struct TilePrefetch {
  const char* next = nullptr;
  const char* end = nullptr;
  bool rows_ahead = false;  // the first group: prefetch the next pass's rows (AVX-512 GEMV)
  inline void step() {
    for (int i = 0; i < kPrefetchLinesPerStep && next < end; ++i, next += 64) _mm_prefetch(next, _MM_HINT_T1);
  }
  // One load per 4 KiB page of the tile, before its prefetches: a decode step's weights sit in
  // 4 KiB pages (the mapped snapshot), and a prefetch that misses the TLB does not reliably fetch,
  // so without this the next tile mostly still came from memory in its first group (measured,
  // 16 rows K=1024 N=4096 on 1 thread: ~80 -> ~86 GFLOP/s). The loads are independent of each
  // other, so their misses overlap.
  void touch_pages() const {
    char sink = 0;
    for (const char* p = next; p < end; p += 4096) sink ^= *static_cast<const volatile char*>(p);
    asm volatile("" : : "r"(sink));
  }
};

// Weight element i of a row of any float dtype, as f32.
inline float weight_at(DType dt, const void* row, int64_t i) {
  if (dt == DType::F32) return static_cast<const float*>(row)[i];
  uint16_t v = static_cast<const uint16_t*>(row)[i];
  return dt == DType::F16 ? f16_to_f32(v) : bf16_to_f32(v);
}

// Portable GEMV for rows [n0, n1) of w: y[m, n] = sum_k x[m, k] * w[n, k].
void gemv_portable(DType dt, const float* x, int64_t m, int64_t k, const void* w, float* y, int64_t ldy,
                   int64_t n0, int64_t n1) {
  std::vector<float> row(k);
  const size_t es = dtype_size(dt);
  for (int64_t n = n0; n < n1; ++n) {
    const void* wr = static_cast<const char*>(w) + size_t(n * k) * es;
    for (int64_t j = 0; j < k; ++j) row[j] = weight_at(dt, wr, j);
    for (int64_t r = 0; r < m; ++r) {
      const float* xr = x + r * k;
      float acc = 0.0f;
      for (int64_t j = 0; j < k; ++j) acc += xr[j] * row[j];
      y[r * ldy + n] = acc;
    }
  }
}

// AVX2 GEMV: each weight row is read (and converted) once, 8 lanes at a time, for all M rows of x.
// R weight rows go through together: one FMA chain per (x row, weight row) is too short to cover
// the FMA latency and one stream per thread too few for the memory system (measured on a 2-core
// Xeon: ~5 GB/s with R = 1, ~11-15 GB/s with R = 6-7, i.e. the read bandwidth). Each output is
// still one accumulator over k in order, then hsum8, then the scalar tail: the same bits as R = 1.
template <DType DT>
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8_as(const void* row, int64_t i) {
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(row) + i);
  } else {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + i));
    if constexpr (DT == DType::F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// Rows [n, n + R) of w for the M rows of x: M * R accumulators (kept <= 12 of the 16 ymm registers).
template <DType DT, int M, int R>
__attribute__((target("avx2,fma,f16c"))) void gemv_rows(const float* x, int64_t k, const void* w, float* y,
                                                         int64_t ldy, int64_t n, TilePrefetch& pf) {
  constexpr size_t es = DT == DType::F32 ? 4 : 2;
  const void* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = static_cast<const char*>(w) + size_t((n + r) * k) * es;
  __m256 acc[M][R];
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    pf.step();
    __m256 xv[M];
    for (int m = 0; m < M; ++m) xv[m] = _mm256_loadu_ps(x + m * k + j);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = load8_as<DT>(wr[r], j);
      for (int m = 0; m < M; ++m) acc[m][r] = _mm256_fmadd_ps(xv[m], wv, acc[m][r]);
    }
  }
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) {
      float s = vmath::hsum8(acc[m][r]);
      for (int64_t t = j; t < k; ++t) s += x[m * k + t] * weight_at(DT, wr[r], t);
      y[m * ldy + n + r] = s;
    }
}

template <DType DT, int M>
void gemv_avx2_m(const float* x, int64_t k, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1,
                 TilePrefetch& pf) {
  // Weight rows per pass: as many as fit 12 accumulators (M = 1: 8, the loads need the rest).
  constexpr int R = M == 1 ? 8 : M == 2 ? 6 : M == 3 ? 4 : kAvx2RowsPer4;
  int64_t n = n0;
  for (; n + R <= n1; n += R) gemv_rows<DT, M, R>(x, k, w, y, ldy, n, pf);
  for (; n < n1; ++n) gemv_rows<DT, M, 1>(x, k, w, y, ldy, n, pf);
}

template <DType DT>
void gemv_avx2_dt(const float* x, int64_t m, int64_t k, const void* w, float* y, int64_t ldy, int64_t n0,
                  int64_t n1, TilePrefetch& pf) {
  switch (m) {
    case 1: return gemv_avx2_m<DT, 1>(x, k, w, y, ldy, n0, n1, pf);
    case 2: return gemv_avx2_m<DT, 2>(x, k, w, y, ldy, n0, n1, pf);
    case 3: return gemv_avx2_m<DT, 3>(x, k, w, y, ldy, n0, n1, pf);
    default: return gemv_avx2_m<DT, 4>(x, k, w, y, ldy, n0, n1, pf);
  }
}

void gemv_avx2(DType dt, const float* x, int64_t m, int64_t k, const void* w, float* y, int64_t ldy, int64_t n0,
               int64_t n1, TilePrefetch& pf) {
  static_assert(kGemvMaxRows == 4, "gemv_avx2_dt instantiates M = 1..4");
  if (dt == DType::F32) return gemv_avx2_dt<DType::F32>(x, m, k, w, y, ldy, n0, n1, pf);
  if (dt == DType::F16) return gemv_avx2_dt<DType::F16>(x, m, k, w, y, ldy, n0, n1, pf);
  return gemv_avx2_dt<DType::BF16>(x, m, k, w, y, ldy, n0, n1, pf);
}

// The same GEMV with 16-lane AVX-512 registers (twice the work per load and FMA, 32 registers so
// more weight rows in flight): one 16-lane accumulator per output over k in order, then the
// AVX-512 horizontal sum, then the scalar tail. (Different lanes than the AVX2 path, so the last
// bits differ between the two; each is the same for any thread count.)
template <DType DT>
__attribute__((target("avx512f"))) inline __m512 load16_as(const void* row, int64_t i) {
  if constexpr (DT == DType::F32) {
    return _mm512_loadu_ps(static_cast<const float*>(row) + i);
  } else {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i));
    if constexpr (DT == DType::F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <DType DT, int M, int R>
__attribute__((target("avx512f"))) void gemv_rows512(const float* x, int64_t k, const void* w, float* y,
                                                      int64_t ldy, int64_t n, TilePrefetch& pf) {
  constexpr size_t es = DT == DType::F32 ? 4 : 2;
  const void* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = static_cast<const char*>(w) + size_t((n + r) * k) * es;
  __m512 acc[M][R];
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_setzero_ps();
  int64_t j = 0;
  const size_t ahead = pf.rows_ahead ? size_t(R) * size_t(k) * es : 0;  // bytes from a row to its next pass's
  for (; j + 16 <= k; j += 16) {
    pf.step();
    if (ahead != 0)
      for (int r = 0; r < R; ++r)
        _mm_prefetch(static_cast<const char*>(wr[r]) + ahead + size_t(j) * es, _MM_HINT_T1);
    __m512 xv[M];
    for (int m = 0; m < M; ++m) xv[m] = _mm512_loadu_ps(x + m * k + j);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = load16_as<DT>(wr[r], j);
      for (int m = 0; m < M; ++m) acc[m][r] = _mm512_fmadd_ps(xv[m], wv, acc[m][r]);
    }
  }
  float sums[M][R];
  hsum::reduce_add<M, R>(acc, sums);  // _mm512_reduce_add_ps of each, several at once
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) {
      float s = sums[m][r];
      for (int64_t t = j; t < k; ++t) s += x[m * k + t] * weight_at(DT, wr[r], t);
      y[m * ldy + n + r] = s;
    }
}

template <DType DT, int M>
void gemv_avx512_m(const float* x, int64_t k, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1,
                   TilePrefetch& pf) {
  constexpr int R = M == 1 ? 12 : M == 2 ? 8 : M == 3 ? 6 : kAvx512RowsPer4;  // <= 24 of the 32 zmm registers
  int64_t n = n0;
  for (; n + R <= n1; n += R) gemv_rows512<DT, M, R>(x, k, w, y, ldy, n, pf);
  // The last rows together too (one row alone is a single FMA chain per x row, bound by loads).
  for (; n + 4 <= n1; n += 4) gemv_rows512<DT, M, 4>(x, k, w, y, ldy, n, pf);
  switch (n1 - n) {
    case 1: return gemv_rows512<DT, M, 1>(x, k, w, y, ldy, n, pf);
    case 2: return gemv_rows512<DT, M, 2>(x, k, w, y, ldy, n, pf);
    case 3: return gemv_rows512<DT, M, 3>(x, k, w, y, ldy, n, pf);
    default: return;
  }
}

template <DType DT>
void gemv_avx512_dt(const float* x, int64_t m, int64_t k, const void* w, float* y, int64_t ldy, int64_t n0,
                    int64_t n1, TilePrefetch& pf) {
  switch (m) {
    case 1: return gemv_avx512_m<DT, 1>(x, k, w, y, ldy, n0, n1, pf);
    case 2: return gemv_avx512_m<DT, 2>(x, k, w, y, ldy, n0, n1, pf);
    case 3: return gemv_avx512_m<DT, 3>(x, k, w, y, ldy, n0, n1, pf);
    default: return gemv_avx512_m<DT, 4>(x, k, w, y, ldy, n0, n1, pf);
  }
}

void gemv_avx512(DType dt, const float* x, int64_t m, int64_t k, const void* w, float* y, int64_t ldy,
                 int64_t n0, int64_t n1, TilePrefetch& pf) {
  if (dt == DType::F32) return gemv_avx512_dt<DType::F32>(x, m, k, w, y, ldy, n0, n1, pf);
  if (dt == DType::F16) return gemv_avx512_dt<DType::F16>(x, m, k, w, y, ldy, n0, n1, pf);
  return gemv_avx512_dt<DType::BF16>(x, m, k, w, y, ldy, n0, n1, pf);
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor* b, const Exec& ex) {
  if (dtype_is_quantized(w.dtype)) return linear_quantized(x, w, b, ex, kernel_path_for(ex));  // linear_quant.cpp
  const int64_t k = x.cols(), n = w.dim(0);
  int64_t m = 1;  // not x.rows(), which is 0 when K is 0
  for (int i = 0; i + 1 < x.ndim(); ++i) m *= x.shape[i];
  if (w.dtype == DType::BF16 && m <= kBf16KernelMaxRows) {  // decode steps: linear_bf16.cpp
    const Bf16Kernel kernel = bf16_kernel_for(ex);
    if (kernel != Bf16Kernel::None) return linear_bf16(x, w, b, ex, kernel);
  }
  Shape out_shape = x.shape;
  out_shape.back() = n;
  Tensor y = Tensor::empty(DType::F32, out_shape);
  float* yp = y.f32();
  const float* xp = x.f32();
  if (m == 0 || n == 0) return y;

  if (m <= kGroupedGemvMaxRows) {
    const void* wp = w.data;
    const bool simd = ex.simd(), wide = simd && ex.allow_avx512 && cpu_has_avx512();
    // Each output is one dot product in a fixed order whatever the group, tile or weight-row
    // block it is computed in, so the grouping changes the speed only, never the bits.
    const int64_t row_bytes = k * int64_t(dtype_size(w.dtype));
    int64_t tile = std::max<int64_t>(16, kGemvTileBytes / std::max<int64_t>(1, row_bytes));
    // Row groups of 4 take weight rows 5 (AVX-512) or 3 (AVX2) at a time: a tile of whole blocks
    // leaves no 1-row block (4 FMAs per 5 loads), which with K=4096 was every 16th weight row.
    if (m > kGemvMaxRows) {
      const int64_t block = wide ? kAvx512RowsPer4 : simd ? kAvx2RowsPer4 : 1;
      tile = (tile + block - 1) / block * block;
    }
    detail::parallel_for(ex, n, 16, [&](int64_t n0, int64_t n1) {
      for (int64_t t0 = n0; t0 < n1; t0 += tile) {
        const int64_t t1 = std::min(n1, t0 + tile);
        TilePrefetch first, next;
        first.rows_ahead = true;
        if (m > kGemvMaxRows && t1 < n1) {  // the later groups fetch the next tile
          next.next = static_cast<const char*>(wp) + t1 * row_bytes;
          next.end = static_cast<const char*>(wp) + std::min(n1, t1 + tile) * row_bytes;
        }
        for (int64_t g = 0; g < m; g += kGemvMaxRows) {
          const int64_t mg = std::min(kGemvMaxRows, m - g);
          const float* xg = xp + g * k;
          float* yg = yp + g * n;
          TilePrefetch& pf = g == 0 ? first : next;
          if (g == kGemvMaxRows) next.touch_pages();
          if (wide)
            gemv_avx512(w.dtype, xg, mg, k, wp, yg, n, t0, t1, pf);
          else if (simd)
            gemv_avx2(w.dtype, xg, mg, k, wp, yg, n, t0, t1, pf);
          else
            gemv_portable(w.dtype, xg, mg, k, wp, yg, n, t0, t1);
        }
      }
    });
    if (b) {
      const float* bp = b->f32();
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j) yp[r * n + j] += bp[j];
    }
    return y;
  }

  // Start from the bias (or zero) so that sgemm accumulates onto it with beta = 1.
  float beta = 0.0f;
  if (b) {
    const float* bp = b->f32();
    for (int64_t r = 0; r < m; ++r) std::copy(bp, bp + n, yp + r * n);
    beta = 1.0f;
  }
  if (w.dtype == DType::F32) {
    detail::sgemm(ex, false, true, m, n, k, 1.0f, xp, k, w.f32(), k, beta, yp, n);
    return y;
  }
  const int64_t block = std::max<int64_t>(16, std::min<int64_t>(n, kConvertBlockFloats / std::max<int64_t>(k, 1)));
  std::vector<float> wf(size_t(block * k));
  const uint16_t* wp = w.ptr<uint16_t>();
  for (int64_t n0 = 0; n0 < n; n0 += block) {
    const int64_t nb = std::min(block, n - n0);
    detail::parallel_for(ex, nb, 8, [&](int64_t r0, int64_t r1) {
      detail::half_to_f32(ex, w.dtype, wp + (n0 + r0) * k, wf.data() + r0 * k, (r1 - r0) * k);
    });
    detail::sgemm(ex, false, true, m, nb, k, 1.0f, xp, k, wf.data(), k, beta, yp + n0, n);
  }
  return y;
}

}  // namespace mg::cpu
