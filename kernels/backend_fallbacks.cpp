// Default implementations of the Backend ops that have a host version good enough until a
// backend brings its own kernel. On the CPU backend download/upload are free, so these ARE the
// CPU reference; a device backend pays two copies until it overrides them.
#include <cmath>
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

namespace mg {

Tensor Backend::attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                          bool causal) {
  MG_CHECK(q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2 && q.dim(1) >= k.dim(1) && k.dim(1) == v.dim(1) &&
               heads > 0 && k.dim(1) % heads == 0,
           "attention: expected q[S, >= H*dh], k/v[T, H*dh] with H = ", heads, ", got ", shape_str(q.shape), ", ",
           shape_str(k.shape), ", ", shape_str(v.shape));
  MG_CHECK(T >= q.dim(0) || !causal, "attention: ", q.dim(0), " causal queries need at least as many keys, got ", T);
  MG_CHECK(T <= k.dim(0) && T <= v.dim(0) && T >= 1, "attention: T = ", T, " keys but k/v hold ", k.dim(0), "/", v.dim(0));
  const int64_t S = q.dim(0), D = k.dim(1), dh = D / heads, Wq = q.dim(1);
  Tensor hq = download(q), hk = download(k.slice0(0, T)), hv = download(v.slice0(0, T));
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
  return upload(out);
}

void Backend::copy_rows(Tensor& dst, int64_t row0, const Tensor& src) {
  MG_CHECK(dst.dtype == src.dtype && dst.ndim() >= 1 && src.ndim() >= 1 && row0 >= 0 &&
               row0 + src.dim(0) <= dst.dim(0) && src.numel() == src.dim(0) * (dst.numel() / std::max<int64_t>(1, dst.dim(0))),
           "copy_rows: cannot put ", shape_str(src.shape), " at row ", row0, " of ", shape_str(dst.shape));
  MG_CHECK(dst.device == Device::CPU && src.device == Device::CPU, "copy_rows: the ", name(),
           " backend has no in-place row copy yet");
  const size_t row_bytes = dst.nbytes() / size_t(dst.dim(0));
  std::memcpy(static_cast<char*>(dst.data) + row0 * row_bytes, src.data, src.nbytes());
}

}  // namespace mg

#include "kernels/cpu/sample.h"

namespace mg {

Tensor Backend::attention_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t T, int heads, float scale,
                               bool causal) {
  MG_CHECK(q.ndim() == 3 && k.ndim() == 3 && v.ndim() == 3 && k.dim(0) == q.dim(0) && v.dim(0) == q.dim(0),
           "attention_rows: expected q[R, S, >= D], k/v[R, T, D], got ", shape_str(q.shape), ", ", shape_str(k.shape),
           ", ", shape_str(v.shape));
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

void Backend::write_kv(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0) {
  const bool narrowing = src.dtype == DType::F32 && (cache.dtype == DType::F16 || cache.dtype == DType::BF16);
  MG_CHECK(cache.ndim() == 3 && src.ndim() == 2 && (cache.dtype == src.dtype || narrowing) && cache.dim(0) >= 1 &&
               src.dim(0) % cache.dim(0) == 0 && col0 >= 0 && col0 + cache.dim(2) <= src.dim(1),
           "write_kv: cannot put columns ", col0, ".. of ", shape_str(src.shape), " into the cache ",
           shape_str(cache.shape));
  const int64_t R = cache.dim(0), cap = cache.dim(1), D = cache.dim(2), S = src.dim(0) / R, W = src.dim(1);
  MG_CHECK(pos >= 0 && pos + S <= cap, "write_kv: positions ", pos, "..", pos + S, " exceed the cache of ", cap);
  MG_CHECK(cache.device == Device::CPU && src.device == Device::CPU, "write_kv: the ", name(),
           " backend has no in-place cache write");
  if (narrowing) {  // a half cache: rounded to nearest even, as the casts
    uint16_t* dst = static_cast<uint16_t*>(cache.data);
    const float* from = src.ptr<float>();
    const bool f16 = cache.dtype == DType::F16;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) {
        uint16_t* d = dst + (r * cap + pos + s) * D;
        const float* f = from + (r * S + s) * W + col0;
        for (int64_t i = 0; i < D; ++i) d[i] = f16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
      }
    return;
  }
  const size_t es = dtype_size(cache.dtype);
  char* dst = static_cast<char*>(cache.data);
  const char* from = static_cast<const char*>(src.data);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < S; ++s)
      std::memcpy(dst + ((r * cap + pos + s) * D) * es, from + ((r * S + s) * W + col0) * es, size_t(D) * es);
}

Tensor Backend::sample_tokens(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                              const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided) {
  // The host reference; on the CPU backend download/upload are free.
  Tensor g;
  Tensor ids = cpu::sample_tokens(download(logits), cfg, guidance_scale, p, seeds, step, guided ? &g : nullptr);
  if (guided) *guided = upload(g);
  return upload(ids);
}

}  // namespace mg

namespace mg {

Tensor Backend::linear_fused(const Tensor& x, const Tensor& w, const Tensor* b, const LinearFusion& fuse) {
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
  if (fuse.residual) {
    MG_CHECK(fuse.residual->shape == y.shape, "conv1d: residual ", shape_str(fuse.residual->shape),
             " does not match the output ", shape_str(y.shape));
    y = be.add(*fuse.residual, y);
  }
  return y;
}

Tensor conv_transpose1d_composed(Backend& be, const Tensor& x, const Tensor& w, const Tensor* b, int stride,
                                 const ConvTranspose1dFusion& fuse) {
  Tensor y = be.conv_transpose1d(fuse.elu ? be.elu(x, fuse.elu_alpha) : x, w, b, stride);
  if (fuse.trim_left == 0 && fuse.trim_right == 0) return y;
  MG_CHECK(fuse.trim_left >= 0 && fuse.trim_right >= 0 && fuse.trim_left + fuse.trim_right <= y.cols(),
           "conv_transpose1d: trim (", fuse.trim_left, ", ", fuse.trim_right, ") of an output of length ", y.cols());
  return be.narrow_last(y, fuse.trim_left, y.cols() - fuse.trim_left - fuse.trim_right);
}

}  // namespace mg
