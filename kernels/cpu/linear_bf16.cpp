// linear with bf16 weights and few rows (decode steps, batched decode steps): y = x . w^T (+ b),
// bound by reading w. Two AVX-512 kernels, chosen in linear_bf16.h:
//
//  - Widen (the default): f32 activations, each 64-byte line of w (32 bf16) widened to two f32
//    vectors with one shift and one mask, no shuffles: a bf16 value is the top half of its f32, so
//    the even elements are (dword << 16) and the odd ones (dword & 0xffff0000). x is permuted once
//    per call into the same even/odd order, so each line costs 2 FMAs per row of x and no
//    conversion instruction (linear.cpp's AVX-512 GEMV zero-extends with vpmovzxwd, a shuffle
//    that runs on one port and doubles the work per byte). f32 x f32 products, f32 sums: the
//    result differs from the portable loop only in the order of the sums.
//  - Dot (vdpbf16ps, AVX-512 BF16): x rounded to bf16 once per call, each line one vdpbf16ps per
//    row of x. Fewer instructions, but x loses 16 bits of mantissa: a relative error of up to
//    2^-9 per product, which the f32 paths do not have. Kept as an option (MUSICGEN_BF16_KERNEL=dot)
//    for the measurements in docs/PERFORMANCE.md; see there which one is faster and why.
//
// Rows of x are independent: every output is one accumulator chain over k in a fixed order, then a
// fixed horizontal sum, whatever M is, whichever M-row group it is in and whatever the thread count
// (w is cut over N only). So a row gives the same bits alone or in a batch of 64.
#include "kernels/cpu/linear_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/hsum_avx512.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace mg::cpu {

namespace {

constexpr int64_t kLine = 32;            // bf16 weights per 64-byte line
constexpr int64_t kRowGroup = 4;         // rows of x per pass over a block of w
constexpr int64_t kL2BlockBytes = 1 << 18;  // w rows per block: ~256 KiB, re-read from L2 by each row group
constexpr int64_t kStreamBytes = 4096;      // bytes of w one stream reads per pass, at least (run_rows)

inline float bf16_value(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// x[m, k] in the even/odd order of the widened lines: for each line j, 16 even then 16 odd values.
void permute_even_odd(const float* x, int64_t m, int64_t k, float* xp) {
  const int64_t kl = k / kLine * kLine;
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * k;
    float* o = xp + r * kl;
    for (int64_t j = 0; j < kl; j += kLine)
      for (int i = 0; i < 16; ++i) {
        o[j + i] = xr[j + 2 * i];
        o[j + 16 + i] = xr[j + 2 * i + 1];
      }
  }
}

// Scalar tail of one output: the k % 32 last products, in order.
inline float tail_dot(const float* xr, const uint16_t* wr, int64_t j0, int64_t k) {
  float s = 0.0f;
  for (int64_t t = j0; t < k; ++t) s += xr[t] * bf16_value(wr[t]);
  return s;
}

// Widen kernel: rows [n, n + R) of w for M rows of x (xp permuted, x for the tail).
template <int M, int R>
__attribute__((target("avx512f"))) void widen_rows(const float* xp, const float* x, int64_t k,
                                                    const uint16_t* w, float* y, int64_t ldy, int64_t n,
                                                    int64_t stride) {
  const int64_t kl = k / kLine * kLine;
  const uint16_t* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = w + (n + r * stride) * k;
  __m512 acc[M][R];
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_setzero_ps();
  const __m512i hi = _mm512_set1_epi32(int(0xffff0000u));
  // The same lines of the rows the next pass reads, into L2 (into L1 they evicted this pass's
  // lines: slower; into L2 the decode step was 15-35% faster, docs/PERFORMANCE.md).
  const int64_t ahead = R * stride * k;
  for (int64_t j = 0; j < kl; j += kLine) {
    for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(wr[r] + ahead + j), _MM_HINT_T1);
    __m512 xe[M], xo[M];
    for (int m = 0; m < M; ++m) {
      xe[m] = _mm512_loadu_ps(xp + m * kl + j);
      xo[m] = _mm512_loadu_ps(xp + m * kl + j + 16);
    }
    for (int r = 0; r < R; ++r) {
      const __m512i v = _mm512_loadu_si512(wr[r] + j);
      const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
      const __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
      for (int m = 0; m < M; ++m) {
        acc[m][r] = _mm512_fmadd_ps(xe[m], we, acc[m][r]);
        acc[m][r] = _mm512_fmadd_ps(xo[m], wo, acc[m][r]);
      }
    }
  }
  float sums[M][R];
  hsum::reduce_add<M, R>(acc, sums);  // _mm512_reduce_add_ps of each, several at once
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) y[m * ldy + n + r * stride] = sums[m][r] + tail_dot(x + m * k, wr[r], kl, k);
}

