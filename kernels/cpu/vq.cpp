// Nearest codeword (EnCodec's RVQ encode) on the CPU: the x . e^T products as one tiled GEMM, then
// the distance and argmax per row over the thread pool. The distance is evaluated exactly as the
// reference (and Backend's host default) writes it, -((|x|^2 - 2 x.e) + |e|^2) in f32 with the
// first index winning ties, so only the GEMM's summation order can differ from it.
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

Tensor vq_nearest(const Tensor& x, const Tensor& embed, const Exec& ex) {
  detail::check_cpu(x, DType::F32, "vq_nearest x");
  detail::check_cpu(embed, DType::F32, "vq_nearest embed");
  MG_CHECK(x.ndim() == 2 && embed.ndim() == 2 && x.dim(1) == embed.dim(1), "vq_nearest: expected x[N, D] and embed[V, D], got ",
           shape_str(x.shape), " and ", shape_str(embed.shape));
  const int64_t N = x.dim(0), V = embed.dim(0), D = x.dim(1);
  Tensor ids = Tensor::empty(DType::I64, {N});
  if (N == 0) return ids;
  MG_CHECK(V >= 1, "vq_nearest: the codebook ", shape_str(embed.shape), " is empty");
  std::vector<float> xe(static_cast<size_t>(N * V));
  detail::sgemm(ex, false, true, N, V, D, 1.0f, x.f32(), D, embed.f32(), D, 0.0f, xe.data(), V);
  std::vector<float> e_sq(static_cast<size_t>(V));
  for (int64_t j = 0; j < V; ++j) {
    const float* e = embed.f32() + j * D;
    float s = 0;
    for (int64_t d = 0; d < D; ++d) s += e[d] * e[d];
    e_sq[size_t(j)] = s;
  }
  detail::parallel_for(ex, N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* xr = x.f32() + n * D;
      float x2 = 0;
      for (int64_t d = 0; d < D; ++d) x2 += xr[d] * xr[d];
      const float* dots = xe.data() + n * V;
      float best = -std::numeric_limits<float>::infinity();
      int64_t arg = 0;
      for (int64_t j = 0; j < V; ++j) {
        const float dist = -((x2 - 2.0f * dots[j]) + e_sq[size_t(j)]);
        if (dist > best) {
          best = dist;
          arg = j;
        }
      }
      ids.ptr<int64_t>()[n] = arg;
    }
  });
  return ids;
}

}  // namespace mg::cpu
