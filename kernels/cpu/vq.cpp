// Nearest codeword (EnCodec's RVQ encode) on the CPU: the x . e^T products as one tiled GEMM, then
// the distance and argmax per row over the thread pool. The distance is evaluated exactly as the
// reference (and Backend's host default) writes it, -((|x|^2 - 2 x.e) + |e|^2) in f32 with the
// first index winning ties, so only the GEMM's summation order can differ from it.
#include <immintrin.h>

#include <limits>
#include <vector>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

namespace {

// The index of the largest -((x2 - 2 dots[j]) + e_sq[j]), first index on ties, as the serial scan.
int64_t argmax_scalar(const float* dots, const float* e_sq, float x2, int64_t V) {
  float best = -std::numeric_limits<float>::infinity();
  int64_t arg = 0;
  for (int64_t j = 0; j < V; ++j) {
    const float dist = -((x2 - 2.0f * dots[j]) + e_sq[j]);
    if (dist > best) {
      best = dist;
      arg = j;
    }
  }
  return arg;
}

// The same with 16 lanes: each lane keeps its first best (strictly greater replaces), then the lanes
// are merged by value and, on equal values, the smaller index: exactly the serial scan's answer.
// x2 - 2 d is one rounding either way (2 d is exact), so the distances are the same floats.
__attribute__((target("avx512f"))) int64_t argmax_avx512(const float* dots, const float* e_sq, float x2, int64_t V) {
  const __m512 vx2 = _mm512_set1_ps(x2), two = _mm512_set1_ps(2.0f);
  const __m512i sign = _mm512_set1_epi32(int32_t(0x80000000u));
  __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512i besti = _mm512_setzero_si512(), idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  int64_t j = 0;
  for (; j + 16 <= V; j += 16) {
    const __m512 t = _mm512_fnmadd_ps(two, _mm512_loadu_ps(dots + j), vx2);
    const __m512 dist = _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(_mm512_add_ps(t, _mm512_loadu_ps(e_sq + j))), sign));
    const __mmask16 gt = _mm512_cmp_ps_mask(dist, best, _CMP_GT_OQ);
    best = _mm512_mask_blend_ps(gt, best, dist);
    besti = _mm512_mask_blend_epi32(gt, besti, idx);
    idx = _mm512_add_epi32(idx, step);
  }
  alignas(64) float bv[16];
  alignas(64) int32_t bi[16];
  _mm512_store_ps(bv, best);
  _mm512_store_si512(bi, besti);
  float b = -std::numeric_limits<float>::infinity();
  int64_t arg = 0;
  bool found = false;
  for (int l = 0; l < 16; ++l)
    if (bv[l] > b || (found && bv[l] == b && bi[l] < arg)) {
      b = bv[l];
      arg = bi[l];
      found = true;
    }
  for (; j < V; ++j) {
    const float dist = -((x2 - 2.0f * dots[j]) + e_sq[j]);
    if (dist > b) {
      b = dist;
      arg = j;
    }
  }
  return arg;
}

}  // namespace

Tensor vq_nearest(const Tensor& x, const Tensor& embed, const Exec& ex) {
  const int64_t N = x.dim(0), V = embed.dim(0), D = x.dim(1);
  Tensor ids = Tensor::empty(DType::I64, {N});
  if (N == 0) return ids;
  Tensor xe = Tensor::empty(DType::F32, {N, V});  // a Tensor: reused between calls during an encode
  detail::sgemm(ex, false, true, N, V, D, 1.0f, x.f32(), D, embed.f32(), D, 0.0f, xe.f32(), V);
  std::vector<float> e_sq(static_cast<size_t>(V));
  for (int64_t j = 0; j < V; ++j) {
    const float* e = embed.f32() + j * D;
    float s = 0;
    for (int64_t d = 0; d < D; ++d) s += e[d] * e[d];
    e_sq[size_t(j)] = s;
  }
  detail::parallel_for(ex, N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* xr = x.f32() + n * D;
      float x2 = 0;
      for (int64_t d = 0; d < D; ++d) x2 += xr[d] * xr[d];
      const float* dots = xe.f32() + n * V;
      ids.ptr<int64_t>()[n] = ex.simd() && ex.allow_avx512 && cpu_has_avx512()
                                  ? argmax_avx512(dots, e_sq.data(), x2, V)
                                  : argmax_scalar(dots, e_sq.data(), x2, V);
    }
  });
  return ids;
}

}  // namespace mg::cpu
