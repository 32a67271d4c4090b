// attention: softmax(q . k^T * scale) . v per head, over the first T rows of k and v (a KV cache),
// for one row (attention) or R independent rows in one call (attention_rows: the decode step's CFG
// rows, one pool hand-off for all of them), or several such problems in one call
// (attention_rows_batch: the server's shared step, every request over its own cache).
//
// The host default (kernels/backend_fallbacks.cpp) is scalar and single-threaded; at
// musicgen-small's size a decode step attends 24 layers x 2 CFG rows x (self + cross) over caches
// of up to ~1500 rows, the largest cost after the weight GEMVs. Three paths, chosen by
// kernel_path_for (MUSICGEN_CPU_PATH can lower it):
// - AVX-512, head width a multiple of 16: the split-key path of attention_split.cpp (key blocks
//   read in stored order over all heads, partial softmaxes combined per query);
// - AVX2: each (row, head, query) is one work item on the pool; dot products and the weighted sum
//   of v rows use AVX2/FMA over the head dimension;
// - portable: the fallback's loops, bit for bit.
// Every item is computed by exactly one thread in a fixed order, so no path's result depends on the
// thread count or on the other rows of the call; the SIMD paths differ from the portable one only
// by summation order and a vectorised exp (relative error ~1e-7).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_internal.h"
#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/vec_math.h"

namespace mg::cpu {

namespace {

// K and V are f32, or f16 (a half KV cache, read through these loads).
using half_t = uint16_t;
inline float load1(const float* p) { return *p; }
inline float load1(const half_t* p) { return f16_to_f32(*p); }

template <typename KV>
using Problem = detail::AttentionProblem<KV>;

// The fallback's loops for one (row, head, query): scores, max, exp, sum, then p/sum-weighted v rows.
template <typename KV>
void item_portable(const Problem<KV>& P, int64_t r, int h, int64_t i, float* p) {
  const int64_t visible = P.visible(i);
  const float* qi = P.q + (r * P.S + i) * P.qs + h * P.dh;
  const KV* k = P.k + r * P.kv_row;
  const KV* v = P.v + r * P.kv_row;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < visible; ++j) {
    const KV* kj = k + j * P.D + h * P.dh;
    float s = 0;
    for (int64_t d = 0; d < P.dh; ++d) s += qi[d] * load1(kj + d);
    p[j] = s * P.scale;
    mx = std::max(mx, p[j]);
  }
  float sum = 0;
  for (int64_t j = 0; j < visible; ++j) {
    p[j] = std::exp(p[j] - mx);
    sum += p[j];
  }
  float* o = P.out + (r * P.S + i) * P.D + h * P.dh;
  for (int64_t d = 0; d < P.dh; ++d) o[d] = 0;
  for (int64_t j = 0; j < visible; ++j) {
    const float w = p[j] / sum;
    const KV* vj = v + j * P.D + h * P.dh;
    for (int64_t d = 0; d < P.dh; ++d) o[d] += w * load1(vj + d);
  }
}

// 8 lanes of K or V.
__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(const half_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// e^x for x <= 0 (scores minus their max), 8 lanes: x = n ln2 + r with |r| <= ln2/2, e^r by a
// degree-6 polynomial (Cephes expf), times 2^n through the exponent bits. Within 2 ulp of
// std::exp; below -87.3 (where 2^n would leave the normal range) the result is 0, as the weight
// of such a key is anyway below float resolution next to the max's weight of 1.
__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
  const __m256 too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(too_small, _mm256_mul_ps(y, _mm256_castsi256_ps(pow2n)));
}

// One head's slice of a cached key or value row is dh values (128 bytes in f16 for MusicGen) and
// consecutive rows are D values apart (2 KB): a stream of short strided reads that the hardware
// prefetcher follows poorly, so a late decode step waited on memory for most of its attention
// (musicgen-small q4 at 2 threads: ~28 us more per step for each cached position). The row
// kPrefetchKeys ahead is requested while this one is used; prefetches only move data, so the
// results are unchanged.
constexpr int64_t kPrefetchKeys = 6;
template <typename KV>
inline void prefetch_head(const KV* row, int64_t dh) {
  const char* c = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < dh * int64_t(sizeof(KV)); b += 64) _mm_prefetch(c + b, _MM_HINT_T0);
}

