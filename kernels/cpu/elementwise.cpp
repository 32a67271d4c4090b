// Elementwise ops over f32 tensors. add/mul broadcast b over the leading dims of a when b's shape
// is a suffix of a's (a bias [D] over [T, D], a row [T, D] over [B, T, D]); leading 1s of b are
// ignored. The loops are plain so that the compiler vectorises them; they are memory bound, so
// hand-written AVX2 would not pay here.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

namespace {

constexpr int64_t kMinChunk = 1 << 14;  // elements per thread below which splitting costs more than it saves

template <typename F>
Tensor binary(const Tensor& a, const Tensor& b, const char* op, const Exec& ex, F f) {
  // b's shape is a suffix of a's (the contract, kernels/op_checks.h): b repeats every b.numel() values.
  const int64_t inner = b.numel();
  Tensor out = Tensor::empty(DType::F32, a.shape);
  const int64_t n = a.numel();
  if (n == 0) return out;
  const float* ap = a.f32();
  const float* bp = b.f32();
  float* op_ = out.f32();
  if (inner == n) {
    detail::parallel_for(ex, n, kMinChunk, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) op_[i] = f(ap[i], bp[i]);
    });
    return out;
  }
  const int64_t outer = n / inner;
  detail::parallel_for(ex, outer, std::max<int64_t>(1, kMinChunk / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* ar = ap + r * inner;
      float* orow = op_ + r * inner;
      for (int64_t i = 0; i < inner; ++i) orow[i] = f(ar[i], bp[i]);
    }
  });
  return out;
}

template <typename F>
Tensor unary(const Tensor& x, const char* op, const Exec& ex, F f) {
  Tensor out = Tensor::empty(DType::F32, x.shape);
  const float* xp = x.f32();
  float* yp = out.f32();
  detail::parallel_for(ex, x.numel(), kMinChunk, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) yp[i] = f(xp[i]);
  });
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, const Exec& ex) {
  return binary(a, b, "add", ex, [](float u, float v) { return u + v; });
}

void add_inplace(const Tensor& a, Tensor& y, const Exec& ex) {
  const float* ap = a.f32();
  float* yp = y.f32();
  detail::parallel_for(ex, y.numel(), kMinChunk, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) yp[i] = ap[i] + yp[i];
  });
}

Tensor mul(const Tensor& a, const Tensor& b, const Exec& ex) {
  return binary(a, b, "mul", ex, [](float u, float v) { return u * v; });
}

Tensor scale(const Tensor& a, float s, const Exec& ex) {
  return unary(a, "scale", ex, [s](float v) { return v * s; });
}

Tensor relu(const Tensor& x, const Exec& ex) {
  return unary(x, "relu", ex, [](float v) { return v > 0.0f ? v : 0.0f; });
}

}  // namespace mg::cpu
