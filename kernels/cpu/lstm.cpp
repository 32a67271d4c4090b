// One LSTM layer over a sequence, from a given or zero state (torch.nn.LSTM, gate order i, f, g, o):
//   gates_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
//   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
// The input part does not depend on h, so it is done for all steps at once with one GEMM (the two
// biases summed once per call and used as its starting value); only h_{t-1} W_hh^T stays inside
// the (inherently serial) time loop.
//
// That recurrent GEMV reads all of W_hh every step (16 MB for EnCodec 32 kHz's H = 1024) and is
// the floor of the whole codec, so it is written for bandwidth:
//  - the pool is dispatched once per call, not once per step (a condition-variable wake-up costs a
//    good part of a step): its threads claim blocks of hidden units, compute their four gate rows
//    and their gate maths, and wait, spinning, for the step to complete (h_t must be complete
//    before step t + 1); each thread keeps the same units from step to step, and a thread that
//    waits too long computes the blocks of a thread the OS has paused instead of waiting for it
//    (run_steps), so a busy machine slows the recurrence down by its lost CPU time, not by every
//    pause of every thread;
//  - the four gate rows of a few units are read together (each row one vector accumulator),
//    AVX-512 when the CPU has it, AVX2 + FMA otherwise, plain loops as the fallback; no allocation
//    inside the loop. The AVX-512 path reads W_hh repacked once per call so that those rows are
//    one contiguous stream (pack_w_hh: 10-15% per step at 2 threads, same bits). Opted into with
//    MUSICGEN_LSTM_WEIGHTS=f16|bf16 (Exec::lstm_weights), it reads them rounded to 16 bits and
//    widened in registers: half the bytes per step, ~25% off a step at 2 threads, not exact;
//  - the gate maths run in vector lanes too (a polynomial exp; libm's expf/tanhf, which the
//    portable path keeps, cost ~10% of a step).
// Each gate's dot product is one accumulator over k in order, reduced the same way whichever range
// of units a thread owns, so the result does not depend on the thread count (bit for bit), and a
// sequence run in chunks with its state carried equals the one-shot run step for step.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <chrono>
#include <vector>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/spin.h"
#include "kernels/cpu/vec_math.h"

// GCC 12 warns about the "undefined" pass-through operand inside its own AVX-512 intrinsics when
// they are inlined into target("avx512f") functions (GCC bug 105593): not ours to fix.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace mg::cpu {

namespace {

constexpr int kUnitsPerPass = 2;                          // 4 gate rows each: 8 read streams
constexpr int64_t kUnitsPerBlock = 16;                     // the unit of work a thread claims
constexpr int64_t kMinParallelWeights = int64_t(1) << 16;  // W_hh floats below this: one thread
// How long a thread waits for the rest of a step before it computes the missing blocks itself: a
// few times what a block takes (~10 us for H = 1024), so only a paused thread is ever stood in for.
constexpr std::chrono::microseconds kHelpAfter{50};

enum class Isa { Portable, Avx2, Avx512 };

inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

Tensor as_f32(const Tensor& t, const Exec& ex) { return t.dtype == DType::F32 ? t : cast(t, DType::F32, ex); }

// ---- the recurrent GEMV: g[q*gs + j - j0] += W_hh[q*H + j, :] . h for units j in [j0, j1), gates
// q = 0..3 (g: the block's own copy of its gate pre-activations, gate q at row q * gs)

void recurrent_portable(const float* w, const float* h, int64_t H, float* g, int64_t gs, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; ++j)
    for (int64_t q = 0; q < 4; ++q) {
      const float* row = w + (q * H + j) * H;
      float acc = 0.0f;
      for (int64_t k = 0; k < H; ++k) acc += row[k] * h[k];
      g[q * gs + j - j0] += acc;
    }
}

