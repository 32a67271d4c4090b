// conv1d without im2col, on AVX-512: 8 output channels x 48 output columns are accumulated in 24
// registers over the whole (c, tap) reduction, reading the input window in place. im2col + OpenBLAS
// spends most of its time copying on EnCodec's shapes (im2col writes Cin*K rows per tile, then
// OpenBLAS packs them again); here the window is read once per block of 8 output channels, from L2.
//
// A strided conv reads x_padded[c, j*stride + tap*dilation]: the window is given phase-major,
// xph[(c*stride + p)*mw + m] = x_padded[c, m*stride + p], so each tap is a contiguous run of one
// phase (p = tap*dilation % stride, starting at m = j + tap*dilation / stride).
// Each output is bias + sum over (c, tap) ascending, one FMA each; the residual is added last.
// The weights come packed (conv1d_direct_pack): a block's 8 channels x Cin*K weights are one
// contiguous run in the order the FMAs use them, instead of 8 rows Cin*K floats apart.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv1d_internal.h"

namespace mg::cpu::detail {

namespace {

constexpr int kOB = 8;  // output channels per register block
constexpr int kJV = 3;  // 16-float vectors of columns per register block
constexpr int64_t kJB = 16 * kJV;

// Columns [j, j + nj) (nj <= kJB) of OB output channels starting at o.
// tap_off[tap]: where tap's run starts in a channel's phases, (d % stride) * mw + d / stride.
// wp[(c * k + tap) * OB + i] = w[o + i, c, tap]: the block's weights packed in the order they are used.
// Full: nj == kJB, so the loads need no masks (which the compiler reloads from the stack every tap).
template <int OB, bool Full>
__attribute__((target("avx512f,fma"), always_inline)) inline void block(const ConvShape& s, const float* xph,
                                                                        int64_t mw, const int64_t* tap_off,
                                                                        const float* wp, const float* bias,
                                                                        const float* r, float* y, int64_t ldy,
                                                                        int64_t o, int64_t j, int64_t nj) {
  __mmask16 mask[kJV];
  for (int v = 0; v < kJV; ++v) {
    const int64_t left = std::clamp<int64_t>(nj - 16 * v, 0, 16);
    mask[v] = __mmask16(left == 16 ? 0xFFFF : (1u << left) - 1);
  }
  __m512 acc[OB][kJV];
  for (int i = 0; i < OB; ++i) {
    const __m512 b = _mm512_set1_ps(bias ? bias[o + i] : 0.0f);
    for (int v = 0; v < kJV; ++v) acc[i][v] = b;
  }
  const int64_t ldc = s.stride * mw, run = nj + (s.span - 1) / s.stride;  // floats a tap block reads per phase
  for (int64_t c = 0; c < s.cin; ++c) {
    const float* xc = xph + c * ldc + j;
    // The rows of channel c + 2 are a few KB away: beyond what the hardware prefetchers follow.
    if (c + 2 < s.cin)
      for (int64_t p = 0; p < s.stride; ++p)
        for (int64_t i = 0; i < run; i += 16)
          _mm_prefetch(reinterpret_cast<const char*>(xc + 2 * ldc + p * mw + i), _MM_HINT_T0);
    const float* wc = wp + c * s.k * OB;
    for (int64_t tap = 0; tap < s.k; ++tap) {
      const float* xr = xc + tap_off[tap];
      __m512 xv[kJV];
      for (int v = 0; v < kJV; ++v)
        xv[v] = Full ? _mm512_loadu_ps(xr + 16 * v) : _mm512_maskz_loadu_ps(mask[v], xr + 16 * v);
      for (int i = 0; i < OB; ++i) {
        const __m512 wv = _mm512_set1_ps(wc[tap * OB + i]);
        for (int v = 0; v < kJV; ++v) acc[i][v] = _mm512_fmadd_ps(wv, xv[v], acc[i][v]);
      }
    }
  }
  for (int i = 0; i < OB; ++i)
    for (int v = 0; v < kJV; ++v) {
      float* yp = y + (o + i) * ldy + j + 16 * v;
      __m512 out = acc[i][v];
      if (r) out = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], r + (o + i) * ldy + j + 16 * v), out);
      _mm512_mask_storeu_ps(yp, mask[v], out);
    }
}

// All column blocks of OB channels from o, whose packed weights are wp.
template <int OB>
__attribute__((target("avx512f,fma"))) void channels(const ConvShape& s, const float* xph, int64_t mw,
                                                     const int64_t* off, const float* wp, const float* bias,
                                                     const float* r, float* y, int64_t ldy, int64_t o, int64_t n) {
  int64_t j = 0;
  for (; j + kJB <= n; j += kJB) block<OB, true>(s, xph, mw, off, wp, bias, r, y, ldy, o, j, kJB);
  if (j < n) block<OB, false>(s, xph, mw, off, wp, bias, r, y, ldy, o, j, n - j);
}

// The last `left` (< kOB) channels of a channel tile.
template <int OB>
void rest(const ConvShape& s, const float* xph, int64_t mw, const int64_t* off, const float* wp, const float* bias,
          const float* r, float* y, int64_t ldy, int64_t o, int64_t left, int64_t n) {
  if constexpr (OB > 0) {
    if (left == OB) return channels<OB>(s, xph, mw, off, wp, bias, r, y, ldy, o, n);
    rest<OB - 1>(s, xph, mw, off, wp, bias, r, y, ldy, o, left, n);
  }
}

__attribute__((target("avx512f,fma"))) void tile_avx512(const ConvShape& s, const float* xph, int64_t mw,
                                                        const float* wpk, const float* bias, const float* r, float* y,
                                                        int64_t ldy, int64_t m0, int64_t mb, int64_t n) {
  std::vector<int64_t> tap_off(size_t(s.k));
  for (int64_t tap = 0; tap < s.k; ++tap) {
    const int64_t d = tap * s.dilation;
    tap_off[size_t(tap)] = (d % s.stride) * mw + d / s.stride;
  }
  const int64_t* off = tap_off.data();
  const int64_t ck = s.cin * s.k;
  int64_t o = m0;
  for (; o + kOB <= m0 + mb; o += kOB) channels<kOB>(s, xph, mw, off, wpk + o * ck, bias, r, y, ldy, o, n);
  if (o < m0 + mb) rest<kOB - 1>(s, xph, mw, off, wpk + o * ck, bias, r, y, ldy, o, m0 + mb - o, n);
}

}  // namespace

bool conv1d_direct_available(const Exec& ex) { return ex.simd() && ex.allow_avx512 && cpu_has_avx512(); }

int64_t conv1d_direct_block_cols() { return kJB; }

void conv1d_direct_pack(const ConvShape& s, int64_t tile_m, const float* w, float* wpk) {
  const int64_t ck = s.cin * s.k;
  for (int64_t m0 = 0; m0 < s.cout; m0 += tile_m) {
    const int64_t m1 = std::min(s.cout, m0 + tile_m);
    for (int64_t o = m0; o < m1; o += kOB) {
      const int64_t ob = std::min<int64_t>(kOB, m1 - o);
      for (int64_t i = 0; i < ob; ++i)
        for (int64_t idx = 0; idx < ck; ++idx) wpk[o * ck + idx * ob + i] = w[(o + i) * ck + idx];
    }
  }
}

void conv1d_direct_tile(const ConvShape& s, const float* xph, int64_t mw, const float* wpk, const float* bias,
                        const float* r, float* y, int64_t ldy, int64_t m0, int64_t mb, int64_t n) {
  tile_avx512(s, xph, mw, wpk, bias, r, y, ldy, m0, mb, n);
}

}  // namespace mg::cpu::detail
