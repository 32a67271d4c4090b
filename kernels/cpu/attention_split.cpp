// attention, AVX-512 split-key path: a decode step's attention over a long KV cache, read once, in
// the order it is stored, at memory speed.
//
// A cached key or value row holds every head (D = H * dh values, 2 KB in f16 for musicgen-small).
// The (head, query) items of attention.cpp's AVX2 path each read their head's 128 bytes of every
// row, 2 KB apart: short strided reads that the hardware prefetcher follows poorly, a pass over K
// and then V per head, and with 16 heads and one query per CFG row only 16 items per row to share
// out. Here the keys are cut into blocks of kBlockKeys positions instead, and one work item is
// (row, query, block) over all heads: it streams the block's K rows and then its V rows
// contiguously and leaves a partial result (per head: the block's max score m, its sum of
// e^(s - m), and its e^(s - m)-weighted sum of V rows). The partials of a query are then combined in
// block order (flash-decoding): out = sum_b e^(m_b - M) o_b / sum_b e^(m_b - M) l_b, M = max_b m_b.
//
// Scores of one key for 16 heads come out as one vector (a transposing reduction of the 16 dot
// products), so the block's max, exp and sum run across heads in 16 lanes. Block bounds are fixed
// multiples of kBlockKeys and every item is computed by one thread in a fixed order, so the result
// depends neither on the thread count nor on how many rows or queries share the call: a row of
// attention_rows has the bits of that row alone. It differs from the AVX2 and portable paths by
// summation order and the vectorised exp (relative error ~1e-7).
#include <immintrin.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/cpu/attention_internal.h"
#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/vec_math.h"

// GCC 12 warns that the "undefined" source operand of some AVX-512 intrinsics is uninitialized when
// they are inlined into target("avx512f") functions (GCC bug 105593): not ours to fix.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace mg::cpu::detail {

namespace {

using half_t = uint16_t;
constexpr int64_t kBlockKeys = 64;  // keys per work item: 256 KB of f16 K and V for musicgen-small
constexpr int kLanes = 16;          // heads per score vector
// A chunk of work items on the pool should be worth the hand-off (~1-2 us): about this many
// multiply-adds (a full block of musicgen-small is 131 k).
constexpr int64_t kMinChunkMacs = int64_t(1) << 16;
// Above this many partial results (floats) a query's blocks run in one item, which combines them
// itself (prefill: hundreds of queries); the bits are the same either way.
constexpr int64_t kMaxPartialFloats = int64_t(1) << 21;
// Scores below the max by more than this get weight 0 (e^-87 is below float resolution next to
// the max's weight of 1), and the exp stays in its normal range.
constexpr float kMinExpArg = -87.0f;

__attribute__((target("avx512f"))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) inline __m512 load16(const half_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// e^x for x <= 0, 0 below kMinExpArg.
__attribute__((target("avx512f"))) inline __m512 exp_nonpositive(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kMinExpArg), _CMP_GE_OQ);
  return _mm512_maskz_mov_ps(keep, vmath::exp16(_mm512_max_ps(x, _mm512_set1_ps(kMinExpArg))));
}

// Lane h = the sum of a[h]'s 16 lanes, for 16 vectors at once (a fixed pairwise tree: within
// 128-bit quarters, then across them).
__attribute__((target("avx512f"))) inline __m512 transpose_sum16(const __m512* a) {
  __m512 b[8], c[4], d[2];
  for (int i = 0; i < 8; ++i)
    b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
  for (int i = 0; i < 4; ++i)
    c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  for (int i = 0; i < 2; ++i)
    d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Where one query's partial result for one block lives: o[H * dh] (unnormalised), then m and l
// for each head, padded to whole 16-lane groups.
struct PartLayout {
  int64_t H, dh, groups;
  int64_t floats() const { return H * dh + 2 * groups * kLanes; }
  int64_t m_at() const { return H * dh; }
  int64_t l_at() const { return H * dh + groups * kLanes; }
};

// The dot products of one query with one key row, 16 heads from h0 (absent heads: 0), scaled.
// NC: the head width in 16-lane chunks when known at compile time (musicgen: 4), else 0.
template <int NC, typename KV>
__attribute__((target("avx512f"), always_inline)) inline __m512 scores16(const float* q, const KV* krow, int64_t h0,
                                                                         int64_t H, int64_t dh, __m512 scale) {
  const int64_t nc = NC > 0 ? NC : dh / kLanes;
  __m512 a[kLanes];
  for (int hh = 0; hh < kLanes; ++hh) {
    const int64_t h = h0 + hh;
    if (h >= H) {
      a[hh] = _mm512_setzero_ps();
      continue;
    }
    const float* qh = q + h * dh;
    const KV* kh = krow + h * dh;
    __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(qh), load16(kh));
    for (int64_t c = 1; c < nc; ++c)
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(qh + c * kLanes), load16(kh + c * kLanes), acc);
    a[hh] = acc;
  }
  return _mm512_mul_ps(transpose_sum16(a), scale);
}