// Units [j, j + U); g points at unit j's gate 0.
template <int U>
__attribute__((target("avx512f"))) void recurrent_units_avx512(const float* w, const float* h, int64_t H, float* g,
                                                               int64_t gs, int64_t j) {
  constexpr int R = 4 * U;
  const float* row[R];
  __m512 acc[R];
  for (int q = 0; q < 4; ++q)
    for (int u = 0; u < U; ++u) row[q * U + u] = w + (q * H + j + u) * H;
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= H; k += 16) {
    const __m512 hv = _mm512_loadu_ps(h + k);
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(row[r] + k), hv, acc[r]);
  }
  if (k < H) {  // masked tail: the missing lanes add 0 * 0
    const __mmask16 m = static_cast<__mmask16>((1u << (H - k)) - 1);
    const __m512 hv = _mm512_maskz_loadu_ps(m, h + k);
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, row[r] + k), hv, acc[r]);
  }
  for (int q = 0; q < 4; ++q)
    for (int u = 0; u < U; ++u) g[q * gs + u] += vmath::hsum16(acc[q * U + u]);
}

// The AVX-512 path reads W_hh repacked once per call (pack_w_hh): the 4U gate rows of a pass
// interleaved in 16-float pieces, [ceil(H / 16)][4U][16] with zeros past H, so a pass is one
// contiguous stream. Read in place, its 4U rows are 4H floats apart (4 KB for H = 1024): they
// all fall in the same L1 set and every row is a separate prefetch stream, and a core got ~40
// GB/s out of it whether W_hh came from L2, L3 or memory. Same products, same accumulator per
// row, same order over k, so the same bits as recurrent_units_avx512. wp points at the pass.
//
// The opt-in 16-bit W_hh (Exec::lstm_weights) has the same pass layout in f16 or bf16, widened to
// f32 in registers (exactly), so each step reads half the bytes; only the weights are rounded.
template <bool Bf16>
__attribute__((target("avx512f"), always_inline)) inline __m512 widen16(const uint16_t* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (Bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
  else return _mm512_cvtph_ps(raw);
}
// One 16-lane piece of a pass as f32: read as stored (float) or widened (uint16_t, f16 or bf16).
template <bool Bf16, typename E>
__attribute__((target("avx512f"), always_inline)) inline __m512 load_piece(const E* p) {
  if constexpr (std::is_same_v<E, float>) return _mm512_loadu_ps(p);
  else return widen16<Bf16>(p);
}

template <int U, bool Bf16, typename E>
__attribute__((target("avx512f"))) void recurrent_packed_avx512(const E* wp, const float* h, int64_t H, float* g,
                                                                int64_t gs) {
  constexpr int R = 4 * U;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= H; k += 16, wp += R * 16) {
    const __m512 hv = _mm512_loadu_ps(h + k);
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(load_piece<Bf16>(wp + r * 16), hv, acc[r]);
  }
  if (k < H) {  // the zero-padded last piece: the missing lanes add 0 * 0, as the masked tail does
    const __mmask16 m = static_cast<__mmask16>((1u << (H - k)) - 1);
    const __m512 hv = _mm512_maskz_loadu_ps(m, h + k);
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(load_piece<Bf16>(wp + r * 16), hv, acc[r]);
  }
  for (int q = 0; q < 4; ++q)
    for (int u = 0; u < U; ++u) g[q * gs + u] += vmath::hsum16(acc[q * U + u]);
}

// One 16-float piece of the packed layout from n (<= 16) floats of a row, zeros after them: as f32,
// f16 (round to nearest even, as vcvtps2ph does), or bf16 (round to nearest even; a NaN stays a NaN).
enum class PieceFormat { F32, F16, Bf16 };

template <PieceFormat F>
__attribute__((target("avx512f"))) void pack_piece(const float* src, int64_t n, void* dst) {
  const __m512 v = _mm512_maskz_loadu_ps(n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1), src);
  if constexpr (F == PieceFormat::F32) {
    _mm512_storeu_ps(dst, v);
  } else if constexpr (F == PieceFormat::F16) {
    _mm256_storeu_si256(static_cast<__m256i*>(dst), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd)), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    _mm256_storeu_si256(static_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(r));
  }
}

