// conv1d as im2col + sgemm: for each batch item, col[Cin*K, Tout] holds the input sample each
// kernel tap sees, and y[Cout, Tout] = w[Cout, Cin*K] . col. Audio is long (EnCodec's outer layers
// see ~10^6 samples), so time is cut into tiles and col never exceeds kColFloats floats. A 1-tap,
// stride-1 conv (a 1x1 projection) skips im2col and multiplies x directly.
#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

namespace {

constexpr int64_t kColFloats = 1 << 21;  // 8 MiB of im2col buffer per tile

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation, const Exec& ex) {
  detail::check_cpu(x, DType::F32, "conv1d x");
  detail::check_cpu(w, DType::F32, "conv1d w");
  MG_CHECK(x.ndim() == 2 || x.ndim() == 3, "conv1d: x must be [B, C, T] or [C, T], got ", shape_str(x.shape));
  MG_CHECK(w.ndim() == 3 && w.dim(1) == x.dim(-2), "conv1d: w ", shape_str(w.shape),
           " does not match x ", shape_str(x.shape), " (want w[Cout, Cin, K] with Cin = x's channels)");
  MG_CHECK(stride >= 1 && dilation >= 1, "conv1d: stride ", stride, " and dilation ", dilation,
           " must be >= 1");
  const int64_t batch = x.ndim() == 3 ? x.dim(0) : 1, cin = x.dim(-2), t = x.dim(-1);
  const int64_t cout = w.dim(0), k = w.dim(2);
  const int64_t span = int64_t(dilation) * (k - 1) + 1;
  MG_CHECK(k >= 1 && t >= span, "conv1d: input length ", t, " of x ", shape_str(x.shape),
           " is shorter than the kernel span ", span, " (w ", shape_str(w.shape), ", dilation ", dilation, ")");
  const int64_t tout = (t - span) / stride + 1;
  if (b) {
    detail::check_cpu(*b, DType::F32, "conv1d b");
    MG_CHECK(b->ndim() == 1 && b->numel() == cout, "conv1d: bias ", shape_str(b->shape), " does not match w ",
             shape_str(w.shape));
  }
  Shape out_shape = x.shape;
  out_shape[out_shape.size() - 2] = cout;
  out_shape.back() = tout;
  Tensor y = Tensor::empty(DType::F32, out_shape);
  const float* xp = x.f32();
  const float* wp = w.f32();
  float* yp = y.f32();
  const int64_t rows = cin * k;  // rows of col, columns of w viewed as [Cout, Cin*K]

  const bool direct = k == 1 && stride == 1;
  const int64_t tile = direct ? tout : std::max<int64_t>(1, std::min<int64_t>(tout, kColFloats / rows));
  std::vector<float> col(direct ? 0 : size_t(rows * tile));

  for (int64_t bi = 0; bi < batch; ++bi) {
    const float* xb = xp + bi * cin * t;
    float* yb = yp + bi * cout * tout;
    // The bias is written first so that sgemm accumulates onto it (beta = 1).
    for (int64_t o = 0; o < cout; ++o) std::fill(yb + o * tout, yb + (o + 1) * tout, b ? b->f32()[o] : 0.0f);
    if (direct) {
      detail::sgemm(ex, false, false, cout, tout, cin, 1.0f, wp, cin, xb, t, 1.0f, yb, tout);
      continue;
    }
    for (int64_t t0 = 0; t0 < tout; t0 += tile) {
      const int64_t nt = std::min(tile, tout - t0);
      detail::parallel_for(ex, rows, 4, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t c = r / k, tap = r % k;
          const float* src = xb + c * t + t0 * stride + tap * dilation;
          float* dst = col.data() + r * nt;
          if (stride == 1) {
            std::copy(src, src + nt, dst);
          } else {
            for (int64_t j = 0; j < nt; ++j) dst[j] = src[j * stride];
          }
        }
      });
      detail::sgemm(ex, false, false, cout, nt, rows, 1.0f, wp, rows, col.data(), nt, 1.0f, yb + t0, tout);
    }
  }
  return y;
}

}  // namespace mg::cpu
