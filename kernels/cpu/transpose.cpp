// transpose: [..., A, B] -> [..., B, A], one matrix per leading index. Copies go in square tiles
// so that both the reads and the writes stay within a few cache lines.
#include <algorithm>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

Tensor transpose(const Tensor& x, const Exec& ex) {
  const int64_t a = x.dim(-2), b = x.dim(-1);
  Shape out_shape = x.shape;
  std::swap(out_shape[out_shape.size() - 1], out_shape[out_shape.size() - 2]);
  Tensor y = Tensor::empty(x.dtype, out_shape);
  const int64_t mats = a * b == 0 ? 0 : x.numel() / (a * b);
  const size_t es = dtype_size(x.dtype);
  const char* xp = static_cast<const char*>(x.data);
  char* yp = static_cast<char*>(y.data);
  constexpr int64_t kTile = 32;
  const int64_t tiles_a = (a + kTile - 1) / kTile;
  // Work items are (matrix, row tile) pairs, so one long matrix still spreads over the pool.
  detail::parallel_for(ex, mats * tiles_a, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t m = w / tiles_a, i0 = (w % tiles_a) * kTile, i1 = std::min(a, i0 + kTile);
      const char* src = xp + size_t(m * a * b) * es;
      char* dst = yp + size_t(m * a * b) * es;
      for (int64_t j0 = 0; j0 < b; j0 += kTile) {
        const int64_t j1 = std::min(b, j0 + kTile);
        if (es == 4) {
          const float* s = reinterpret_cast<const float*>(src);
          float* d = reinterpret_cast<float*>(dst);
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t j = j0; j < j1; ++j) d[j * a + i] = s[i * b + j];
        } else {
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t j = j0; j < j1; ++j)
              std::copy(src + size_t(i * b + j) * es, src + size_t(i * b + j + 1) * es, dst + size_t(j * a + i) * es);
        }
      }
    }
  });
  return y;
}

}  // namespace mg::cpu
