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
// depends neither on the thread count nor on how many rows, queries or problems share the call: a
// row of attention_rows has the bits of that row alone, and a problem of attention_rows_batch (the
// server's shared step: every request's (query, block) items in one parallel region) the bits of
// that problem alone. It differs from the AVX2 and portable paths by
// summation order and the vectorised exp (relative error ~1e-7).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
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
  // Unrolled, the 16 dot products stay in registers for the transposing sum; as a loop GCC stored
  // them to the stack and read them back (same arithmetic either way: bench-ops attention --layers
  // 1, one thread, T = 250: 49-51 against 51-55 us a call; docs/PERFORMANCE.md, 2026-12-07 15:36).
  __m512 a[kLanes];
#pragma GCC unroll 16
  for (int hh = 0; hh < kLanes; ++hh) {
    const int64_t h = h0 + hh;
    if (h >= H) {
      a[hh] = _mm512_setzero_ps();
      continue;
    }
    const float* qh = q + h * dh;
    const KV* kh = krow + h * dh;
    __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(qh), load16(kh));
#pragma GCC unroll 4
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

// One problem's queries (row-major: qi = r * S + i) and their key blocks, behind an interface so
// that problems of different cache types and head widths share one parallel region.
class SplitWork {
 public:
  virtual ~SplitWork() = default;
  virtual int64_t queries() const = 0;
  virtual int64_t blocks(int64_t qi) const = 0;
  virtual int64_t max_blocks() const = 0;
  virtual int64_t part_floats() const = 0;     // one partial result
  virtual int64_t scratch_floats() const = 0;  // block()'s scores
  virtual int64_t factor_floats() const = 0;   // combine()'s factors
  virtual int64_t item_macs() const = 0;       // multiply-adds of a full (query, block) item
  // Query qi's partial over key block bl, and its output from its blocks' partials (in block order).
  virtual void block(int64_t qi, int64_t bl, float* part, float* sc) const = 0;
  virtual void combine(int64_t qi, const float* parts, float* f) const = 0;
};

template <int NC, typename KV>
class SplitRun final : public SplitWork {
 public:
  SplitRun(const AttentionProblem<KV>& P, int heads)
      : P_(P), L_{heads, P.dh, (heads + kLanes - 1) / kLanes}, max_blocks_((P.T + kBlockKeys - 1) / kBlockKeys) {}

  int64_t queries() const override { return P_.R * P_.S; }
  int64_t blocks(int64_t qi) const override { return (visible(qi) + kBlockKeys - 1) / kBlockKeys; }
  int64_t max_blocks() const override { return max_blocks_; }
  int64_t part_floats() const override { return L_.floats(); }
  int64_t scratch_floats() const override { return L_.groups * kBlockKeys * kLanes; }
  int64_t factor_floats() const override { return (max_blocks_ + 1) * L_.groups * kLanes; }
  int64_t item_macs() const override { return 2 * std::min<int64_t>(kBlockKeys, P_.T) * P_.D; }

  void block(int64_t qi, int64_t bl, float* part, float* sc) const override {
    const int64_t kv = (qi / P_.S) * P_.kv_row;
    block_partial<NC>(P_.q + qi * P_.qs, P_.k + kv, P_.v + kv, bl * kBlockKeys,
                      std::min(visible(qi), (bl + 1) * kBlockKeys), P_.D, L_, P_.scale, part, sc);
  }
  void combine(int64_t qi, const float* parts, float* f) const override {
    detail::combine(parts, blocks(qi), L_, P_.out + qi * P_.D, f);
  }

 private:
  int64_t visible(int64_t qi) const { return P_.visible(qi % P_.S); }

  const AttentionProblem<KV> P_;
  const PartLayout L_;
  const int64_t max_blocks_;
};

// Many queries (prefill): one item per query, which runs its blocks and combines them.
void by_query(const SplitWork& w, const Exec& ex) {
  const int64_t min_items = std::max<int64_t>(1, kMinChunkMacs / (w.item_macs() * w.max_blocks()));
  parallel_tiles(ex, w.queries(), 1, min_items, [&](auto& claim) {
    Floats parts = floats(w.max_blocks() * w.part_floats()), sc = floats(w.scratch_floats()),
           f = floats(w.factor_floats());
    for (int64_t qi; claim(&qi);) {
      for (int64_t bl = 0, nb = w.blocks(qi); bl < nb; ++bl) w.block(qi, bl, parts.get() + bl * w.part_floats(), sc.get());
      w.combine(qi, parts.get(), f.get());
    }
  });
}