// o[h] += sum over the G keys from j of w[key][h] * v[key, h] (rows D apart), all heads; w: the
// block's weights sc (see block_partial), from key j. first: o holds nothing yet. The G rows are
// read side by side, each in stored order, and o is loaded and stored once per G keys.
template <int G, int NC, typename KV>
__attribute__((target("avx512f"), always_inline)) inline void weighted_rows(const KV* v, int64_t j, int64_t D,
                                                                            const PartLayout& L, const float* sc,
                                                                            bool first, float* o) {
  const int64_t nc = NC > 0 ? NC : L.dh / kLanes;
  for (int64_t h = 0; h < L.H; ++h) {
    const float* w = sc + ((h / kLanes) * kBlockKeys + j) * kLanes + h % kLanes;  // w[t * kLanes]: key j + t
    float* oh = o + h * L.dh;
    const KV* vh = v + j * D + h * L.dh;
    for (int64_t c = 0; c < nc; ++c) {
      __m512 acc = first ? _mm512_setzero_ps() : _mm512_loadu_ps(oh + c * kLanes);
      for (int t = 0; t < G; ++t)
        acc = _mm512_fmadd_ps(_mm512_set1_ps(w[t * kLanes]), load16(vh + t * D + c * kLanes), acc);
      _mm512_storeu_ps(oh + c * kLanes, acc);
    }
  }
}

// The partial result of query q over keys [j0, j1) of k/v (rows D apart). sc: scratch for
// groups * kBlockKeys * 16 scores.
template <int NC, typename KV>
__attribute__((target("avx512f"))) void block_partial(const float* q, const KV* k, const KV* v, int64_t j0, int64_t j1,
                                                      int64_t D, const PartLayout& L, float scale, float* part,
                                                      float* sc) {
  const int64_t n = j1 - j0, H = L.H, dh = L.dh;
  const __m512 vscale = _mm512_set1_ps(scale);
  // Scores, key by key over whole K rows (the order they are stored in): sc[g][j][lane].
  // Meanwhile the block's V rows are requested into L2, one per key: the V pass below then reads
  // from L2, and the memory system has both streams in flight (~15% less time from DRAM).
  for (int64_t j = 0; j < n; ++j) {
    const KV* krow = k + (j0 + j) * D;
    const char* vrow = reinterpret_cast<const char*>(v + (j0 + j) * D);
    for (int64_t b = 0; b < D * int64_t(sizeof(KV)); b += 64) _mm_prefetch(vrow + b, _MM_HINT_T1);
    for (int64_t g = 0; g < L.groups; ++g)
      _mm512_storeu_ps(sc + (g * kBlockKeys + j) * kLanes, scores16<NC>(q, krow, g * kLanes, H, dh, vscale));
  }
  // Per head (lane): the block's max, e^(s - max) in place, and their sum.
  for (int64_t g = 0; g < L.groups; ++g) {
    float* s = sc + g * kBlockKeys * kLanes;
    __m512 mx = _mm512_loadu_ps(s);
    for (int64_t j = 1; j < n; ++j) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + j * kLanes));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + j * kLanes), mx));
      _mm512_storeu_ps(s + j * kLanes, e);
      sum = _mm512_add_ps(sum, e);
    }
    _mm512_storeu_ps(part + L.m_at() + g * kLanes, mx);
    _mm512_storeu_ps(part + L.l_at() + g * kLanes, sum);
  }
  // The weighted sum of the V rows, 8 rows at a time, each in key order into o (H * dh floats, in L1).
  const KV* vb = v + j0 * D;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) weighted_rows<8, NC>(vb, j, D, L, sc, j == 0, part);
  for (; j < n; ++j) weighted_rows<1, NC>(vb, j, D, L, sc, j == 0, part);
}

// out[H * dh] from a query's nb partials (nb >= 1), in block order. f: scratch for
// (nb + 1) * groups * 16 floats (each block's factor e^(m_b - M), then the total per head).
__attribute__((target("avx512f"))) void combine(const float* parts, int64_t nb, const PartLayout& L, float* out,
                                                float* f) {
  const int64_t stride = L.floats(), H = L.H, dh = L.dh, G = L.groups;
  float* total = f + nb * G * kLanes;
  for (int64_t g = 0; g < G; ++g) {
    __m512 mx = _mm512_loadu_ps(parts + L.m_at() + g * kLanes);
    for (int64_t b = 1; b < nb; ++b)
      mx = _mm512_max_ps(mx, _mm512_loadu_ps(parts + b * stride + L.m_at() + g * kLanes));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const float* pb = parts + b * stride;
      const __m512 fb = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(pb + L.m_at() + g * kLanes), mx));
      _mm512_storeu_ps(f + (b * G + g) * kLanes, fb);
      sum = _mm512_fmadd_ps(fb, _mm512_loadu_ps(pb + L.l_at() + g * kLanes), sum);
    }
    _mm512_storeu_ps(total + g * kLanes, sum);
  }
  for (int64_t h = 0; h < H; ++h) {
    const __m512 total_h = _mm512_set1_ps(total[h]);
    for (int64_t c = 0; c < dh; c += kLanes) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t b = 0; b < nb; ++b)
        acc = _mm512_fmadd_ps(_mm512_set1_ps(f[b * G * kLanes + h]), _mm512_loadu_ps(parts + b * stride + h * dh + c),
                              acc);
      _mm512_storeu_ps(out + h * dh + c, _mm512_div_ps(acc, total_h));
    }
  }
}