// Dot kernel: the same with x already rounded to bf16 (xb, 32 per line) and vdpbf16ps.
template <int M, int R>
__attribute__((target("avx512f,avx512bf16"))) void dot_rows(const uint16_t* xb, const float* x, int64_t k,
                                                             const uint16_t* w, float* y, int64_t ldy, int64_t n,
                                                             int64_t stride) {
  const int64_t kl = k / kLine * kLine;
  const uint16_t* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = w + (n + r * stride) * k;
  __m512 acc[M][R];
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_setzero_ps();
  for (int64_t j = 0; j < kl; j += kLine) {
    __m512bh xv[M];
    for (int m = 0; m < M; ++m) xv[m] = (__m512bh)_mm512_loadu_si512(xb + m * kl + j);
    for (int r = 0; r < R; ++r) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(wr[r] + j);
      for (int m = 0; m < M; ++m) acc[m][r] = _mm512_dpbf16_ps(acc[m][r], xv[m], wv);
    }
  }
  float sums[M][R];
  hsum::reduce_add<M, R>(acc, sums);
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) y[m * ldy + n + r * stride] = sums[m][r] + tail_dot(x + m * k, wr[r], kl, k);
}

__attribute__((target("avx512f,avx512bf16"))) void round_to_bf16(const float* x, int64_t m, int64_t k,
                                                                  uint16_t* xb) {
  const int64_t kl = k / kLine * kLine;
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < kl; j += kLine) {
      const __m512 lo = _mm512_loadu_ps(x + r * k + j), hi = _mm512_loadu_ps(x + r * k + j + 16);
      _mm512_storeu_si512(xb + r * kl + j, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

// Weight rows per pass for M rows of x: <= 24 accumulators of the 32 zmm registers.
template <int M>
constexpr int rows_per_pass() {
  return M == 1 ? 12 : M == 2 ? 8 : M == 3 ? 6 : 5;
}

// Rows read per stream: a pass reads R streams, and a core reads short streams slower (measured on
// a 2-core EPYC, M = 2: 13 GB/s with 2 KB rows, 19-21 GB/s with 4 KB rows, f32 or bf16 alike), so
// with rows under 4 KB each stream runs over S consecutive rows: the pass does rows n + s + S*r for
// s = 0..S-1, and stream r moves on from row n + S*r to the next one in memory. Each output is still
// computed alone, in the same order: the bits do not depend on S.
int64_t rows_per_stream(int64_t k) { return std::clamp<int64_t>(kStreamBytes / std::max<int64_t>(2 * k, 1), 1, 8); }

// One pass: rows n, n + stride, ..., n + (R - 1) * stride of w.
template <bool Dot, int M, int R>
void pass(const void* xk, const float* x, int64_t k, const uint16_t* w, float* y, int64_t ldy, int64_t n,
          int64_t stride) {
  if constexpr (Dot)
    dot_rows<M, R>(static_cast<const uint16_t*>(xk), x, k, w, y, ldy, n, stride);
  else
    widen_rows<M, R>(static_cast<const float*>(xk), x, k, w, y, ldy, n, stride);
}

template <bool Dot, int M>
void run_rows(const void* xk, const float* x, int64_t k, const uint16_t* w, float* y, int64_t ldy, int64_t n0,
              int64_t n1) {
  constexpr int R = rows_per_pass<M>();
  const int64_t S = rows_per_stream(k);
  int64_t n = n0;
  for (; n + S * R <= n1; n += S * R)
    for (int64_t s = 0; s < S; ++s) pass<Dot, M, R>(xk, x, k, w, y, ldy, n + s, S);
  // The last rows several at a time too: a pass of one weight row is bound by the loads of x.
  for (; n + R <= n1; n += R) pass<Dot, M, R>(xk, x, k, w, y, ldy, n, 1);
  for (; n + 4 <= n1; n += 4) pass<Dot, M, 4>(xk, x, k, w, y, ldy, n, 1);
  switch (n1 - n) {
    case 1: return pass<Dot, M, 1>(xk, x, k, w, y, ldy, n, 1);
    case 2: return pass<Dot, M, 2>(xk, x, k, w, y, ldy, n, 1);
    case 3: return pass<Dot, M, 3>(xk, x, k, w, y, ldy, n, 1);
    default: return;
  }
}

// Rows [n0, n1) of w for all m rows of x, in groups of up to 4 rows of x; w is walked in blocks
// that stay in L2 while every group reads them.
template <bool Dot>
void gemv_block(const void* xk, size_t xk_row_bytes, const float* x, int64_t m, int64_t k, const uint16_t* w,
                float* y, int64_t n, int64_t n0, int64_t n1) {
  int64_t block = std::max<int64_t>(16, kL2BlockBytes / std::max<int64_t>(2 * k, 1));
  // Whole passes of the 4-row groups per block: no rows left over for short passes in each block.
  if (m > kRowGroup) {
    const int64_t pass_rows = rows_per_stream(k) * rows_per_pass<kRowGroup>();
    block = (block + pass_rows - 1) / pass_rows * pass_rows;
  }
  for (int64_t b0 = n0; b0 < n1; b0 += block) {
    const int64_t b1 = std::min(n1, b0 + block);
    for (int64_t r0 = 0; r0 < m; r0 += kRowGroup) {
      const void* xg = static_cast<const char*>(xk) + size_t(r0) * xk_row_bytes;
      const float* xr = x + r0 * k;
      float* yr = y + r0 * n;
      switch (std::min(kRowGroup, m - r0)) {
        case 1: run_rows<Dot, 1>(xg, xr, k, w, yr, n, b0, b1); break;
        case 2: run_rows<Dot, 2>(xg, xr, k, w, yr, n, b0, b1); break;
        case 3: run_rows<Dot, 3>(xg, xr, k, w, yr, n, b0, b1); break;
        default: run_rows<Dot, 4>(xg, xr, k, w, yr, n, b0, b1); break;
      }
    }
  }
}

}  // namespace

Bf16Kernel bf16_kernel_for(const Exec& ex) {
  if (kernel_path_for(ex) != KernelPath::Avx512 || !cpu_has_avx512()) return Bf16Kernel::None;
  static const Bf16Kernel chosen = [] {
    const char* v = std::getenv("MUSICGEN_BF16_KERNEL");
    if (v && std::strcmp(v, "off") == 0) return Bf16Kernel::None;
    if (v && std::strcmp(v, "dot") == 0 && __builtin_cpu_supports("avx512bf16")) return Bf16Kernel::Dot;
    return Bf16Kernel::Widen;
  }();
  return chosen;
}

Tensor linear_bf16(const Tensor& x, const Tensor& w, const Tensor* b, const Exec& ex, Bf16Kernel kernel) {
  const int64_t k = x.cols(), n = w.dim(0);
  int64_t m = 1;
  for (int i = 0; i + 1 < x.ndim(); ++i) m *= x.shape[i];
  Shape out_shape = x.shape;
  out_shape.back() = n;
  Tensor y = Tensor::empty(DType::F32, out_shape);
  if (m == 0 || n == 0) return y;
  float* yp = y.f32();
  const float* xp = x.f32();
  const uint16_t* wp = w.ptr<uint16_t>();
  const int64_t kl = k / kLine * kLine;
  if (kernel == Bf16Kernel::Dot) {
    std::vector<uint16_t> xb(size_t(m * kl) + 1);
    round_to_bf16(xp, m, k, xb.data());
    detail::parallel_for(ex, n, 16, [&](int64_t n0, int64_t n1) {
      gemv_block<true>(xb.data(), size_t(kl) * 2, xp, m, k, wp, yp, n, n0, n1);
    });
  } else {
    std::vector<float> xe(size_t(m * kl) + 1);
    permute_even_odd(xp, m, k, xe.data());
    detail::parallel_for(ex, n, 16, [&](int64_t n0, int64_t n1) {
      gemv_block<false>(xe.data(), size_t(kl) * 4, xp, m, k, wp, yp, n, n0, n1);
    });
  }
  if (b) {
    const float* bp = b->f32();
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) yp[r * n + j] += bp[j];
  }
  return y;
}

}  // namespace mg::cpu