// The passes `recurrent` makes over units [j0, j1): kUnitsPerPass units at a time, then single ones.
template <class Fn>
void for_each_pass(int64_t j0, int64_t j1, Fn&& fn) {
  int64_t j = j0;
  for (; j + kUnitsPerPass <= j1; j += kUnitsPerPass) fn(j, kUnitsPerPass);
  for (; j < j1; ++j) fn(j, 1);
}

// Floats per packed row: H rounded up to whole 16-float pieces. The pass of units [j, j + U)
// starts at j * 4 * packed_cols(H).
int64_t packed_cols(int64_t H) { return (H + 15) / 16 * 16; }

// dst[4H * packed_cols(H)] = W_hh in format F, in the pass layout of recurrent_packed_avx512, for the passes
// the blocks of kUnitsPerBlock units make.
template <PieceFormat F, class T>
void pack_w_hh(const Exec& ex, const float* w, int64_t H, T* dst) {
  const int64_t hp = packed_cols(H), blocks = (H + kUnitsPerBlock - 1) / kUnitsPerBlock;
  detail::parallel_for(ex, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      for_each_pass(b * kUnitsPerBlock, std::min(H, (b + 1) * kUnitsPerBlock), [&](int64_t j, int U) {
        T* d = dst + j * 4 * hp;
        const int R = 4 * U;
        for (int64_t k = 0; k < hp; k += 16)
          for (int r = 0; r < R; ++r, d += 16) {
            const float* row = w + ((r / U) * H + j + r % U) * H;
            const int64_t n = std::min<int64_t>(16, H - k);
            pack_piece<F>(row + k, n, d);
          }
      });
  });
}

template <int U>
__attribute__((target("avx2,fma"))) void recurrent_units_avx2(const float* w, const float* h, int64_t H, float* g,
                                                              int64_t gs, int64_t j) {
  constexpr int R = 4 * U;
  const float* row[R];
  __m256 acc[R];
  for (int q = 0; q < 4; ++q)
    for (int u = 0; u < U; ++u) row[q * U + u] = w + (q * H + j + u) * H;
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= H; k += 8) {
    const __m256 hv = _mm256_loadu_ps(h + k);
    for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(row[r] + k), hv, acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    float s = vmath::hsum8(acc[r]);
    for (int64_t t = k; t < H; ++t) s += row[r][t] * h[t];
    g[(r / U) * gs + r % U] += s;
  }
}

// W_hh as the recurrence reads it: in place (w), packed by pack_w_hh for the AVX-512 kernel (packed),
// or packed in 16 bits (half, bf16 or f16), the first of packed/half that is set.
struct RecurrentWeights {
  const float* w = nullptr;
  const float* packed = nullptr;
  const uint16_t* half = nullptr;
  bool bf16 = false;
};

template <bool Bf16>
void recurrent_half(const uint16_t* wp, const float* h, int64_t H, float* g, int64_t gs, int64_t j0, int64_t j1) {
  const int64_t hp = packed_cols(H);
  for_each_pass(j0, j1, [&](int64_t j, int U) {
    if (U == kUnitsPerPass) recurrent_packed_avx512<kUnitsPerPass, Bf16>(wp + j * 4 * hp, h, H, g + (j - j0), gs);
    else recurrent_packed_avx512<1, Bf16>(wp + j * 4 * hp, h, H, g + (j - j0), gs);
  });
}

void recurrent(Isa isa, const RecurrentWeights& rw, const float* h, int64_t H, float* g, int64_t gs, int64_t j0,
               int64_t j1) {
  const float* w = rw.w;
  int64_t j = j0;
  if (rw.packed) {
    const int64_t hp = packed_cols(H);
    for_each_pass(j0, j1, [&](int64_t j, int U) {
      const float* wp = rw.packed + j * 4 * hp;
      if (U == kUnitsPerPass) recurrent_packed_avx512<kUnitsPerPass, false>(wp, h, H, g + (j - j0), gs);
      else recurrent_packed_avx512<1, false>(wp, h, H, g + (j - j0), gs);
    });
  } else if (rw.half) {
    if (rw.bf16) recurrent_half<true>(rw.half, h, H, g, gs, j0, j1);
    else recurrent_half<false>(rw.half, h, H, g, gs, j0, j1);
  } else if (isa == Isa::Avx512) {
    for (; j + kUnitsPerPass <= j1; j += kUnitsPerPass)
      recurrent_units_avx512<kUnitsPerPass>(w, h, H, g + (j - j0), gs, j);
    for (; j < j1; ++j) recurrent_units_avx512<1>(w, h, H, g + (j - j0), gs, j);
  } else if (isa == Isa::Avx2) {
    for (; j + kUnitsPerPass <= j1; j += kUnitsPerPass)
      recurrent_units_avx2<kUnitsPerPass>(w, h, H, g + (j - j0), gs, j);
    for (; j < j1; ++j) recurrent_units_avx2<1>(w, h, H, g + (j - j0), gs, j);
  } else {
    recurrent_portable(w, h, H, g, gs, j0, j1);
  }
}

