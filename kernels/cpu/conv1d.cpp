// conv1d with its padding, input ELU and residual add fused in (Conv1dFusion, kernels/ops.h).
//
// EnCodec's outer levels are long and thin (64 channels x 10^6 samples: 123 MB per tensor at
// 32 kHz), so every pass through memory costs as much as the arithmetic. Time is cut into tiles
// whose working set stays in a core's L2; each pool thread owns whole tiles (and, for wide
// layers, blocks of output channels) and, per tile:
//  1. loads the input window the tile's outputs see, padded and activated (the only read of x);
//  2. with AVX-512 and Cin*K <= 1024, runs the im2col-free kernel of conv1d_direct.cpp on it
//     (phase-major for a strided conv); otherwise builds im2col col[Cin*K, n] (for a 1-tap,
//     stride-1 conv col is the window, or x itself when the tile needs neither padding nor ELU),
//     writes the bias into its output columns and adds one single-threaded sgemm w . col onto it;
//  3. adds the residual to those columns while they are still in cache.
// The tile width is fixed by the shape alone, so the result is the same bits for any thread count,
// and the same as the composition of plain ops (conv1d_composed) since those run the same tiles.
// Convs with a single input or output channel (EnCodec's first and last) are a poor GEMM shape
// (M or K of 1..7): conv1d_thin.cpp computes them directly.
#include "kernels/cpu/conv1d_internal.h"

#include <algorithm>
#include <vector>

namespace mg::cpu {

namespace detail {

int64_t conv_tile_cols(int64_t floats_per_col, int64_t total) {
  int64_t n = kConvTileFloats / std::max<int64_t>(1, floats_per_col);
  n = std::max(kConvTileAlign, n / kConvTileAlign * kConvTileAlign);
  return std::min(n, total);
}

int64_t conv_direct_tile_cols(int64_t floats_per_col, int64_t total, int64_t block) {
  // Whole register blocks only: a 448-column tile of 48-column blocks ends in a third-full block.
  const int64_t cap =
      std::max(block, std::min(conv_tile_cols(floats_per_col, total), kConvDirectMaxCols) / block * block);
  const int64_t share = (total + kConvMinTiles - 1) / kConvMinTiles;
  return std::min({cap, std::max(block, (share + block - 1) / block * block), total});
}

void load_conv_window(const Exec& ex, const float* x, int64_t cin, int64_t t, int64_t p0, int64_t width,
                      const Conv1dFusion& f, float* dst) {
  const int64_t pl = f.pad_left;
  // Window positions whose source x index (p0 + i - pl) lies inside [0, t): [in0, in1).
  const int64_t in0 = std::clamp<int64_t>(pl - p0, 0, width), in1 = std::clamp<int64_t>(pl + t - p0, in0, width);
  for (int64_t c = 0; c < cin; ++c) {
    const float* xr = x + c * t;
    float* d = dst + c * width;
    // The ELU acts on x before padding: a constant pad value is not activated, mirrored samples
    // are. The inside is activated on its way from x (one pass over the window, not a copy and a
    // second pass); ELU is elementwise, so the bits are the same either way.
    if (f.elu) elu_row(ex, xr + (p0 + in0 - pl), d + in0, in1 - in0, f.elu_alpha);
    else std::copy(xr + (p0 + in0 - pl), xr + (p0 + in1 - pl), d + in0);
    auto edge = [&](int64_t i) {
      const int64_t s = p0 + i - pl;  // outside [0, t)
      switch (f.pad_mode) {
        case PadMode::Constant: return f.pad_value;
        case PadMode::Reflect: return xr[s < 0 ? -s : 2 * (t - 1) - s];
        case PadMode::Replicate: break;
      }
      return xr[s < 0 ? 0 : t - 1];
    };
    for (int64_t i = 0; i < in0; ++i) d[i] = edge(i);
    for (int64_t i = in1; i < width; ++i) d[i] = edge(i);
    if (!f.elu || f.pad_mode == PadMode::Constant) continue;
    elu_row(ex, d, d, in0, f.elu_alpha);
    elu_row(ex, d + in1, d + in1, width - in1, f.elu_alpha);
  }
}

}  // namespace detail

namespace {

using detail::ConvShape;

// One thread's tiles: the im2col (or, for the direct kernel, the phase-major window) of time tile
// `ti`, kept while consecutive tiles share it: they differ only in their block of output channels.
struct TileWorker {
  TileWorker(const Exec& e, const ConvShape& sh, const Conv1dFusion& fu, const float* x, bool d)
      : ex(e), s(sh), f(fu), xb(x), direct(d) {}
  const Exec& ex;
  const ConvShape& s;
  const Conv1dFusion& f;
  const float* xb;
  const bool direct;
  std::vector<float> buf;
  int64_t cached = -1;
  const float* col = nullptr;
  int64_t ldcol = 0;  // im2col: its row length; direct: floats per phase