// AVX2 version for dh a multiple of 8 (MusicGen: 64). The output block of one head (dh floats) is
// accumulated in registers when it fits (dh <= 64), else in memory 8 lanes at a time.
template <typename KV>
__attribute__((target("avx2,fma,f16c"))) void item_avx2(const Problem<KV>& P, int64_t r, int h, int64_t i, float* p) {
  const int64_t visible = P.visible(i);
  const int64_t dh = P.dh, D = P.D;
  const float* qi = P.q + (r * P.S + i) * P.qs + h * dh;
  const KV* kh = P.k + r * P.kv_row + h * dh;
  const KV* vh = P.v + r * P.kv_row + h * dh;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < visible; ++j) {
    const KV* kj = kh + j * D;
    if (j + kPrefetchKeys < visible) prefetch_head(kh + (j + kPrefetchKeys) * D, dh);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t d = 0;
    for (; d + 16 <= dh; d += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qi + d), load8(kj + d), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(qi + d + 8), load8(kj + d + 8), a1);
    }
    if (d < dh) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qi + d), load8(kj + d), a0);
    p[j] = vmath::hsum8(_mm256_add_ps(a0, a1)) * P.scale;
    mx = std::max(mx, p[j]);
  }
  // exp 8 scores at a time (scalar std::exp was a third of an item at T = 500).
  const __m256 vmx = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= visible; j += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(p + j), vmx));
    _mm256_storeu_ps(p + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = vmath::hsum8(vsum);
  for (; j < visible; ++j) {
    p[j] = std::exp(p[j] - mx);
    sum += p[j];
  }
  float* o = P.out + (r * P.S + i) * D + h * dh;
  constexpr int kRegBlocks = 8;  // 8 x 8 lanes = dh 64 held in registers
  if (dh <= 8 * kRegBlocks) {
    const int nb = int(dh / 8);
    __m256 acc[kRegBlocks];
    for (int b = 0; b < nb; ++b) acc[b] = _mm256_setzero_ps();
    for (int64_t j = 0; j < visible; ++j) {
      const __m256 w = _mm256_set1_ps(p[j] / sum);
      const KV* vj = vh + j * D;
      if (j + kPrefetchKeys < visible) prefetch_head(vh + (j + kPrefetchKeys) * D, dh);
      for (int b = 0; b < nb; ++b) acc[b] = _mm256_fmadd_ps(w, load8(vj + 8 * b), acc[b]);
    }
    for (int b = 0; b < nb; ++b) _mm256_storeu_ps(o + 8 * b, acc[b]);
    return;
  }
  for (int64_t d = 0; d < dh; ++d) o[d] = 0;
  for (int64_t j = 0; j < visible; ++j) {
    const __m256 w = _mm256_set1_ps(p[j] / sum);
    const KV* vj = vh + j * D;
    for (int64_t d = 0; d < dh; d += 8)
      _mm256_storeu_ps(o + d, _mm256_fmadd_ps(w, load8(vj + d), _mm256_loadu_ps(o + d)));
  }
}

template <typename KV>
void run(const Problem<KV>& P, int heads, const Exec& ex) {
  if (detail::attention_split_applies(P.dh, ex)) {
    detail::attention_split(P, heads, ex);
    return;
  }
  const bool simd = ex.simd() && P.dh % 8 == 0;
  // Items ordered row-major, then head-major: item = (r * heads + h) * S + i. One item costs
  // ~T * dh * 2 multiply-adds; a few per chunk keep the pool's hand-off cost small next to the work.
  const int64_t items = P.R * int64_t(heads) * P.S;
  const int64_t min_chunk = std::max<int64_t>(1, 8192 / std::max<int64_t>(1, P.T * P.dh / 8));
  detail::parallel_for(ex, items, min_chunk, [&](int64_t a, int64_t b) {
    std::vector<float> p(size_t(P.T));
    for (int64_t it = a; it < b; ++it) {
      const int64_t r = it / (int64_t(heads) * P.S);
      const int h = int(it / P.S % heads);
      const int64_t i = it % P.S;
      if (simd)
        item_avx2(P, r, h, i, p.data());
      else
        item_portable(P, r, h, i, p.data());
    }
  });
}

// q[R * S, Wq] (rows r * S + i), k/v holding R caches kv_row elements apart -> out[R * S, D].
Tensor run_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t R, int64_t S, int64_t Wq, int64_t kv_row,
                int64_t T, int heads, float scale, bool causal, const Exec& ex) {
  const int64_t D = k.shape.back();
  Tensor out = Tensor::empty(DType::F32, {R * S, D});
  if (R * S == 0) return out;
  if (k.dtype == DType::F16) {
    run(Problem<half_t>{q.f32(), k.ptr<half_t>(), v.ptr<half_t>(), out.f32(), R, S, T, D, D / heads, scale, causal, Wq,
                        kv_row},
        heads, ex);
  } else {
    run(Problem<float>{q.f32(), k.f32(), v.f32(), out.f32(), R, S, T, D, D / heads, scale, causal, Wq, kv_row}, heads,
        ex);
  }
  return out;
}

template <typename KV>
Problem<KV> job_problem(const AttentionRowsJob& a, float* out, int heads, float scale, bool causal) {
  const int64_t D = a.k.dim(2);
  return Problem<KV>{a.q.f32(), a.k.ptr<KV>(), a.v.ptr<KV>(), out + a.out_row0 * D, a.q.dim(0), a.q.dim(1), a.T, D,
                     D / heads, scale, causal, a.q.dim(2), a.k.dim(1) * D};
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale, bool causal,
                 const Exec& ex) {
  return run_rows(q, k, v, 1, q.dim(0), q.dim(1), 0, T, heads, scale, causal, ex);
}

Tensor attention_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                      bool causal, const Exec& ex) {
  const int64_t R = q.dim(0), S = q.dim(1);
  return run_rows(q, k, v, R, S, q.dim(2), k.dim(1) * k.dim(2), T, heads, scale, causal, ex).reshape({R, S, k.dim(2)});
}

void attention_rows_batch(Tensor& out, const std::vector<AttentionRowsJob>& jobs, int heads, float scale,
                          bool causal, const Exec& ex) {
  std::vector<Problem<float>> f32s;
  std::vector<Problem<half_t>> f16s;
  for (const AttentionRowsJob& a : jobs) {
    if (a.q.dim(0) * a.q.dim(1) == 0) continue;
    if (a.k.dtype == DType::F16)
      f16s.push_back(job_problem<half_t>(a, out.f32(), heads, scale, causal));
    else
      f32s.push_back(job_problem<float>(a, out.f32(), heads, scale, causal));
  }
  if (detail::attention_split_applies(out.dim(1) / heads, ex)) {
    detail::attention_split_batch(f32s, f16s, heads, ex);
    return;
  }
  // The (row, head, query) paths: one hand-off per job, each exactly attention_rows.
  for (const Problem<float>& P : f32s) run(P, heads, ex);
  for (const Problem<half_t>& P : f16s) run(P, heads, ex);
}

}  // namespace mg::cpu