// A few queries (decode), of one problem or several: every (query, block) is an item, so the
// blocks of one long row are shared out. The thread that finishes a query's last block combines
// its partials (in block order, as any thread would), so the combining overlaps the other blocks
// instead of following the region on one thread. A query's partials lie side by side from
// part_at[its index among all queries].
class BlockItems {
 public:
  explicit BlockItems(const std::vector<const SplitWork*>& works) : works_(works) {
    first_.push_back(0);
    part_at_.push_back(0);
    for (size_t w = 0; w < works.size(); ++w)
      for (int64_t qi = 0; qi < works[w]->queries(); ++qi) {
        work_.push_back(int(w));
        qi_.push_back(qi);
        first_.push_back(first_.back() + works[w]->blocks(qi));
        part_at_.push_back(part_at_.back() + works[w]->blocks(qi) * works[w]->part_floats());
      }
  }
  int64_t partial_floats() const { return part_at_.back(); }

  void run(const Exec& ex) const {
    int64_t scratch = 0, factors = 0, macs = 1;
    for (const SplitWork* w : works_) {
      scratch = std::max(scratch, w->scratch_floats());
      factors = std::max(factors, w->factor_floats());
      macs = std::max(macs, w->item_macs());
    }
    Floats parts = floats(partial_floats());
    // Blocks not yet done per query (every query has at least one: T >= 1).
    const std::unique_ptr<std::atomic<int64_t>[]> left(new std::atomic<int64_t>[qi_.size()]);
    for (size_t g = 0; g < qi_.size(); ++g) left[g].store(first_[g + 1] - first_[g], std::memory_order_relaxed);
    const int64_t items = first_.back(), min_items = std::max<int64_t>(1, kMinChunkMacs / macs);
    parallel_tiles(ex, items, 1, min_items, [&](auto& claim) {
      Floats sc = floats(scratch), f = floats(factors);
      for (int64_t it; claim(&it);) {
        const size_t g = size_t(std::upper_bound(first_.begin(), first_.end(), it) - first_.begin()) - 1;
        const SplitWork& w = *works_[size_t(work_[g])];
        const int64_t bl = it - first_[g];
        w.block(qi_[g], bl, parts.get() + part_at_[g] + bl * w.part_floats(), sc.get());
        // acq_rel: the last one sees every other thread's partials of this query.
        if (left[g].fetch_sub(1, std::memory_order_acq_rel) == 1) w.combine(qi_[g], parts.get() + part_at_[g], f.get());
      }
    });
  }

 private:
  const std::vector<const SplitWork*>& works_;
  std::vector<int> work_;      // per query (over all works): its work
  std::vector<int64_t> qi_;    // and its index there
  std::vector<int64_t> first_, part_at_;  // per query: its first item, its first partial's float; then the totals
};

// Work items of several problems in one region while their partials stay small, else each alone
// (a prefill's many queries: one item per query).
void run_works(const std::vector<const SplitWork*>& works, const Exec& ex) {
  if (works.empty()) return;
  BlockItems items(works);
  if (items.partial_floats() <= kMaxPartialFloats) return items.run(ex);
  if (works.size() == 1) return by_query(*works[0], ex);
  for (const SplitWork* w : works) run_works({w}, ex);
}

template <typename KV>
std::unique_ptr<SplitWork> split_for_width(const AttentionProblem<KV>& P, int heads) {
  if (P.dh == 4 * kLanes) return std::make_unique<SplitRun<4, KV>>(P, heads);  // musicgen's 64
  return std::make_unique<SplitRun<0, KV>>(P, heads);
}

}  // namespace

bool attention_split_applies(int64_t dh, const Exec& ex) {
  return dh % kLanes == 0 && kernel_path_for(ex) == KernelPath::Avx512;
}
template <typename KV>
void split_one(const AttentionProblem<KV>& P, int heads, const Exec& ex) {
  const std::unique_ptr<SplitWork> w = split_for_width(P, heads);
  run_works({w.get()}, ex);
}
void attention_split(const AttentionProblem<float>& P, int heads, const Exec& ex) { split_one(P, heads, ex); }
void attention_split(const AttentionProblem<uint16_t>& P, int heads, const Exec& ex) { split_one(P, heads, ex); }

void attention_split_batch(const std::vector<AttentionProblem<float>>& f32, const std::vector<AttentionProblem<uint16_t>>& f16,
                           int heads, const Exec& ex) {
  std::vector<std::unique_ptr<SplitWork>> owned;
  for (const auto& P : f32) owned.push_back(split_for_width(P, heads));
  for (const auto& P : f16) owned.push_back(split_for_width(P, heads));
  std::vector<const SplitWork*> works;
  for (const auto& w : owned) works.push_back(w.get());
  run_works(works, ex);
}

}  // namespace mg::cpu::detail
