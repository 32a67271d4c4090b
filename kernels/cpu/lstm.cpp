// One LSTM layer over a whole sequence from zero state (torch.nn.LSTM, gate order i, f, g, o):
//   gates_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
//   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
// The input part does not depend on h, so it is done for all steps at once with one sgemm; only
// the h_{t-1} W_hh^T GEMV remains inside the (inherently serial) time loop.
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

namespace {

inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

Tensor as_f32(const Tensor& t, const Exec& ex) { return t.dtype == DType::F32 ? t : cast(t, DType::F32, ex); }

}  // namespace

Tensor lstm(const Tensor& x, const LstmLayerWeights& w, const Exec& ex) {
  detail::check_cpu(x, DType::F32, "lstm x");
  detail::check_cpu_float(w.w_ih, "lstm w_ih");
  detail::check_cpu_float(w.w_hh, "lstm w_hh");
  detail::check_cpu_float(w.b_ih, "lstm b_ih");
  detail::check_cpu_float(w.b_hh, "lstm b_hh");
  MG_CHECK(x.ndim() == 2, "lstm: x must be [T, In], got ", shape_str(x.shape));
  MG_CHECK(w.w_hh.ndim() == 2 && w.w_hh.dim(0) == 4 * w.w_hh.dim(1), "lstm: w_hh ", shape_str(w.w_hh.shape),
           " is not [4H, H]");
  const int64_t steps = x.dim(0), in = x.dim(1), h = w.w_hh.dim(1), g4 = 4 * h;
  MG_CHECK(w.w_ih.ndim() == 2 && w.w_ih.dim(0) == g4 && w.w_ih.dim(1) == in, "lstm: w_ih ",
           shape_str(w.w_ih.shape), " does not match x ", shape_str(x.shape), " and w_hh ",
           shape_str(w.w_hh.shape), " (want [4H, In])");
  MG_CHECK(w.b_ih.numel() == g4 && w.b_hh.numel() == g4, "lstm: biases ", shape_str(w.b_ih.shape), " and ",
           shape_str(w.b_hh.shape), " must both be [4H] = [", g4, "]");
  const Tensor w_hh = as_f32(w.w_hh, ex);
  const Tensor b_ih = as_f32(w.b_ih, ex).reshape({g4});
  const Tensor b_hh = as_f32(w.b_hh, ex).reshape({g4});
  Tensor bias = Tensor::empty(DType::F32, {g4});
  for (int64_t j = 0; j < g4; ++j) bias.f32()[j] = b_ih.f32()[j] + b_hh.f32()[j];

  Tensor gates = linear(x, w.w_ih, &bias, ex);  // [T, 4H]: the input part of every step
  Tensor out = Tensor::empty(DType::F32, {steps, h});
  float* gp = gates.f32();
  float* hp = out.f32();
  const float* whh = w_hh.f32();
  std::vector<float> c(size_t(h), 0.0f);
  for (int64_t t = 0; t < steps; ++t) {
    float* gt = gp + t * g4;
    if (t > 0) detail::sgemv(ex, g4, h, 1.0f, whh, h, hp + (t - 1) * h, 1.0f, gt);
    float* ht = hp + t * h;
    for (int64_t j = 0; j < h; ++j) {
      const float ig = sigmoid(gt[j]), fg = sigmoid(gt[h + j]);
      const float gg = std::tanh(gt[2 * h + j]), og = sigmoid(gt[3 * h + j]);
      c[j] = fg * c[j] + ig * gg;
      ht[j] = og * std::tanh(c[j]);
    }
  }
  return out;
}

}  // namespace mg::cpu