// ---- the cell update of n units from their complete gate pre-activations (gate q at g + q * gs):
// c_new = f * c_prev + i * g, h_out = o * tanh(c_new)

void cell_update_portable(const float* g, int64_t gs, const float* c_prev, float* c_new, float* h_out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float ig = sigmoid(g[j]), fg = sigmoid(g[gs + j]);
    const float gg = std::tanh(g[2 * gs + j]), og = sigmoid(g[3 * gs + j]);
    c_new[j] = fg * c_prev[j] + ig * gg;
    h_out[j] = og * std::tanh(c_new[j]);
  }
}

// exp in lanes (kernels/cpu/vec_math.h: Cephes' expf, within ~2 ulp of expf), clamped to
// [-86, 88.4] where 2^n stays normal; the sigmoids do not notice (1 + e^-86 is 1 in f32). The
// AVX-512 and AVX2 versions give the same bits.
constexpr float kExpHi = 88.3762626647949f, kExpLo = -86.0f;

__attribute__((target("avx512f"))) inline __m512 exp16(__m512 x) {
  return vmath::exp16(_mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kExpLo)), _mm512_set1_ps(kExpHi)));
}

__attribute__((target("avx512f"))) inline __m512 sigmoid16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

// tanh(x) = 2 sigmoid(2x) - 1: exact to ~1e-7 absolute, which is what h and c need.
__attribute__((target("avx512f"))) inline __m512 tanh16(__m512 x) {
  const __m512 two = _mm512_set1_ps(2.0f);
  return _mm512_fmsub_ps(two, sigmoid16(_mm512_mul_ps(two, x)), _mm512_set1_ps(1.0f));
}

__attribute__((target("avx512f"))) void cell_update_avx512(const float* g, int64_t gs, const float* c_prev,
                                                           float* c_new, float* h_out, int64_t n) {
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1);
    const __m512 ig = sigmoid16(_mm512_maskz_loadu_ps(m, g + j));
    const __m512 fg = sigmoid16(_mm512_maskz_loadu_ps(m, g + gs + j));
    const __m512 gg = tanh16(_mm512_maskz_loadu_ps(m, g + 2 * gs + j));
    const __m512 og = sigmoid16(_mm512_maskz_loadu_ps(m, g + 3 * gs + j));
    const __m512 cn = _mm512_fmadd_ps(fg, _mm512_maskz_loadu_ps(m, c_prev + j), _mm512_mul_ps(ig, gg));
    _mm512_mask_storeu_ps(c_new + j, m, cn);
    _mm512_mask_storeu_ps(h_out + j, m, _mm512_mul_ps(og, tanh16(cn)));
  }
}

__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  return vmath::exp8(_mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpLo)), _mm256_set1_ps(kExpHi)));
}

__attribute__((target("avx2,fma"))) inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

__attribute__((target("avx2,fma"))) inline __m256 tanh8(__m256 x) {
  const __m256 two = _mm256_set1_ps(2.0f);
  return _mm256_fmsub_ps(two, sigmoid8(_mm256_mul_ps(two, x)), _mm256_set1_ps(1.0f));
}

