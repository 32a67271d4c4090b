// conv_transpose1d as sgemm + col2im, with the input ELU and the output trim fused in
// (ConvTranspose1dFusion, kernels/ops.h). For w[Cin, Cout, K] read as [Cin, Cout*K] and stride s,
// col[Cout*K, T] = w^T . elu(x), and the untrimmed output is
//   y[o, q] = b[o] + sum over taps k = q - t*s (ascending k) of col[o*K + k, t].
//
// Time is cut into tiles of input steps, fixed by the shape; each pool thread owns whole tiles
// (and, for wide layers, blocks of output channels). Tile [t0, t1) owns the untrimmed outputs
// [t0*s, t1*s) (the first from 0, the last to the end) and writes each of them exactly once, in
// the order above; the outputs it owns also receive taps from up to (K-1)/s input steps before t0,
// so it computes those columns of col too (a small overlap of GEMM work instead of two threads
// adding into the same samples). Owned outputs outside the trim are simply not written. So the
// result is the same bits for any thread count and equal to narrow_last of the untrimmed output.
#include <algorithm>
#include <vector>

#include "kernels/cpu/conv1d_internal.h"

namespace mg::cpu {

namespace {

using detail::ConvTrShape;

// Untrimmed outputs [qa, qb) of channels [m0, m0 + mb), from col[(o - m0)*K + k, t - ta] for input
// steps t in [ta, tb) (every step that reaches [qa, qb)). yb points at the batch item's output.
void col2im(const ConvTrShape& s, const float* col, int64_t ta, int64_t tb, const float* bias, int64_t m0,
            int64_t mb, int64_t qa, int64_t qb, float* yb) {
  const int64_t n = tb - ta, st = s.stride, K = s.k;
  qa = std::max(qa, s.trim_left);
  qb = std::min(qb, s.trim_left + s.tout);
  if (qa >= qb) return;
  // Outputs q = m*st + r with every tap's input step m - i (k = r + i*st < K) inside [ta, tb):
  // m - (K-1)/st >= ta and m < tb. The rest (at most a few steps at each end) take the checked loop.
  const int64_t m_lo = ta + (K - 1) / st, m_hi = tb;
  const int64_t q_fast0 = std::clamp(m_lo * st, qa, qb), q_fast1 = std::clamp(m_hi * st, q_fast0, qb);
  for (int64_t o = 0; o < mb; ++o) {
    const float* co = col + o * K * n - ta;  // co[k * n + t]
    const float bo = bias ? bias[m0 + o] : 0.0f;
    float* yo = yb + (m0 + o) * s.tout - s.trim_left;  // yo[q]
    auto checked = [&](int64_t q) {
      float acc = bo;
      for (int64_t k = q % st, t = q / st; k < K; k += st, --t)
        if (t >= ta && t < tb) acc += co[k * n + t];
      yo[q] = acc;
    };
    for (int64_t q = qa; q < q_fast0; ++q) checked(q);
    // Whole steps m in the fast range; partial ones at its ends go through `checked`.
    int64_t q = q_fast0;
    for (; q < q_fast1 && q % st != 0; ++q) checked(q);
    for (; q + st <= q_fast1; q += st) {
      const int64_t m = q / st;
      for (int64_t r = 0; r < st; ++r) {
        float acc = bo;
        for (int64_t k = r, t = m; k < K; k += st, --t) acc += co[k * n + t];
        yo[q + r] = acc;
      }
    }
    for (; q < qb; ++q) checked(q);
  }
}

// The AVX-512 path: the same tiles of input steps, each owning the same outputs, computed by
// conv_transpose1d_direct.cpp from a window of the activated input (zeros past either end).
void run_direct(const Exec& ex, const ConvTrShape& s, const float* x, const float* w, const float* bias,
                const ConvTranspose1dFusion& f, float* y) {
  const int64_t st = s.stride, taps = (s.k + st - 1) / st;
  const int64_t nt = detail::conv_direct_tile_cols(s.cin + s.cout * st, s.t,
                                                       detail::conv_transpose1d_direct_block_steps(st));
  const int64_t tiles_t = (s.t + nt - 1) / nt, tiles_m = (s.cout + detail::kConvTileM - 1) / detail::kConvTileM;
  const int64_t qlo = s.trim_left, qhi = s.trim_left + s.tout;
  std::vector<float> wpk(size_t(detail::conv_transpose1d_direct_packed_size(s)));
  detail::conv_transpose1d_direct_pack(s, detail::kConvTileM, w, wpk.data());
  for (int64_t bi = 0; bi < s.batch; ++bi) {
    const float* xb = x + bi * s.cin * s.t;
    float* yb = y + bi * s.cout * s.tout;
    detail::parallel_tiles(ex, tiles_t * tiles_m, detail::conv_claim_group(ex, tiles_t, tiles_m), 1, [&](auto& claim) {
      std::vector<float> win;
      int64_t win_tile = -1;
      for (int64_t i; claim(&i);) {
        const int64_t ti = i / tiles_m, o0 = (i % tiles_m) * detail::kConvTileM;
        const int64_t t0 = ti * nt, t1 = std::min(s.t, t0 + nt);
        const int64_t qa = std::max(t0 * st, qlo), qb = std::min(t1 == s.t ? s.full : t1 * st, qhi);
        if (qa >= qb) continue;
        const int64_t m_end = (qb + st - 1) / st, nm = m_end - t0, u0 = t0 - (taps - 1), ldw = nm + taps - 1;
        if (win_tile != ti) {  // win[c * ldw + u] = elu(x)[c, u0 + u], zero outside [0, t)
          win.resize(size_t(s.cin * ldw));
          const int64_t a = std::max<int64_t>(0, -u0), b = std::clamp<int64_t>(s.t - u0, a, ldw);
          for (int64_t c = 0; c < s.cin; ++c) {
            float* d = win.data() + c * ldw;
            std::fill(d, d + a, 0.0f);
            std::fill(d + b, d + ldw, 0.0f);
            const float* src = xb + c * s.t + u0;
            if (f.elu) detail::elu_row(ex, src + a, d + a, b - a, f.elu_alpha);
            else std::copy(src + a, src + b, d + a);
          }
          win_tile = ti;
        }
        detail::conv_transpose1d_direct_tile(s, win.data(), ldw, t0, nm, wpk.data(), bias, o0,
                                             std::min(detail::kConvTileM, s.cout - o0), qa, qb, yb);
      }
    });
  }
}

}  // namespace

Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                        const ConvTranspose1dFusion& f, const Exec& ex) {
  ConvTrShape s;
  s.batch = x.ndim() == 3 ? x.dim(0) : 1;
  s.cin = x.dim(-2);
  s.t = x.dim(-1);
  s.cout = w.dim(1);
  s.k = w.dim(2);
  s.stride = stride;
  s.full = (s.t - 1) * stride + s.k;
  s.trim_left = f.trim_left;
  s.tout = s.full - f.trim_left - f.trim_right;
  Shape out_shape = x.shape;
  out_shape[out_shape.size() - 2] = s.cout;
  out_shape.back() = s.tout;
  Tensor y = Tensor::empty(DType::F32, out_shape);
  const float* wp = w.f32();
  const float* bp = b ? b->f32() : nullptr;

  // The direct kernel sweeps the input window once per block of channels with their weights in
  // L1; on the deepest layers (Cin * K of 16384) OpenBLAS's blocking does better (measured).
  if (detail::conv_transpose1d_direct_supported(ex, stride) && s.cin * s.k <= detail::kConvTrDirectMaxCinK) {
    run_direct(ex, s, x.f32(), wp, bp, f, y.f32());
    return y;
  }
  // Per input step: the activated input (Cin), col (Cout*K) and the outputs it owns (Cout*stride).
  const int64_t halo = (s.k - 1) / stride;
  const int64_t nt = detail::conv_tile_cols(s.cin + s.cout * s.k + s.cout * stride, s.t);
  const int64_t tiles_t = (s.t + nt - 1) / nt, tiles_m = (s.cout + detail::kConvTileM - 1) / detail::kConvTileM;
  for (int64_t bi = 0; bi < s.batch; ++bi) {
    const float* xb = x.f32() + bi * s.cin * s.t;
    float* yb = y.f32() + bi * s.cout * s.tout;
    detail::parallel_tiles(ex, tiles_t * tiles_m, detail::conv_claim_group(ex, tiles_t, tiles_m), 1, [&](auto& claim) {
      std::vector<float> act, col;
      int64_t act_tile = -1;
      for (int64_t i; claim(&i);) {
        const int64_t ti = i / tiles_m, m0 = (i % tiles_m) * detail::kConvTileM;
        const int64_t mb = std::min(detail::kConvTileM, s.cout - m0);
        const int64_t t0 = ti * nt, t1 = std::min(s.t, t0 + nt), ta = std::max<int64_t>(0, t0 - halo), n = t1 - ta;
        const float* in = xb + ta;
        int64_t ld = s.t;
        if (f.elu) {
          if (act_tile != ti) {
            act.resize(size_t(s.cin * n));
            for (int64_t c = 0; c < s.cin; ++c)
              detail::elu_row(ex, xb + c * s.t + ta, act.data() + c * n, n, f.elu_alpha);
            act_tile = ti;
          }
          in = act.data();
          ld = n;
        }
        // col[(o - m0)*K + k, t - ta] for this block's channels: rows m0*K .. (m0 + mb)*K of w^T.
        col.resize(size_t(mb * s.k * n));
        detail::sgemm_serial(true, false, mb * s.k, n, s.cin, 1.0f, wp + m0 * s.k, s.cout * s.k, in, ld, 0.0f,
                             col.data(), n);
        const int64_t qa = t0 * stride, qb = t1 == s.t ? s.full : t1 * stride;
        col2im(s, col.data(), ta, t1, bp, m0, mb, qa, qb, yb);
      }
    });
  }
  return y;
}

}  // namespace mg::cpu
