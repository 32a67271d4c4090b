// conv_transpose1d without a col buffer, on AVX-512. Output q = m*S + r (phase r < S) of channel o is
//   y[o, m*S + r] = b[o] + sum_c sum_i w[c, o, r + i*S] * x[c, m - i]     (r + i*S < K)
// a stride-1 conv over x with ceil(K/S) taps whose "output channels" are the (o, r) pairs. A
// register block is CB channels x S phases x 48 steps m, accumulated over (c, i) ascending, then
// the S phase rows are interleaved into y (and the trim applied): in registers for S = 2 and 4
// on whole blocks (two-source permutes), else through the stack. The weights are packed once per
// call (conv_transpose1d_direct_pack), each block's a contiguous run. The GEMM +
// col2im path (conv_transpose1d.cpp) writes col[Cout*K, n] to memory and reads it back with
// stride S; here each output is written once, in order.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/conv1d_internal.h"

namespace mg::cpu::detail {

namespace {

// Channels per register block for stride S (8 / S rows of S phases each).
constexpr int channels_per_block(int64_t S) { return S >= 8 ? 1 : int(8 / S); }
// 16-float vectors of steps m per register block: about 24 accumulators (R = CB * S rows of JV),
// 25 for stride 5 whose 5 rows would otherwise leave a third of the registers idle.
constexpr int vectors_per_block(int64_t S) { return S == 5 ? 5 : 24 / (channels_per_block(S) * int(S)); }

// y[2*m + r] = p_r[m] for the 16 steps m of two phase vectors.
__attribute__((target("avx512f"), always_inline)) inline void interleave2(__m512 p0, __m512 p1, float* y) {
  const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  _mm512_storeu_ps(y, _mm512_permutex2var_ps(p0, pair_lo, p1));
  _mm512_storeu_ps(y + 16, _mm512_permutex2var_ps(p0, pair_hi, p1));
}

// y[4*m + r] = p_r[v][m] for the 16 steps m of vector v of four phase rows p0..p3: 64 samples in
// 8 two-source permutes and 4 stores (the scalar copy costs more than a tenth of these layers).
__attribute__((target("avx512f"), always_inline)) inline void interleave4(const __m512* p0, const __m512* p1,
                                                                          const __m512* p2, const __m512* p3,
                                                                          int v, float* y) {
  // Pairs (p0[m], p1[m]) for m in 0..7 (lo) and 8..15 (hi).
  const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  // Quads (p0, p1, p2, p3)[m] for pairs 0..3 and 4..7 of a pair vector.
  const __m512i quad_a = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const __m512i quad_b = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const __m512 t01l = _mm512_permutex2var_ps(p0[v], pair_lo, p1[v]);
  const __m512 t01h = _mm512_permutex2var_ps(p0[v], pair_hi, p1[v]);
  const __m512 t23l = _mm512_permutex2var_ps(p2[v], pair_lo, p3[v]);
  const __m512 t23h = _mm512_permutex2var_ps(p2[v], pair_hi, p3[v]);
  _mm512_storeu_ps(y, _mm512_permutex2var_ps(t01l, quad_a, t23l));
  _mm512_storeu_ps(y + 16, _mm512_permutex2var_ps(t01l, quad_b, t23l));
  _mm512_storeu_ps(y + 32, _mm512_permutex2var_ps(t01h, quad_a, t23h));
  _mm512_storeu_ps(y + 48, _mm512_permutex2var_ps(t01h, quad_b, t23h));
}

// Steps [mj, mj + nj) of channels [o, o + CB); xw[c * ldw + u] holds input step m0 - (I-1) + u.
// wpk[(c * I + i) * R + ob * S + r] = w[c, o + ob, i*S + r] (0 past K): the block's weights packed
// contiguously (in w they are short runs Cout*K floats apart, which no prefetcher follows).
// Full: nj is the whole block width, so the loads need no masks (reloaded from the stack per tap).
template <int S, int CB, bool Full>
__attribute__((target("avx512f,fma"), always_inline)) inline void block(const ConvTrShape& s, const float* xw,
                                                                        int64_t ldw, int64_t m0, const float* wpk,
                                                                        const float* bias, int64_t o, int64_t mj,
                                                                        int64_t nj, int64_t qlo, int64_t qhi,
                                                                        float* yb) {
  constexpr int R = CB * S, kJV = vectors_per_block(S);
  constexpr int64_t kMB = 16 * kJV;
  const int64_t K = s.k, I = (K + S - 1) / S;
  __mmask16 mask[kJV];
  for (int v = 0; v < kJV; ++v) {
    const int64_t left = std::clamp<int64_t>(nj - 16 * v, 0, 16);
    mask[v] = __mmask16(left == 16 ? 0xFFFF : (1u << left) - 1);
  }
  __m512 acc[R][kJV];
  for (int ob = 0; ob < CB; ++ob) {
    const __m512 b = _mm512_set1_ps(bias ? bias[o + ob] : 0.0f);
    for (int r = 0; r < S; ++r)
      for (int v = 0; v < kJV; ++v) acc[ob * S + r][v] = b;
  }
  for (int64_t c = 0; c < s.cin; ++c) {
    const float* xc = xw + c * ldw + mj + (I - 1);
    if (c + 2 < s.cin)
      for (int64_t u = -(I - 1); u < nj; u += 16)
        _mm_prefetch(reinterpret_cast<const char*>(xc + 2 * ldw + u), _MM_HINT_T0);
    for (int64_t i = 0; i < I; ++i) {
      __m512 xv[kJV];
      for (int v = 0; v < kJV; ++v)
        xv[v] = Full ? _mm512_loadu_ps(xc - i + 16 * v) : _mm512_maskz_loadu_ps(mask[v], xc - i + 16 * v);
      const float* wr = wpk + (c * I + i) * R;
      for (int row = 0; row < R; ++row) {  // row = ob * S + r: one flat loop, fully unrolled
        const __m512 wv = _mm512_set1_ps(wr[row]);
        for (int v = 0; v < kJV; ++v) acc[row][v] = _mm512_fmadd_ps(wv, xv[v], acc[row][v]);
      }
    }
  }
  // Interleave the phases: y[o, (m0 + mj + m)*S + r] for q in [qlo, qhi).
  const int64_t q0 = (m0 + mj) * S;
  const int64_t a = std::max<int64_t>(qlo - q0, 0), e = std::min<int64_t>(qhi - q0, nj * S);
  if constexpr (S == 4) {
    if (a == 0 && e == kMB * S) {  // a whole block inside the trim: shuffled in registers
      for (int ob = 0; ob < CB; ++ob) {
        float* yo = yb + (o + ob) * s.tout - s.trim_left + q0;
        for (int v = 0; v < kJV; ++v) interleave4(acc[ob * S], acc[ob * S + 1], acc[ob * S + 2], acc[ob * S + 3], v,
                                                  yo + 64 * v);
      }
      return;
    }
  }
  if constexpr (S == 2) {
    if (a == 0 && e == kMB * S) {
      for (int ob = 0; ob < CB; ++ob) {
        float* yo = yb + (o + ob) * s.tout - s.trim_left + q0;
        for (int v = 0; v < kJV; ++v) interleave2(acc[ob * S][v], acc[ob * S + 1][v], yo + 32 * v);
      }
      return;
    }
  }
  // Otherwise the registers go to the stack first in one unrolled loop (indexing acc by a runtime
  // channel would keep it in memory), then each sample is copied.
  alignas(64) float ph[R][kMB];
  for (int row = 0; row < R; ++row)
    for (int v = 0; v < kJV; ++v) _mm512_store_ps(ph[row] + 16 * v, acc[row][v]);
  for (int ob = 0; ob < CB; ++ob) {
    float* yo = yb + (o + ob) * s.tout - s.trim_left + q0;
    const float(*p)[kMB] = ph + ob * S;
    for (int64_t k = a; k < e; ++k) yo[k] = p[k % S][k / S];
  }
}

template <int S>
__attribute__((target("avx512f,fma"))) void tile(const ConvTrShape& s, const float* xw, int64_t ldw, int64_t m0,
                                                 int64_t nm, const float* wpk, const float* bias, int64_t o0,
                                                 int64_t mb, int64_t qlo, int64_t qhi, float* yb) {
  constexpr int CB = channels_per_block(S);
  constexpr int64_t kMB = 16 * vectors_per_block(S);
  const int64_t per_channel = s.cin * ((s.k + S - 1) / S) * S;  // packed floats per output channel
  for (int64_t o = o0; o < o0 + mb;) {
    const int cb = o + CB <= o0 + mb ? CB : 1;  // the last few channels one at a time
    const float* wb = wpk + o * per_channel;
    for (int64_t mj = 0; mj < nm; mj += kMB) {
      const int64_t nj = std::min(kMB, nm - mj);
      if (cb == CB && nj == kMB) block<S, CB, true>(s, xw, ldw, m0, wb, bias, o, mj, nj, qlo, qhi, yb);
      else if (cb == CB) block<S, CB, false>(s, xw, ldw, m0, wb, bias, o, mj, nj, qlo, qhi, yb);
      else block<S, 1, false>(s, xw, ldw, m0, wb, bias, o, mj, nj, qlo, qhi, yb);
    }
    o += cb;
  }
}

}  // namespace

bool conv_transpose1d_direct_supported(const Exec& ex, int64_t stride) {
  return conv1d_direct_available(ex) && stride >= 1 && stride <= 8;
}

int64_t conv_transpose1d_direct_block_steps(int64_t stride) {
  return stride >= 1 && stride <= 8 ? 16 * vectors_per_block(stride) : 48;
}

int64_t conv_transpose1d_direct_packed_size(const ConvTrShape& s) {
  return s.cout * s.cin * ((s.k + s.stride - 1) / s.stride) * s.stride;
}

void conv_transpose1d_direct_pack(const ConvTrShape& s, int64_t tile_m, const float* w, float* wpk) {
  const int64_t S = s.stride, K = s.k, I = (K + S - 1) / S, per_channel = s.cin * I * S;
  const int CB = channels_per_block(S);
  std::fill(wpk, wpk + s.cout * per_channel, 0.0f);  // taps past K
  for (int64_t o0 = 0; o0 < s.cout; o0 += tile_m) {
    const int64_t o1 = std::min(s.cout, o0 + tile_m);
    for (int64_t o = o0; o < o1;) {
      const int cb = o + CB <= o1 ? CB : 1;
      const int64_t R = cb * S;
      float* wb = wpk + o * per_channel;
      for (int64_t c = 0; c < s.cin; ++c)
        for (int ob = 0; ob < cb; ++ob) {
          const float* wc = w + (c * s.cout + o + ob) * K;
          for (int64_t k = 0; k < K; ++k) wb[(c * I + k / S) * R + ob * S + k % S] = wc[k];
        }
      o += cb;
    }
  }
}

void conv_transpose1d_direct_tile(const ConvTrShape& s, const float* xw, int64_t ldw, int64_t m0, int64_t nm,
                                  const float* wpk, const float* bias, int64_t o0, int64_t mb, int64_t qlo,
                                  int64_t qhi, float* yb) {
  switch (s.stride) {
    case 1: return tile<1>(s, xw, ldw, m0, nm, wpk, bias, o0, mb, qlo, qhi, yb);
    case 2: return tile<2>(s, xw, ldw, m0, nm, wpk, bias, o0, mb, qlo, qhi, yb);
    case 3: return tile<3>(s, xw, ldw, m0, nm, wpk, bias, o0, mb, qlo, qhi, yb);
    case 4: return tile<4>(s, xw, ldw, m0, nm, wpk, bias, o0, mb, qlo, qhi, yb);
    case 5: return tile<5>(s, xw, ldw, m0, nm, wpk, bias, o0, mb, qlo, qhi, yb);
    case 6: return tile<6>(s, xw, ldw, m0, nm, wpk, bias, o0, mb, qlo, qhi, yb);
    case 7: return tile<7>(s, xw, ldw, m0, nm, wpk, bias, o0, mb, qlo, qhi, yb);
    case 8: return tile<8>(s, xw, ldw, m0, nm, wpk, bias, o0, mb, qlo, qhi, yb);
  }
  MG_CHECK(false, "conv_transpose1d direct kernel: stride ", s.stride, " is not in 1..8");
}

}  // namespace mg::cpu::detail