// Eight units; i/f/g/o point at their gate pre-activations.
__attribute__((target("avx2,fma"))) inline void cell8(const float* i, const float* f, const float* g, const float* o,
                                                      const float* c_prev, float* c_new, float* h) {
  const __m256 ig = sigmoid8(_mm256_loadu_ps(i)), fg = sigmoid8(_mm256_loadu_ps(f));
  const __m256 gg = tanh8(_mm256_loadu_ps(g)), og = sigmoid8(_mm256_loadu_ps(o));
  const __m256 cn = _mm256_fmadd_ps(fg, _mm256_loadu_ps(c_prev), _mm256_mul_ps(ig, gg));
  _mm256_storeu_ps(c_new, cn);
  _mm256_storeu_ps(h, _mm256_mul_ps(og, tanh8(cn)));
}

__attribute__((target("avx2,fma"))) void cell_update_avx2(const float* g, int64_t gs, const float* c_prev,
                                                          float* c_new, float* h_out, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) cell8(g + j, g + gs + j, g + 2 * gs + j, g + 3 * gs + j, c_prev + j, c_new + j, h_out + j);
  if (j == n) return;
  // The tail through zero-padded copies, so every unit takes the vector formulas whichever
  // block it falls in: results stay independent of H's remainder and the thread count.
  const int64_t r = n - j;
  float q[4][8] = {}, cc[8] = {}, cn[8], hh[8];
  for (int k = 0; k < 4; ++k) std::memcpy(q[k], g + k * gs + j, size_t(r) * sizeof(float));
  std::memcpy(cc, c_prev + j, size_t(r) * sizeof(float));
  cell8(q[0], q[1], q[2], q[3], cc, cn, hh);
  std::memcpy(c_new + j, cn, size_t(r) * sizeof(float));
  std::memcpy(h_out + j, hh, size_t(r) * sizeof(float));
}

void cell_update(Isa isa, const float* g, int64_t gs, const float* c_prev, float* c_new, float* h_out, int64_t n) {
  if (isa == Isa::Avx512) cell_update_avx512(g, gs, c_prev, c_new, h_out, n);
  else if (isa == Isa::Avx2) cell_update_avx2(g, gs, c_prev, c_new, h_out, n);
  else cell_update_portable(g, gs, c_prev, c_new, h_out, n);
}

// Where block b of the units stands: `claimed` counts the steps some thread has taken the block
// on for, `committed` the steps whose results are written. Step t of block b is free to claim
// while claimed == t, in flight while claimed == t + 1 and committed == t, done after.
struct alignas(64) BlockState {  // one cache line each: threads claim neighbouring blocks
  std::atomic<int64_t> claimed{0};
  std::atomic<int64_t> committed{0};
};

struct alignas(64) Counter {
  std::atomic<int64_t> v{0};
};

