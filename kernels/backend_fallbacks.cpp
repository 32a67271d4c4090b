// Default implementations (*_impl) of the Backend ops that have a host version good enough until a
// backend brings its own kernel; the public op has checked the contract before they run. On the CPU backend download/upload are free, so these ARE the
// CPU reference; a device backend pays two copies until it overrides them.
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/op_checks.h"
#include "kernels/ops.h"

namespace mg {

Tensor Backend::narrow_last_impl(const Tensor& x, int64_t start, int64_t len, const Shape& out_shape) {
  const int64_t T = x.cols();
  Tensor h = download(x);
  Tensor out = Tensor::empty(x.dtype, out_shape);
  const size_t es = dtype_size(x.dtype);
  const int64_t rows = x.rows();
  const char* src = static_cast<const char*>(h.data);
  char* dst = static_cast<char*>(out.data);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * len * es, src + (r * T + start) * es, len * es);
  return upload(out);
}

Tensor Backend::vq_nearest_impl(const Tensor& x, const Tensor& embed) {
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

namespace mg {

Tensor attention_on_host(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads,
                         float scale, bool causal) {
  check_attention(be.device(), q, k, v, T, heads, causal);
  const int64_t S = q.dim(0), D = k.dim(1), dh = D / heads, Wq = q.dim(1);
  Tensor hq = be.download(q), hk = be.download(k.slice0(0, T)), hv = be.download(v.slice0(0, T));
  Tensor out = Tensor::empty(DType::F32, {S, D});
  std::vector<float> p(T);
  for (int h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < S; ++i) {
      const int64_t visible = causal ? T - S + i + 1 : T;
      const float* qi = hq.f32() + i * Wq + h * dh;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < visible; ++j) {
        const float* kj = hk.f32() + j * D + h * dh;
        float s = 0;
        for (int64_t d = 0; d < dh; ++d) s += qi[d] * kj[d];
        p[j] = s * scale;
        mx = std::max(mx, p[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j < visible; ++j) {
        p[j] = std::exp(p[j] - mx);
        sum += p[j];
      }
      float* o = out.f32() + i * D + h * dh;
      for (int64_t d = 0; d < dh; ++d) o[d] = 0;
      for (int64_t j = 0; j < visible; ++j) {
        const float w = p[j] / sum;
        const float* vj = hv.f32() + j * D + h * dh;
        for (int64_t d = 0; d < dh; ++d) o[d] += w * vj[d];
      }
    }
  }
  return be.upload(out);
}

Tensor Backend::attention_impl(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                               bool causal) {
  return attention_on_host(*this, q, k, v, T, heads, scale, causal);
}

void Backend::copy_rows_impl(Tensor& dst, int64_t row0, const Tensor& src) {
  MG_CHECK(dst.device == Device::CPU && src.device == Device::CPU, "copy_rows: the ", name(),
           " backend has no in-place row copy yet");
  const size_t row_bytes = dst.nbytes() / size_t(dst.dim(0));
  std::memcpy(static_cast<char*>(dst.data) + row0 * row_bytes, src.data, src.nbytes());
}

}  // namespace mg

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/sample.h"

namespace mg {

Tensor Backend::attention_rows_impl(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads,
                                    float scale, bool causal) {
  const int64_t R = q.dim(0), S = q.dim(1), D = k.dim(2);
  // One attention() per row on views of the batched tensors: device backends keep everything on
  // the device, at R launches instead of one.
  Tensor out = alloc(DType::F32, {R * S, D});
  for (int64_t r = 0; r < R; ++r) {
    Tensor qr = q.slice0(r, 1).reshape({S, q.dim(2)});
    Tensor kr = k.slice0(r, 1).reshape({k.dim(1), k.dim(2)}), vr = v.slice0(r, 1).reshape({v.dim(1), v.dim(2)});
    copy_rows(out, r * S, attention(qr, kr, vr, T, heads, scale, causal));
  }
  return out.reshape({R, S, D});
}

void Backend::attention_rows_batch_impl(Tensor& out, const std::vector<AttentionRowsJob>& jobs, int heads,
                                        float scale, bool causal) {
  for (const AttentionRowsJob& a : jobs) {
    const int64_t rows = a.q.dim(0) * a.q.dim(1);
    copy_rows(out, a.out_row0, attention_rows(a.q, a.k, a.v, a.T, heads, scale, causal).reshape({rows, out.dim(1)}));
  }
}

void Backend::write_kv_impl(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0) {
  MG_CHECK(cache.device == Device::CPU && src.device == Device::CPU, "write_kv: the ", name(),
           " backend has no in-place cache write");
  // The host reference: a half cache rounded to nearest even, as the casts (kernels/cpu/kv_cache.cpp).
  cpu::write_kv(cache, pos, src, col0);
}

Tensor Backend::sample_tokens_impl(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                                   const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided) {
  // The host reference; on the CPU backend download/upload are free.
  Tensor g;
  Tensor ids = cpu::sample_tokens(download(logits), cfg, guidance_scale, p, seeds, step, guided ? &g : nullptr);
  if (guided) *guided = upload(g);
  return upload(ids);
}

}  // namespace mg

namespace mg {

Tensor Backend::linear_fused_impl(const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse,
                                  const Shape&) {
  Tensor y = linear(x, w, b);
  if (fuse.gelu) y = gelu(y);
  if (fuse.residual) y = add(*fuse.residual, y);
  return y;
}

Tensor conv1d_composed(Backend& be, const Tensor& x, const Tensor& w, const Tensor* b, int stride, int dilation,
                       const Conv1dFusion& fuse) {
  Tensor in = fuse.elu ? be.elu(x, fuse.elu_alpha) : x;
  if (fuse.pad_left != 0 || fuse.pad_right != 0)
    in = be.pad1d(in, fuse.pad_left, fuse.pad_right, fuse.pad_mode, fuse.pad_value);
  Tensor y = be.conv1d(in, w, b, stride, dilation);
  if (fuse.residual) y = be.add(*fuse.residual, y);
  return y;
}

Tensor conv_transpose1d_composed(Backend& be, const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                                 const ConvTranspose1dFusion& fuse) {
  Tensor y = be.conv_transpose1d(fuse.elu ? be.elu(x, fuse.elu_alpha) : x, w, b, stride);
  if (fuse.trim_left == 0 && fuse.trim_right == 0) return y;
  return be.narrow_last(y, fuse.trim_left, y.cols() - fuse.trim_left - fuse.trim_right);
}

}  // namespace mg
