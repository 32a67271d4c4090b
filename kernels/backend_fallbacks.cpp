// Default implementations of the Backend ops that have a host version good enough until a
// backend brings its own kernel. On the CPU backend download/upload are free, so these ARE the
// CPU reference; a device backend pays two copies until it overrides them.
#include <cstring>
#include <limits>

#include "kernels/ops.h"

namespace mg {

Tensor Backend::narrow_last(const Tensor& x, int64_t start, int64_t len) {
  const int64_t T = x.cols();
  MG_CHECK(x.ndim() >= 1 && start >= 0 && len >= 0 && start + len <= T, "narrow_last(", start, ", ", len,
           ") out of range for shape ", shape_str(x.shape));
  Tensor h = download(x);
  Shape s = x.shape;
  s.back() = len;
  Tensor out = Tensor::empty(x.dtype, s);
  const size_t es = dtype_size(x.dtype);
  const int64_t rows = x.rows();
  const char* src = static_cast<const char*>(h.data);
  char* dst = static_cast<char*>(out.data);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * len * es, src + (r * T + start) * es, len * es);
  return upload(out);
}

Tensor Backend::vq_nearest(const Tensor& x, const Tensor& embed) {
  MG_CHECK(x.ndim() == 2 && embed.ndim() == 2 && x.dim(1) == embed.dim(1) && x.dtype == DType::F32 &&
               embed.dtype == DType::F32,
           "vq_nearest: expected f32 x[N, D] and embed[V, D], got ", shape_str(x.shape), " and ",
           shape_str(embed.shape));
  const int64_t N = x.dim(0), V = embed.dim(0), D = x.dim(1);
  // x . embed^T with the backend's GEMM (the reference uses a GEMM too), then the distance
  // expression evaluated in the reference's order: -((|x|^2 - 2 xe) + |e|^2).
  Tensor xe = download(matmul(x.reshape({1, N, D}), embed.reshape({1, V, D}), /*trans_b=*/true));
  Tensor hx = download(x), he = download(embed);
  std::vector<float> e2(V);
  for (int64_t j = 0; j < V; ++j) {
    const float* e = he.f32() + j * D;
    float s = 0;
    for (int64_t d = 0; d < D; ++d) s += e[d] * e[d];
    e2[j] = s;
  }
  Tensor ids = Tensor::empty(DType::I64, {N});
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = hx.f32() + n * D;
    float x2 = 0;
    for (int64_t d = 0; d < D; ++d) x2 += xr[d] * xr[d];
    const float* dots = xe.f32() + n * V;
    float best = -std::numeric_limits<float>::infinity();
    int64_t arg = 0;
    for (int64_t j = 0; j < V; ++j) {
      float dist = -((x2 - 2.0f * dots[j]) + e2[j]);
      if (dist > best) { best = dist; arg = j; }
    }
    ids.ptr<int64_t>()[n] = arg;
  }
  return upload(ids);
}

}  // namespace mg