// The time loop. gates[T, 4H] holds the input part of every step, h0 the initial h (null: zero, so
// step 0 has no recurrent term), c[T + 1, H] the cell states (row 0 given, row t + 1 written by
// step t), out[T, H] receives h_t.
//
// The units are cut into blocks of kUnitsPerBlock; each part (pool thread) owns a contiguous run of
// blocks and claims them first, step after step, so its share of W_hh tends to stay in its core's
// caches; then it claims what is left of the others' blocks. A part's share is larger than its
// core's L2 (EnCodec 32 kHz: 8 MB of W_hh a core at 2 threads, against 1-2 MB of L2), and read in
// the same order every step, a cache that evicts the least recently used line keeps none of it:
// each line is evicted just before it is read again. So a part runs its own blocks forwards on even
// steps and backwards on odd ones: a step starts with the blocks the step before ended with, which
// are still in L2 (on the 2-core Xeon the recurrence took ~9% less time: docs/PERFORMANCE.md).
// The order changes no bits, because a block's result is a pure function of (h_{t-1}, c_{t-1},
// gates_t): computed into the thread's own scratch and written only by the one thread that commits
// it (a compare-and-swap on `committed`). So a thread that waits for the step to complete longer
// than a block takes (kHelpAfter: the thread that holds the block was paused by the OS, as happens
// all the time on a busy machine) computes that block itself, and the step never waits for a
// thread that is not running. A thread that comes back late finds its block committed, drops its
// copy and joins the current step. Which thread commits a block never changes its bits; nothing is
// overwritten while another thread may still read it.
void run_steps(const Exec& ex, Isa isa, const RecurrentWeights& rw, int64_t H, int64_t T, const float* gates,
               const float* h0, float* c, float* out) {
  const int parts = ex.threads() > 1 && 4 * H * H >= kMinParallelWeights ? ex.threads() : 1;
  const int64_t blocks = (H + kUnitsPerBlock - 1) / kUnitsPerBlock;
  std::vector<BlockState> state(static_cast<size_t>(blocks));
  Counter done;  // blocks committed over the whole call: step t is complete at (t + 1) * blocks
  // Computes block b of step t and commits it unless another thread did first.
  auto run_block = [&](int64_t b, int64_t t, float* scratch) {
    const int64_t j0 = b * kUnitsPerBlock, j1 = std::min(H, j0 + kUnitsPerBlock), n = j1 - j0;
    float* g = scratch;  // gate q of the block's units at g + q * kUnitsPerBlock
    float* c_new = scratch + 4 * kUnitsPerBlock;
    float* h_new = c_new + kUnitsPerBlock;
    for (int64_t q = 0; q < 4; ++q)
      std::memcpy(g + q * kUnitsPerBlock, gates + t * 4 * H + q * H + j0, size_t(n) * sizeof(float));
    const float* h_prev = t ? out + (t - 1) * H : h0;
    if (h_prev) recurrent(isa, rw, h_prev, H, g, kUnitsPerBlock, j0, j1);
    cell_update(isa, g, kUnitsPerBlock, c + t * H + j0, c_new, h_new, n);
    int64_t expected = t;
    if (!state[size_t(b)].committed.compare_exchange_strong(expected, t + 1, std::memory_order_acq_rel)) return;
    std::memcpy(out + t * H + j0, h_new, size_t(n) * sizeof(float));
    std::memcpy(c + (t + 1) * H + j0, c_new, size_t(n) * sizeof(float));
    done.v.fetch_add(1, std::memory_order_release);  // publishes the block's h_t and c_t
  };
  // A pool that is already busy runs all parts in one call; it then simply claims every block.
  auto body = [&](int64_t p0, int64_t) {
    alignas(64) float scratch[6 * kUnitsPerBlock];
    for (;;) {
      const int64_t t = done.v.load(std::memory_order_acquire) / blocks;  // the first incomplete step
      if (t >= T) break;
      for (int i = 0; i < parts; ++i) {  // own blocks first, then the others'
        int64_t b0, b1;
        chunk_range(blocks, parts, int((p0 + i) % parts), &b0, &b1);
        // Own blocks forwards on even steps, backwards on odd ones (see run_steps' comment).
        const bool down = i == 0 && (t & 1);
        for (int64_t bi = b0; bi < b1; ++bi) {
          const int64_t b = down ? b1 - 1 - (bi - b0) : bi;
          int64_t expected = t;
          if (state[size_t(b)].claimed.load(std::memory_order_relaxed) == t &&
              state[size_t(b)].claimed.compare_exchange_strong(expected, t + 1, std::memory_order_relaxed))
            run_block(b, t, scratch);
        }
      }
      const int64_t target = blocks * (t + 1);
      const auto wait_start = std::chrono::steady_clock::now();
      for (int spins = 1; done.v.load(std::memory_order_acquire) < target; ++spins) {
        cpu_relax();
        if (spins % 64 || std::chrono::steady_clock::now() - wait_start < kHelpAfter) continue;
        for (int64_t b = 0; b < blocks; ++b)  // every block of step t is claimed by now
          if (state[size_t(b)].committed.load(std::memory_order_relaxed) == t) run_block(b, t, scratch);
      }
    }
  };
  if (parts == 1) body(0, 1);
  else detail::parallel_for(ex, parts, 1, body);
}

// A carried-state tensor of H floats, or null when absent/undefined (zero state).
const float* state_in(const Tensor* s) {
  if (s == nullptr || !s->defined()) return nullptr;
  return s->f32();
}

}  // namespace

