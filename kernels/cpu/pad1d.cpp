// pad1d: pads the last dim exactly as torch.nn.functional.pad with a (left, right) pair:
//  - constant fills with `value`;
//  - reflect mirrors about the edge sample without repeating it (x[1], x[0] | x[0], x[1] ...) and,
//    as in torch, needs left and right < T;
//  - replicate repeats the edge sample.
// Negative pads (cropping in torch's constant mode) are not an op any model here needs: they throw.
#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

Tensor pad1d(const Tensor& x, int left, int right, PadMode mode, float value, const Exec& ex) {
  const int64_t t = x.cols(), rows = x.rows();
  Shape out_shape = x.shape;
  const int64_t tout = t + left + right;
  out_shape.back() = tout;
  Tensor y = Tensor::empty(DType::F32, out_shape);
  const float* xp = x.f32();
  float* yp = y.f32();
  detail::parallel_for(ex, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = xp + r * t;
      float* yr = yp + r * tout;
      for (int64_t i = 0; i < t; ++i) yr[left + i] = xr[i];
      for (int64_t i = 0; i < left; ++i) {
        // Output position i sits at input index i - left < 0.
        const int64_t src = i - left;
        yr[i] = mode == PadMode::Constant ? value : mode == PadMode::Reflect ? xr[-src] : xr[0];
      }
      for (int64_t i = 0; i < right; ++i) {
        const int64_t src = t + i;  // input index past the end
        yr[left + t + i] = mode == PadMode::Constant ? value
                           : mode == PadMode::Reflect ? xr[2 * (t - 1) - src]
                                                      : xr[t - 1];
      }
    }
  });
  return y;
}

}  // namespace mg::cpu
