// softmax over the last dim, numerically stable (the row max is subtracted first). A row whose
// entries are all -inf (every position masked) gives zeros rather than torch's NaN, so a fully
// masked attention row contributes nothing instead of poisoning the output.
#include <algorithm>
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

Tensor softmax(const Tensor& x, const Exec& ex) {
  const int64_t d = x.cols(), rows = x.rows();
  Tensor y = Tensor::empty(DType::F32, x.shape);
  const float* xp = x.f32();
  float* yp = y.f32();
  detail::parallel_for(ex, rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = xp + r * d;
      float* yr = yp + r * d;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < d; ++i) mx = std::max(mx, xr[i]);
      if (mx == -std::numeric_limits<float>::infinity()) {
        for (int64_t i = 0; i < d; ++i) yr[i] = 0.0f;
        continue;
      }
      double sum = 0.0;
      for (int64_t i = 0; i < d; ++i) {
        yr[i] = std::exp(xr[i] - mx);
        sum += yr[i];
      }
      const float inv = float(1.0 / sum);
      for (int64_t i = 0; i < d; ++i) yr[i] *= inv;
    }
  });
  return y;
}

}  // namespace mg::cpu
