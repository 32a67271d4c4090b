// Exact (erf) GELU forward and backward for training (train_ops.h).
#include <cmath>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/train_ops.h"

namespace mg::cpu::train {

void gelu_forward(const Exec& ex, const float* x, float* y, int64_t n) {
  detail::parallel_for(ex, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * float(M_SQRT1_2)));
  });
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x), Phi the normal CDF, phi its density.
void gelu_backward(const Exec& ex, const float* dy, const float* x, float* dx, int64_t n) {
  const float inv_sqrt_2pi = 0.3989422804014327f;
  detail::parallel_for(ex, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float cdf = 0.5f * (1.0f + std::erf(x[i] * float(M_SQRT1_2)));
      const float pdf = inv_sqrt_2pi * std::exp(-0.5f * x[i] * x[i]);
      dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
  });
}

}  // namespace mg::cpu::train