Tensor lstm(const Tensor& x, const LstmLayerWeights& w, Tensor* h_state, Tensor* c_state, const Exec& ex) {
  const int64_t steps = x.dim(0), h = w.w_hh.dim(1), g4 = 4 * h;
  const float* h0 = state_in(h_state);
  const float* c0 = state_in(c_state);
  Tensor out = Tensor::empty(DType::F32, {steps, h});
  if (steps == 0) return out;  // a given state stays as it is

  const Tensor w_hh = as_f32(w.w_hh, ex);
  const Tensor b_ih = as_f32(w.b_ih, ex).reshape({g4});
  const Tensor b_hh = as_f32(w.b_hh, ex).reshape({g4});
  Tensor bias = Tensor::empty(DType::F32, {g4});
  for (int64_t j = 0; j < g4; ++j) bias.f32()[j] = b_ih.f32()[j] + b_hh.f32()[j];
  Tensor gates = linear(x, w.w_ih, &bias, ex);  // [T, 4H]: the input part of every step

  Tensor c_steps = Tensor::empty(DType::F32, {steps + 1, h});  // c before each step, and the last
  if (c0) std::memcpy(c_steps.f32(), c0, size_t(h) * sizeof(float));
  else std::memset(c_steps.f32(), 0, size_t(h) * sizeof(float));
  const Isa isa = !ex.allow_simd ? Isa::Portable
                  : ex.allow_avx512 && cpu_has_avx512() ? Isa::Avx512
                  : cpu_has_avx2() ? Isa::Avx2 : Isa::Portable;
  // The AVX-512 kernel's layout of W_hh: its cost is under one step's work per step of a call, so a
  // single step reads W_hh in place (f32); the opt-in 16-bit weights are packed for every call, so
  // that a sequence gives the same numbers however it is cut into calls.
  RecurrentWeights rw;
  rw.w = w_hh.f32();
  std::vector<uint16_t> half;
  Tensor packed;
  if (isa == Isa::Avx512 && ex.lstm_weights != LstmWeights::F32) {
    half.resize(size_t(4 * h * packed_cols(h)));
    rw.bf16 = ex.lstm_weights == LstmWeights::Bf16;
    if (rw.bf16) pack_w_hh<PieceFormat::Bf16>(ex, rw.w, h, half.data());
    else pack_w_hh<PieceFormat::F16>(ex, rw.w, h, half.data());
    rw.half = half.data();
  } else if (isa == Isa::Avx512 && steps > 1) {
    packed = Tensor::empty(DType::F32, {4 * h, packed_cols(h)});
    pack_w_hh<PieceFormat::F32>(ex, rw.w, h, packed.f32());
    rw.packed = packed.f32();
  }
  run_steps(ex, isa, rw, h, steps, gates.f32(), h0, c_steps.f32(), out.f32());

  if (h_state) {
    Tensor last = Tensor::empty(DType::F32, {h});
    std::memcpy(last.f32(), out.f32() + (steps - 1) * h, size_t(h) * sizeof(float));
    *h_state = last;
  }
  if (c_state) {
    Tensor c = Tensor::empty(DType::F32, {h});
    std::memcpy(c.f32(), c_steps.f32() + steps * h, size_t(h) * sizeof(float));
    *c_state = c;
  }
  return out;
}

Tensor lstm(const Tensor& x, const LstmLayerWeights& w, const Exec& ex) {
  return lstm(x, w, nullptr, nullptr, ex);
}

LstmWeights lstm_weights_from_env() {
  const char* v = std::getenv("MUSICGEN_LSTM_WEIGHTS");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "f32") == 0) return LstmWeights::F32;
  if (std::strcmp(v, "f16") == 0) return LstmWeights::F16;
  if (std::strcmp(v, "bf16") == 0) return LstmWeights::Bf16;
  throw Error(std::string("MUSICGEN_LSTM_WEIGHTS='") + v +
              "' is not an LSTM weight format: use f32 (exact, the default), f16 or bf16 (or unset it)");
}

}  // namespace mg::cpu
