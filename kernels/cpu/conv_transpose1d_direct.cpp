// conv_transpose1d without a col buffer, on AVX-512. Output q = m*S + r (phase r < S) of channel o is
//   y[o, m*S + r] = b[o] + sum_c sum_i w[c, o, r + i*S] * x[c, m - i]     (r + i*S < K)
// a stride-1 conv over x with ceil(K/S) taps whose "output channels" are the (o, r) pairs. A
// register block is CB channels x S phases x 48 steps m, accumulated over (c, i) ascending, then
// the S phase rows are interleaved into y (and the trim applied) from the stack. The GEMM +
// col2im path (conv_transpose1d.cpp) writes col[Cout*K, n] to memory and reads it back with
// stride S; here each output is written once, in order.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv1d_internal.h"

namespace mg::cpu::detail {

namespace {

constexpr int kJV = 3;  // 16-float vectors of steps m per block
constexpr int64_t kMB = 16 * kJV;

// Steps [mj, mj + nj) of channels [o, o + CB); xw[c * ldw + u] holds input step m0 - (I-1) + u.
// wpk[(c * I + i) * R + ob * S + r] = w[c, o + ob, i*S + r] (0 past K): the block's weights packed
// contiguously (in w they are short runs Cout*K floats apart, which no prefetcher follows).
template <int S, int CB>
__attribute__((target("avx512f,fma"), always_inline)) inline void block(const ConvTrShape& s, const float* xw,
                                                                        int64_t ldw, int64_t m0, const float* wpk,
                                                                        const float* bias, int64_t o, int64_t mj,
                                                                        int64_t nj, int64_t qlo, int64_t qhi,
                                                                        float* yb) {
  constexpr int R = CB * S;
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
      for (int v = 0; v < kJV; ++v) xv[v] = _mm512_maskz_loadu_ps(mask[v], xc - i + 16 * v);
      const float* wr = wpk + (c * I + i) * R;
      for (int row = 0; row < R; ++row) {  // row = ob * S + r: one flat loop, fully unrolled
        const __m512 wv = _mm512_set1_ps(wr[row]);
        for (int v = 0; v < kJV; ++v) acc[row][v] = _mm512_fmadd_ps(wv, xv[v], acc[row][v]);
      }
    }
  }
  // Interleave the phases: y[o, (m0 + mj + m)*S + r] for q in [qlo, qhi). The registers go to the
  // stack first in one unrolled loop: indexing acc by a runtime channel would keep it in memory.
  alignas(64) float ph[R][kMB];
  for (int row = 0; row < R; ++row)
    for (int v = 0; v < kJV; ++v) _mm512_store_ps(ph[row] + 16 * v, acc[row][v]);
  const int64_t q0 = (m0 + mj) * S;
  const int64_t a = std::max<int64_t>(qlo - q0, 0), e = std::min<int64_t>(qhi - q0, nj * S);
  for (int ob = 0; ob < CB; ++ob) {
    float* yo = yb + (o + ob) * s.tout - s.trim_left + q0;
    const float(*p)[kMB] = ph + ob * S;
    for (int64_t k = a; k < e; ++k) yo[k] = p[k % S][k / S];
  }
}

template <int S>
__attribute__((target("avx512f,fma"))) void tile(const ConvTrShape& s, const float* xw, int64_t ldw, int64_t m0,
                                                 int64_t nm, const float* w, const float* bias, int64_t o0,
                                                 int64_t mb, int64_t qlo, int64_t qhi, float* yb) {
  constexpr int CB = S >= 8 ? 1 : 8 / S;
  const int64_t K = s.k, I = (K + S - 1) / S;
  std::vector<float> wpk;
  for (int64_t o = o0; o < o0 + mb;) {
    const int cb = o + CB <= o0 + mb ? CB : 1, R = cb * S;  // the last few channels one at a time
    wpk.assign(size_t(s.cin * I * R), 0.0f);
    for (int64_t c = 0; c < s.cin; ++c)
      for (int ob = 0; ob < cb; ++ob) {
        const float* wc = w + (c * s.cout + o + ob) * K;
        // One short run every Cout*K floats: no hardware prefetcher follows that, so ask ahead.
        if (c + 16 < s.cin) {
          const char* ahead = reinterpret_cast<const char*>(wc + 16 * s.cout * K);
          _mm_prefetch(ahead, _MM_HINT_T0);
          _mm_prefetch(ahead + 4 * (K - 1), _MM_HINT_T0);
        }
        for (int64_t k = 0; k < K; ++k) wpk[size_t((c * I + k / S) * R + ob * S + k % S)] = wc[k];
      }
    for (int64_t mj = 0; mj < nm; mj += kMB) {
      const int64_t nj = std::min(kMB, nm - mj);
      if (cb == CB) block<S, CB>(s, xw, ldw, m0, wpk.data(), bias, o, mj, nj, qlo, qhi, yb);
      else block<S, 1>(s, xw, ldw, m0, wpk.data(), bias, o, mj, nj, qlo, qhi, yb);
    }
    o += cb;
  }
}

}  // namespace

bool conv_transpose1d_direct_supported(const Exec& ex, int64_t stride) {
  return conv1d_direct_available(ex) && stride >= 1 && stride <= 8;
}

void conv_transpose1d_direct_tile(const ConvTrShape& s, const float* xw, int64_t ldw, int64_t m0, int64_t nm,
                                  const float* w, const float* bias, int64_t o0, int64_t mb, int64_t qlo,
                                  int64_t qhi, float* yb) {
  switch (s.stride) {
    case 1: return tile<1>(s, xw, ldw, m0, nm, w, bias, o0, mb, qlo, qhi, yb);
    case 2: return tile<2>(s, xw, ldw, m0, nm, w, bias, o0, mb, qlo, qhi, yb);
    case 3: return tile<3>(s, xw, ldw, m0, nm, w, bias, o0, mb, qlo, qhi, yb);
    case 4: return tile<4>(s, xw, ldw, m0, nm, w, bias, o0, mb, qlo, qhi, yb);
    case 5: return tile<5>(s, xw, ldw, m0, nm, w, bias, o0, mb, qlo, qhi, yb);
    case 6: return tile<6>(s, xw, ldw, m0, nm, w, bias, o0, mb, qlo, qhi, yb);
    case 7: return tile<7>(s, xw, ldw, m0, nm, w, bias, o0, mb, qlo, qhi, yb);
    case 8: return tile<8>(s, xw, ldw, m0, nm, w, bias, o0, mb, qlo, qhi, yb);
  }
  MG_CHECK(false, "conv_transpose1d direct kernel: stride ", s.stride, " is not in 1..8");
}

}  // namespace mg::cpu::detail
