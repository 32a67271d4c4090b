// matmul: c[..., M, N] = alpha * a[..., M, K] . (trans_b ? b[..., N, K]^T : b[..., K, N]).
// Leading dims are batch dims and must match; a 2-D b is shared by every batch (a weight).
#include <algorithm>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_b, float alpha, const Exec& ex) {
  const int64_t m = a.dim(-2), k = a.dim(-1);
  const int64_t n = trans_b ? b.dim(-2) : b.dim(-1);
  bool shared_b = b.ndim() == 2;
  Shape out_shape = a.shape;
  out_shape[out_shape.size() - 1] = n;
  Tensor c = Tensor::empty(DType::F32, out_shape);
  const int64_t batch = a.numel() / std::max<int64_t>(1, m * k);
  const float* ap = a.f32();
  const float* bp = b.f32();
  float* cp = c.f32();
  if (m * k == 0) {  // empty inner sizes: the product is zeros (or empty)
    for (int64_t i = 0; i < c.numel(); ++i) cp[i] = 0.0f;
    return c;
  }
  auto one = [&](int64_t i, bool tiled) {
    const float* bi = shared_b ? bp : bp + i * k * n;
    if (tiled)
      detail::sgemm(ex, false, trans_b, m, n, k, alpha, ap + i * m * k, k, bi, trans_b ? k : n, 0.0f, cp + i * m * n, n);
    else
      detail::sgemm_serial(false, trans_b, m, n, k, alpha, ap + i * m * k, k, bi, trans_b ? k : n, 0.0f, cp + i * m * n, n);
  };
  if (m * n * k >= detail::kGemmMinTiledWork) {
    for (int64_t i = 0; i < batch; ++i) one(i, true);  // each product is big enough to split itself
  } else {
    // Many small products (attention heads during decode): one whole product per work item.
    detail::parallel_for(ex, batch, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) one(i, false);
    });
  }
  return c;
}

}  // namespace mg::cpu
