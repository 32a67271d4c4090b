// conv_transpose1d as sgemm + col2im: col[Cout*K, T] = w^T . x, where w[Cin, Cout, K] is read as
// [Cin, Cout*K]; then every input step t adds its K taps at output positions t*stride + k. The
// output is untrimmed, (T - 1) * stride + K long: EnCodec trims it in codec/ by its own rule.
// Time is tiled as in conv1d; tiles add into the output, so their overlap needs no special care.
#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

namespace {

constexpr int64_t kColFloats = 1 << 21;  // 8 MiB of col buffer per tile

}  // namespace

Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor* b, int stride, const Exec& ex) {
  detail::check_cpu(x, DType::F32, "conv_transpose1d x");
  detail::check_cpu(w, DType::F32, "conv_transpose1d w");
  MG_CHECK(x.ndim() == 2 || x.ndim() == 3, "conv_transpose1d: x must be [B, C, T] or [C, T], got ",
           shape_str(x.shape));
  MG_CHECK(w.ndim() == 3 && w.dim(0) == x.dim(-2), "conv_transpose1d: w ", shape_str(w.shape),
           " does not match x ", shape_str(x.shape), " (want w[Cin, Cout, K] with Cin = x's channels)");
  MG_CHECK(stride >= 1, "conv_transpose1d: stride ", stride, " must be >= 1");
  const int64_t batch = x.ndim() == 3 ? x.dim(0) : 1, cin = x.dim(-2), t = x.dim(-1);
  const int64_t cout = w.dim(1), k = w.dim(2);
  MG_CHECK(k >= 1 && t >= 1, "conv_transpose1d: empty kernel or input (x ", shape_str(x.shape), ", w ",
           shape_str(w.shape), ")");
  const int64_t tout = (t - 1) * stride + k;
  if (b) {
    detail::check_cpu(*b, DType::F32, "conv_transpose1d b");
    MG_CHECK(b->ndim() == 1 && b->numel() == cout, "conv_transpose1d: bias ", shape_str(b->shape),
             " does not match w ", shape_str(w.shape));
  }
  Shape out_shape = x.shape;
  out_shape[out_shape.size() - 2] = cout;
  out_shape.back() = tout;
  Tensor y = Tensor::empty(DType::F32, out_shape);
  const float* xp = x.f32();
  const float* wp = w.f32();
  float* yp = y.f32();
  const int64_t rows = cout * k;
  const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(t, kColFloats / rows));
  std::vector<float> col(size_t(rows * tile));

  for (int64_t bi = 0; bi < batch; ++bi) {
    const float* xb = xp + bi * cin * t;
    float* yb = yp + bi * cout * tout;
    for (int64_t o = 0; o < cout; ++o) std::fill(yb + o * tout, yb + (o + 1) * tout, b ? b->f32()[o] : 0.0f);
    for (int64_t t0 = 0; t0 < t; t0 += tile) {
      const int64_t nt = std::min(tile, t - t0);
      detail::sgemm(ex, true, false, rows, nt, cin, 1.0f, wp, rows, xb + t0, t, 0.0f, col.data(), nt);
      // One thread per output channel: each output sample is summed by one thread, in tap order.
      detail::parallel_for(ex, cout, 1, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) {
          float* yo = yb + o * tout + t0 * stride;
          for (int64_t tap = 0; tap < k; ++tap) {
            const float* cr = col.data() + (o * k + tap) * nt;
            for (int64_t j = 0; j < nt; ++j) yo[j * stride + tap] += cr[j];
          }
        }
      });
    }
  }
  return y;
}

}  // namespace mg::cpu
