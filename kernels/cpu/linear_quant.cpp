// linear with block-quantized weights (Q8_0, Q4_0): y[..., N] = x[..., K] . w[N, K]^T (+ b[N]).
// A decode step reads every weight once, so its speed is bytes per weight: 8.5 bits (q8_0) or 4.5
// (q4_0) instead of 32 or 16. The activations are quantized to int8 blocks once per call (a few KB),
// then every output is an integer dot product per block, scaled and summed in f32
// (linear_quant.h). The same row gives the same bits for any batch size and thread count, and on
// every kernel path (portable, AVX2, AVX-512 VNNI): a server batching requests gets byte-identical
// outputs.
#include <algorithm>
#include <memory>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/linear_quant.h"
#include "kernels/quant.h"

namespace mg::cpu {

namespace {
constexpr int64_t kThreadedQuantizeRows = 8;  // activation rows from which the threads share the quantizing
}  // namespace

Tensor linear_quantized(const Tensor& x, const Tensor& w, const Tensor* b, const Exec& ex, KernelPath path) {
  MG_CHECK(dtype_is_quantized(w.dtype), "linear_quantized: weight dtype ", dtype_name(w.dtype), " is not quantized");
  MG_CHECK(kernel_path_supported(path), "linear_quantized: this processor cannot run the ", kernel_path_name(path),
           " kernels");
  const int64_t k = x.cols(), n = w.dim(0);
  int64_t m = 1;
  for (int i = 0; i + 1 < x.ndim(); ++i) m *= x.shape[i];
  Shape out_shape = x.shape;
  out_shape.back() = n;
  Tensor y = Tensor::empty(DType::F32, out_shape);
  float* yp = y.f32();
  if (m == 0 || n == 0) return y;

  // Uninitialised (every byte is written next): a decode step makes a hundred of these calls.
  std::unique_ptr<int8_t[]> q(new int8_t[size_t(m * k)]);
  std::unique_ptr<float[]> d(new float[size_t(m * (k / kQuantBlock))]);
  const float* xp = x.f32();
  const auto quantize_rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      quantize_activations(xp + r * k, k, q.get() + r * k, d.get() + r * (k / kQuantBlock));
  };
  // A server's shared step quantizes 16 rows a call (22-27 us at K = 4096 on one thread of the
  // Xeon VM, beside a ~400 us call): split over the threads. A request alone has 2 rows, a few us,
  // less than a hand-off to the other threads would cost.
  if (m >= kThreadedQuantizeRows)
    detail::parallel_for(ex, m, 1, quantize_rows);
  else
    quantize_rows(0, m);
  const detail::QuantizedRows xq{q.get(), d.get(), m, k};
  const bool q8 = w.dtype == DType::Q8_0;
  if (w.layout == QuantLayout::Interleaved16) {
    // Groups of 16 rows, then the last n % 16 rows, which stay in row order.
    const int64_t groups = n / 16;
    const detail::ActivationBlocks a = detail::pack_x16(path, w.dtype, xq);
    detail::parallel_for(ex, groups + (n % 16 != 0), 1, [&](int64_t g0, int64_t g1) {
      detail::gemv_x16(path, w.dtype, xq, a, w.data, yp, n, g0, std::min(g1, groups));
      if (g1 > groups) (q8 ? detail::gemv_q8_0 : detail::gemv_q4_0)(path, xq, w.data, yp, n, groups * 16, n);
    });
  } else {
    detail::parallel_for(ex, n, 16, [&](int64_t n0, int64_t n1) {
      (q8 ? detail::gemv_q8_0 : detail::gemv_q4_0)(path, xq, w.data, yp, n, n0, n1);
    });
  }
  if (b) {
    const float* bp = b->f32();
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) yp[r * n + j] += bp[j];
  }
  return y;
}

}  // namespace mg::cpu
