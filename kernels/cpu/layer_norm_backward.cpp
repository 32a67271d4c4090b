// Layer norm forward (keeping mean and 1/std per row) and backward for training (train_ops.h).
// The weight and bias are frozen: only dx. Row sums in double (rows of D up to a few thousand).
#include <cmath>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/train_ops.h"

namespace mg::cpu::train {

void layer_norm_forward(const Exec& ex, const float* x, const float* w, const float* b, int64_t N, int64_t D,
                        float eps, float* y, float* mean, float* rstd) {
  detail::parallel_for(ex, N, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      double s = 0.0;
      for (int64_t i = 0; i < D; ++i) s += xr[i];
      const float m = float(s / double(D));
      double v = 0.0;
      for (int64_t i = 0; i < D; ++i) v += double(xr[i] - m) * double(xr[i] - m);
      const float rs = float(1.0 / std::sqrt(v / double(D) + double(eps)));
      mean[r] = m;
      rstd[r] = rs;
      for (int64_t i = 0; i < D; ++i) y[r * D + i] = (xr[i] - m) * rs * w[i] + b[i];
    }
  });
}

// With xhat = (x - mean) rstd and g = dy w: dx = rstd (g - mean(g) - xhat mean(g xhat)).
void layer_norm_backward(const Exec& ex, const float* dy, const float* x, const float* w, const float* mean,
                         const float* rstd, int64_t N, int64_t D, float* dx) {
  detail::parallel_for(ex, N, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      const float* dyr = dy + r * D;
      double sg = 0.0, sgx = 0.0;
      for (int64_t i = 0; i < D; ++i) {
        const float g = dyr[i] * w[i];
        sg += g;
        sgx += double(g) * double((xr[i] - mean[r]) * rstd[r]);
      }
      const float mg_ = float(sg / double(D)), mgx = float(sgx / double(D));
      for (int64_t i = 0; i < D; ++i) {
        const float xhat = (xr[i] - mean[r]) * rstd[r];
        dx[r * D + i] += rstd[r] * (dyr[i] * w[i] - mg_ - xhat * mgx);
      }
    }
  });
}

}  // namespace mg::cpu::train