  void prepare(int64_t ti, int64_t j0, int64_t n) {
    if (ti == cached) return;
    cached = ti;
    const int64_t p0 = j0 * s.stride, width = (n - 1) * s.stride + s.span, rows = s.cin * s.k;
    const bool pointwise = s.k == 1 && s.stride == 1;
    if (pointwise && !direct && !f.elu && p0 >= f.pad_left && p0 + width - f.pad_left <= s.t) {
      col = xb + (p0 - f.pad_left);  // straight from x
      ldcol = s.t;
      return;
    }
    const int64_t mw = (width + s.stride - 1) / s.stride;
    const int64_t extra = direct ? (s.stride > 1 ? s.cin * s.stride * mw : 0) : (pointwise ? 0 : rows * n);
    buf.resize(size_t(s.cin * width + extra));
    float* win = buf.data();
    detail::load_conv_window(ex, xb, s.cin, s.t, p0, width, f, win);
    col = win;
    ldcol = width;
    if (pointwise || (direct && s.stride == 1)) return;
    float* c = win + s.cin * width;
    col = c;
    if (direct) {  // phase-major: c[(ch * stride + p) * mw + m] = win[ch * width + m * stride + p]
      ldcol = mw;
      for (int64_t ch = 0; ch < s.cin; ++ch)
        for (int64_t p = 0; p < s.stride; ++p) {
          const float* src = win + ch * width + p;
          float* dst = c + (ch * s.stride + p) * mw;
          for (int64_t m = 0; m * s.stride + p < width; ++m) dst[m] = src[m * s.stride];
        }
      return;
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = win + (r / s.k) * width + (r % s.k) * s.dilation;
      float* dst = c + r * n;
      if (s.stride == 1) std::copy(src, src + n, dst);
      else
        for (int64_t j = 0; j < n; ++j) dst[j] = src[j * s.stride];
    }
    ldcol = n;
  }
};

// Output columns [j0, j0 + n) of channels [m0, m0 + mb) (see the file comment); w is packed
// (conv1d_direct_pack) when the worker is direct.
void gemm_tile(TileWorker& tw, const float* w, const float* bias, const float* rb, float* yb, int64_t ti,
               int64_t j0, int64_t n, int64_t m0, int64_t mb) {
  const ConvShape& s = tw.s;
  tw.prepare(ti, j0, n);
  if (tw.direct) {
    detail::conv1d_direct_tile(s, tw.col, tw.ldcol, w, bias, rb ? rb + j0 : nullptr, yb + j0, s.tout, m0, mb, n);
    return;
  }
  const int64_t rows = s.cin * s.k;
  float* y0 = yb + m0 * s.tout + j0;
  if (bias)
    for (int64_t o = 0; o < mb; ++o) std::fill(y0 + o * s.tout, y0 + o * s.tout + n, bias[m0 + o]);
  detail::sgemm_serial(false, false, mb, n, rows, 1.0f, w + m0 * rows, rows, tw.col, tw.ldcol, bias ? 1.0f : 0.0f,
                       y0, s.tout);
  if (rb) detail::add_residual_cols(rb + m0 * s.tout + j0, y0, mb, n, s.tout);
}

}  // namespace

namespace detail {

void add_residual_cols(const float* r, float* y, int64_t rows, int64_t n, int64_t ld) {
  // y = r + y, as add(residual, conv) rounds it.
  for (int64_t o = 0; o < rows; ++o) {
    const float* ro = r + o * ld;
    float* yo = y + o * ld;
    for (int64_t j = 0; j < n; ++j) yo[j] = ro[j] + yo[j];
  }
}

}  // namespace detail

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation, const Conv1dFusion& f,
              const Exec& ex) {
  ConvShape s;
  s.batch = x.ndim() == 3 ? x.dim(0) : 1;
  s.cin = x.dim(-2);
  s.t = x.dim(-1);
  s.cout = w.dim(0);
  s.k = w.dim(2);
  s.stride = stride;
  s.dilation = dilation;
  s.span = int64_t(dilation) * (s.k - 1) + 1;
  const int64_t tp = s.t + f.pad_left + f.pad_right;
  s.tout = (tp - s.span) / stride + 1;
  Shape out_shape = x.shape;
  out_shape[out_shape.size() - 2] = s.cout;
  out_shape.back() = s.tout;
  Tensor y = Tensor::empty(DType::F32, out_shape);
  if (s.cin == 1 || s.cout == 1) {
    detail::conv1d_thin(ex, s, x.f32(), w.f32(), b ? b->f32() : nullptr, f, y.f32());
    return y;
  }

  // Per output column: the window (Cin * stride), col (Cin * K, unless pointwise) and the output.
  // Wide layers with short inputs (the inner levels) are also cut by output channels, so both
  // threads have work; each such tile redoes its im2col, small next to its GEMM.
  // The direct kernel keeps a block's 8 * Cin * K packed weights in L1 while it sweeps the window;
  // past kConvDirectMaxCinK OpenBLAS's blocking wins (measured on EnCodec's deep, strided layers).
  const bool pointwise = s.k == 1 && s.stride == 1;
  const bool direct = detail::conv1d_direct_available(ex) && s.cin * s.k <= detail::kConvDirectMaxCinK;
  const int64_t per_col = s.cin * s.stride + s.cout +
                          (direct ? (s.stride > 1 ? s.cin * s.stride : 0) : (pointwise ? 0 : s.cin * s.k));
  // The direct kernel's tiles are narrow enough for the CPU's stride prefetcher to follow its rows.
  const int64_t nt = direct ? detail::conv_direct_tile_cols(per_col, s.tout, detail::conv1d_direct_block_cols())
                            : detail::conv_tile_cols(per_col, s.tout);
  const int64_t tiles_t = (s.tout + nt - 1) / nt, tiles_m = (s.cout + detail::kConvTileM - 1) / detail::kConvTileM;
  // The direct kernel reads each register block's weights as one contiguous run, packed once here
  // rather than per tile (a tile of a strided layer is only ~8 column blocks per weight block).
  std::vector<float> packed;
  const float* wk = w.f32();  // the weights as the tiles read them
  if (direct) {
    packed.resize(size_t(w.numel()));
    detail::conv1d_direct_pack(s, detail::kConvTileM, w.f32(), packed.data());
    wk = packed.data();
  }
  for (int64_t bi = 0; bi < s.batch; ++bi) {
    const float* xb = x.f32() + bi * s.cin * s.t;
    const float* rb = f.residual ? f.residual->f32() + bi * s.cout * s.tout : nullptr;
    float* yb = y.f32() + bi * s.cout * s.tout;
    detail::parallel_tiles(ex, tiles_t * tiles_m, detail::conv_claim_group(ex, tiles_t, tiles_m), 1, [&](auto& claim) {
      TileWorker tw(ex, s, f, xb, direct);
      for (int64_t i; claim(&i);) {
        const int64_t ti = i / tiles_m, m0 = (i % tiles_m) * detail::kConvTileM;
        gemm_tile(tw, wk, b ? b->f32() : nullptr, rb, yb, ti, ti * nt, std::min(nt, s.tout - ti * nt), m0,
                  std::min(detail::kConvTileM, s.cout - m0));
      }
    });
  }
  return y;
}

}  // namespace mg::cpu