// Scratch that every reader writes first: not zeroed (a late decode step's partials are ~200 KB).
using Floats = std::unique_ptr<float[]>;
inline Floats floats(int64_t n) { return Floats(new float[size_t(n)]); }

// One call's queries (row-major: qi = r * S + i) and their key blocks.
template <int NC, typename KV>
class SplitRun {
 public:
  SplitRun(const AttentionProblem<KV>& P, int heads)
      : P_(P), L_{heads, P.dh, (heads + kLanes - 1) / kLanes}, max_blocks_((P.T + kBlockKeys - 1) / kBlockKeys) {}

  void run(const Exec& ex) const {
    const int64_t Q = P_.R * P_.S;
    // Work items: (query, block), query-major; first[qi] is query qi's first item.
    std::vector<int64_t> first(size_t(Q) + 1, 0);
    for (int64_t qi = 0; qi < Q; ++qi) first[size_t(qi) + 1] = first[size_t(qi)] + blocks(qi);
    if (first.back() * L_.floats() > kMaxPartialFloats)
      by_query(ex);
    else
      by_block(ex, first);
  }

 private:
  int64_t visible(int64_t qi) const { return P_.visible(qi % P_.S); }
  int64_t blocks(int64_t qi) const { return (visible(qi) + kBlockKeys - 1) / kBlockKeys; }
  int64_t scratch_floats() const { return L_.groups * kBlockKeys * kLanes; }
  int64_t factor_floats() const { return (max_blocks_ + 1) * L_.groups * kLanes; }

  void block(int64_t qi, int64_t bl, float* part, float* sc) const {
    const int64_t kv = (qi / P_.S) * P_.kv_row;
    block_partial<NC>(P_.q + qi * P_.qs, P_.k + kv, P_.v + kv, bl * kBlockKeys,
                      std::min(visible(qi), (bl + 1) * kBlockKeys), P_.D, L_, P_.scale, part, sc);
  }

  // Many queries (prefill): one item per query, which runs its blocks and combines them.
  void by_query(const Exec& ex) const {
    const int64_t min_items = std::max<int64_t>(1, kMinChunkMacs / (2 * kBlockKeys * P_.D * max_blocks_));
    parallel_tiles(ex, P_.R * P_.S, 1, min_items, [&](auto& claim) {
      Floats parts = floats(max_blocks_ * L_.floats()), sc = floats(scratch_floats()), f = floats(factor_floats());
      for (int64_t qi; claim(&qi);) {
        const int64_t nb = blocks(qi);
        for (int64_t bl = 0; bl < nb; ++bl) block(qi, bl, parts.get() + bl * L_.floats(), sc.get());
        combine(parts.get(), nb, L_, P_.out + qi * P_.D, f.get());
      }
    });
  }

  // A few queries (decode): every (query, block) is an item, so the blocks of one long row are
  // shared out; the partials are then combined per query on the calling thread.
  void by_block(const Exec& ex, const std::vector<int64_t>& first) const {
    const int64_t Q = P_.R * P_.S, items = first.back(), stride = L_.floats();
    Floats parts = floats(items * stride);
    const int64_t keys_per_item = std::min<int64_t>(kBlockKeys, P_.T);
    const int64_t min_items = std::max<int64_t>(1, kMinChunkMacs / (2 * keys_per_item * P_.D));
    parallel_tiles(ex, items, 1, min_items, [&](auto& claim) {
      Floats sc = floats(scratch_floats());
      for (int64_t it; claim(&it);) {
        const int64_t qi = int64_t(std::upper_bound(first.begin(), first.end(), it) - first.begin()) - 1;
        block(qi, it - first[size_t(qi)], parts.get() + it * stride, sc.get());
      }
    });
    Floats f = floats(factor_floats());
    for (int64_t qi = 0; qi < Q; ++qi)
      combine(parts.get() + first[size_t(qi)] * stride, first[size_t(qi) + 1] - first[size_t(qi)], L_,
              P_.out + qi * P_.D, f.get());
  }

  const AttentionProblem<KV>& P_;
  const PartLayout L_;
  const int64_t max_blocks_;
};

}  // namespace

bool attention_split_applies(int64_t dh, const Exec& ex) {
  return dh % kLanes == 0 && kernel_path_for(ex) == KernelPath::Avx512;
}
template <typename KV>
void split_for_width(const AttentionProblem<KV>& P, int heads, const Exec& ex) {
  if (P.dh == 4 * kLanes)
    SplitRun<4, KV>(P, heads).run(ex);  // musicgen's 64
  else
    SplitRun<0, KV>(P, heads).run(ex);
}
void attention_split(const AttentionProblem<float>& P, int heads, const Exec& ex) { split_for_width(P, heads, ex); }
void attention_split(const AttentionProblem<uint16_t>& P, int heads, const Exec& ex) { split_for_width(P, heads, ex); }

}  // namespace mg::cpu::detail
