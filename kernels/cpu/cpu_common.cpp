#include "kernels/cpu/cpu_common.h"

#include "kernels/cpu/blas.h"

#include <immintrin.h>

#include <algorithm>

namespace mg::cpu {

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return has;
}

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

namespace detail {

namespace {

constexpr int64_t kGemvRowBlock = 256;

// An empty inner dimension (K = 0) is legal maths but illegal leading dimensions for BLAS.
void scale_only(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

}  // namespace

void sgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) return scale_only(m, n, beta, c, ldc);
  blas::sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void sgemm(const Exec& ex, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) return scale_only(m, n, beta, c, ldc);
  if (m * n * k < kGemmMinTiledWork) {
    sgemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const int64_t tiles_m = (m + kGemmTileM - 1) / kGemmTileM, tiles_n = (n + kGemmTileN - 1) / kGemmTileN;
  parallel_for(ex, tiles_m * tiles_n, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = (t / tiles_n) * kGemmTileM, j0 = (t % tiles_n) * kGemmTileN;
      const int64_t mi = std::min(kGemmTileM, m - i0), nj = std::min(kGemmTileN, n - j0);
      // Row i0 of op(A) starts at a + i0*lda (no trans) or a + i0 (trans); likewise column j0 of op(B).
      const float* ai = trans_a ? a + i0 : a + i0 * lda;
      const float* bj = trans_b ? b + j0 * ldb : b + j0;
      blas::sgemm(trans_a, trans_b, mi, nj, k, alpha, ai, lda, bj, ldb, beta, c + i0 * ldc + j0, ldc);
    }
  });
}

void sgemv(const Exec& ex, int64_t m, int64_t n, float alpha, const float* a, int64_t lda, const float* x,
           float beta, float* y) {
  if (m == 0) return;
  if (n == 0) return scale_only(m, 1, beta, y, 1);
  const int64_t blocks = (m + kGemvRowBlock - 1) / kGemvRowBlock;
  parallel_for(ex, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kGemvRowBlock, rows = std::min(kGemvRowBlock, m - r0);
      blas::sgemv(rows, n, alpha, a + r0 * lda, lda, x, beta, y + r0);
    }
  });
}

void parallel_for(const Exec& ex, int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (ex.pool == nullptr || ex.pool->size() == 1 || n <= min_chunk) {
    fn(0, n);
    return;
  }
  ex.pool->parallel_for(n, fn, min_chunk);
}

__attribute__((target("avx2,fma,f16c"))) static void half_to_f32_avx2(DType dt, const uint16_t* src, float* dst,
                                                                       int64_t n) {
  int64_t i = 0;
  if (dt == DType::F16) {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  } else {
    for (; i + 8 <= n; i += 8) {
      __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
      _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
  }
  for (; i < n; ++i) dst[i] = dt == DType::F16 ? f16_to_f32(src[i]) : bf16_to_f32(src[i]);
}

void half_to_f32(const Exec& ex, DType dt, const uint16_t* src, float* dst, int64_t n) {
  if (ex.simd()) {
    half_to_f32_avx2(dt, src, dst, n);
    return;
  }
  if (dt == DType::F16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
  }
}

}  // namespace detail
}  // namespace mg::cpu
