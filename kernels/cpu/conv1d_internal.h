// Pieces shared by the CPU conv files (conv1d.cpp, conv1d_thin.cpp, conv_transpose1d.cpp): the
// time-tile sizing and the padded, activated input window. Not part of the op API.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu::detail {

// One thread's working set per time tile (input window, im2col or col2im buffer, output columns):
// 1 MiB, half of a core's L2 on the machines measured, leaving room for OpenBLAS's packed panels.
constexpr int64_t kConvTileFloats = int64_t(1) << 18;
// Tile widths are multiples of this and never below it (a GEMM much narrower spends its time
// packing the weights).
constexpr int64_t kConvTileAlign = 64;
// The direct kernel's tile width at most: a window row (and phase) under 2 KB.
constexpr int64_t kConvDirectMaxCols = 448;
// The direct kernels are used up to these reduction lengths Cin * K. conv_transpose1d's
// w[512, 256, 10] (Cin*K 5120) runs faster direct than as GEMM + col2im, its w[1024, 512, 16]
// (16384) does not. conv1d's w[512, 256, 10] (2560) ran faster direct alone but not inside an
// EnCodec encode (profile-codec), so conv1d stays at 1024.
constexpr int64_t kConvDirectMaxCinK = 1024;
constexpr int64_t kConvTrDirectMaxCinK = 8192;
// Output channels per GEMM tile: wide layers are split so that short inputs still give each
// thread work.
constexpr int64_t kConvTileM = 256;

// Tile width (columns) for `floats_per_col` floats of working set per column, at most `total`.
// Depends on the shape only, never on the thread count.
int64_t conv_tile_cols(int64_t floats_per_col, int64_t total);

// Narrows a direct kernel's tile width (cols of `total`) so that short inputs still make at least
// kConvMinTiles tiles for the threads to share; a multiple of `block` (the kernel's register block
// width in columns) unless that is more than total.
constexpr int64_t kConvMinTiles = 8;
int64_t conv_direct_tile_cols(int64_t floats_per_col, int64_t total, int64_t block);

// The claim group for tiles_t time tiles of tiles_m channel blocks each: whole time tiles when
// there are plenty for the threads to share, single tiles otherwise.
inline int64_t conv_claim_group(const Exec& ex, int64_t tiles_t, int64_t tiles_m) {
  return tiles_t >= 4 * ex.threads() ? tiles_m : 1;
}

// A conv1d problem after its checks: x[batch, cin, t] -> y[batch, cout, tout], w[cout, cin, k].
struct ConvShape {
  int64_t batch = 1, cin = 1, t = 0, cout = 1, k = 1, tout = 0;
  int64_t stride = 1, dilation = 1, span = 1;
};

// dst[c * width + i] = pad(elu(x))[c, p0 + i] for c < cin, i < width, where pad and elu are f's
// (x[c] is t samples at x + c * t; p0 is a position in the padded input).
void load_conv_window(const Exec& ex, const float* x, int64_t cin, int64_t t, int64_t p0, int64_t width,
                      const Conv1dFusion& f, float* dst);

// Throws unless f's residual (when set) is a CPU f32 tensor of the output's shape.

// y[o * ld + j] = r[o * ld + j] + y[o * ld + j] for o < rows, j < n (add(residual, conv)'s rounding).
void add_residual_cols(const float* r, float* y, int64_t rows, int64_t n, int64_t ld);

// The im2col-free AVX-512 kernel (conv1d_direct.cpp), when this CPU and ex allow it.
bool conv1d_direct_available(const Exec& ex);
// Output columns per register block of that kernel (its tiles are best a multiple of it).
int64_t conv1d_direct_block_cols();
// w[cout, cin, k] repacked for that kernel into wpk (cout * cin * k floats): per channel tile of
// tile_m channels from 0, per register block of channels from the tile's first, the block's weights
// in the order the kernel reads them. Done once per call, not per tile.
void conv1d_direct_pack(const ConvShape& s, int64_t tile_m, const float* w, float* wpk);
// Output channels [m0, m0 + mb) (m0 a multiple of the tile_m given to the pack), columns [0, n) of one
// tile: y[o * ldy + j] (+ r[o * ldy + j] when r) from the phase-major window xph (mw floats per phase;
// see conv1d_direct.cpp) and the packed weights wpk.
void conv1d_direct_tile(const ConvShape& s, const float* xph, int64_t mw, const float* wpk, const float* bias,
                        const float* r, float* y, int64_t ldy, int64_t m0, int64_t mb, int64_t n);

// A conv_transpose1d problem after its checks: x[batch, cin, t], w[cin, cout, k] -> the untrimmed
// output [batch, cout, full] of which [trim_left, trim_left + tout) is kept.
struct ConvTrShape {
  int64_t batch = 1, cin = 1, t = 0, cout = 1, k = 1, stride = 1;
  int64_t full = 0;
  int64_t trim_left = 0, tout = 0;
};

// The AVX-512 kernel of conv_transpose1d_direct.cpp, for strides 1..8, when ex allows it.
bool conv_transpose1d_direct_supported(const Exec& ex, int64_t stride);
// Input steps per register block of that kernel for this stride.
int64_t conv_transpose1d_direct_block_steps(int64_t stride);
// w[cin, cout, k] repacked for that kernel (packed_size floats): per channel tile of tile_m channels
// from 0, per register block of channels, the block's weights in the order the kernel reads them
// (taps padded with zeros to a multiple of the stride). Done once per call, not per tile.
int64_t conv_transpose1d_direct_packed_size(const ConvTrShape& s);
void conv_transpose1d_direct_pack(const ConvTrShape& s, int64_t tile_m, const float* w, float* wpk);
// Untrimmed outputs q in [qlo, qhi) of channels [o0, o0 + mb) (o0 a multiple of the pack's tile_m)
// from steps m in [m0, m0 + nm), where xw[c * ldw + u] = elu(x)[c, m0 - (I-1) + u] (zero outside the
// input), I = ceil(k / stride), with the packed weights wpk; yb is the batch item's trimmed output.
void conv_transpose1d_direct_tile(const ConvTrShape& s, const float* xw, int64_t ldw, int64_t m0, int64_t nm,
                                  const float* wpk, const float* bias, int64_t o0, int64_t mb, int64_t qlo,
                                  int64_t qhi, float* yb);

// conv1d with cin == 1 or cout == 1, computed directly (conv1d_thin.cpp); y is [batch, cout, tout].
void conv1d_thin(const Exec& ex, const ConvShape& s, const float* x, const float* w, const float* b,
                 const Conv1dFusion& f, float* y);

}  // namespace mg::cpu::detail
