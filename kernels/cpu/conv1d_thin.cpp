// conv1d with a single input or output channel (EnCodec's first conv, 1 -> 32/64 channels, and its
// last, 32/64 -> 1, both K = 7 on every sample of the audio). As a GEMM one of M or K is tiny and
// OpenBLAS runs far below its peak; directly, each output is b + sum over (c, tap) of
// w[o, c, tap] * x_padded[c, j * stride + tap * dilation], summed in that order, 64 outputs at a
// time in registers. Time tiles, windows and fusion are conv1d.cpp's (conv1d_internal.h).
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv1d_internal.h"

namespace mg::cpu::detail {

namespace {

constexpr int64_t kBlock = 64;  // outputs accumulated at once (4 AVX-512 registers)

// yo[j] = b + sum_{c, tap} wo[c * k + tap] * win[c * width + j * stride + tap * dil], j < n.
void direct_row_portable(const ConvShape& s, const float* win, int64_t width, const float* wo, float b, float* yo,
                         int64_t n) {
  float acc[kBlock];
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t nb = std::min(kBlock, n - j0);
    std::fill(acc, acc + nb, b);
    for (int64_t c = 0; c < s.cin; ++c)
      for (int64_t tap = 0; tap < s.k; ++tap) {
        const float wv = wo[c * s.k + tap];
        const float* src = win + c * width + j0 * s.stride + tap * s.dilation;
        for (int64_t u = 0; u < nb; ++u) acc[u] += wv * src[u * s.stride];
      }
    std::copy(acc, acc + nb, yo + j0);
  }
}

// The same for stride 1 with AVX-512 (both of EnCodec's thin convs have stride 1).
__attribute__((target("avx512f,fma"))) void direct_row_avx512(const ConvShape& s, const float* win, int64_t width,
                                                               const float* wo, float b, float* yo, int64_t n) {
  const __m512 vb = _mm512_set1_ps(b);
  int64_t j0 = 0;
  for (; j0 + kBlock <= n; j0 += kBlock) {
    __m512 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
    for (int64_t c = 0; c < s.cin; ++c)
      for (int64_t tap = 0; tap < s.k; ++tap) {
        const __m512 wv = _mm512_set1_ps(wo[c * s.k + tap]);
        const float* src = win + c * width + j0 + tap * s.dilation;
        a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(src), a0);
        a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(src + 16), a1);
        a2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(src + 32), a2);
        a3 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(src + 48), a3);
      }
    _mm512_storeu_ps(yo + j0, a0);
    _mm512_storeu_ps(yo + j0 + 16, a1);
    _mm512_storeu_ps(yo + j0 + 32, a2);
    _mm512_storeu_ps(yo + j0 + 48, a3);
  }
  for (; j0 < n; j0 += 16) {
    const __mmask16 m = n - j0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - j0)) - 1);
    __m512 a = vb;
    for (int64_t c = 0; c < s.cin; ++c)
      for (int64_t tap = 0; tap < s.k; ++tap) {
        const float* src = win + c * width + j0 + tap * s.dilation;
        a = _mm512_fmadd_ps(_mm512_set1_ps(wo[c * s.k + tap]), _mm512_maskz_loadu_ps(m, src), a);
      }
    _mm512_mask_storeu_ps(yo + j0, m, a);
  }
}

}  // namespace

void conv1d_thin(const Exec& ex, const ConvShape& s, const float* x, const float* w, const float* b,
                 const Conv1dFusion& f, float* y) {
  const int64_t nt = conv_tile_cols(s.cin * s.stride + s.cout, s.tout);
  const int64_t tiles = (s.tout + nt - 1) / nt;
  const bool avx512 = ex.simd() && ex.allow_avx512 && cpu_has_avx512() && s.stride == 1;
  for (int64_t bi = 0; bi < s.batch; ++bi) {
    const float* xb = x + bi * s.cin * s.t;
    const float* rb = f.residual ? f.residual->f32() + bi * s.cout * s.tout : nullptr;
    float* yb = y + bi * s.cout * s.tout;
    parallel_tiles(ex, tiles, 1, 1, [&](auto& claim) {
      std::vector<float> win;
      for (int64_t i; claim(&i);) {
        const int64_t j0 = i * nt, n = std::min(nt, s.tout - j0), width = (n - 1) * s.stride + s.span;
        win.resize(size_t(s.cin * width));
        load_conv_window(ex, xb, s.cin, s.t, j0 * s.stride, width, f, win.data());
        for (int64_t o = 0; o < s.cout; ++o) {
          const float* wo = w + o * s.cin * s.k;
          const float bo = b ? b[o] : 0.0f;
          if (avx512) direct_row_avx512(s, win.data(), width, wo, bo, yb + o * s.tout + j0, n);
          else direct_row_portable(s, win.data(), width, wo, bo, yb + o * s.tout + j0, n);
        }
        if (rb) add_residual_cols(rb + j0, yb + j0, s.cout, n, s.tout);
      }
    });
  }
}

}  // namespace mg::cpu::detail
