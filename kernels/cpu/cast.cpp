// cast: between f32, f16 and bf16 (round to nearest even, as torch's .half() / .bfloat16()), and
// between i32 and i64. Float <-> integer casts are not an op any model needs: the contract
// (kernels/op_checks.h) refuses them.
#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

namespace {

uint16_t f32_to_half(DType to, float v) { return to == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v); }

}  // namespace

Tensor cast(const Tensor& x, DType to, const Exec& ex) {
  const DType from = x.dtype;
  if (from == to) return x.clone();
  Tensor y = Tensor::empty(to, x.shape);
  const int64_t n = x.numel();
  constexpr int64_t kChunk = 1 << 14;
  detail::parallel_for(ex, n, kChunk, [&](int64_t i0, int64_t i1) {
    if (from == DType::I32) {
      for (int64_t i = i0; i < i1; ++i) y.ptr<int64_t>()[i] = x.ptr<int32_t>()[i];
    } else if (from == DType::I64) {
      for (int64_t i = i0; i < i1; ++i) {
        int64_t v = x.ptr<int64_t>()[i];
        MG_CHECK(v >= INT32_MIN && v <= INT32_MAX, "cast i64 -> i32: value ", v, " at index ", i,
                 " does not fit");
        y.ptr<int32_t>()[i] = int32_t(v);
      }
    } else if (from == DType::F32) {
      for (int64_t i = i0; i < i1; ++i) y.ptr<uint16_t>()[i] = f32_to_half(to, x.ptr<float>()[i]);
    } else if (to == DType::F32) {
      detail::half_to_f32(ex, from, x.ptr<uint16_t>() + i0, y.ptr<float>() + i0, i1 - i0);
    } else {  // f16 <-> bf16 through f32, which holds both exactly
      for (int64_t i = i0; i < i1; ++i) {
        uint16_t h = x.ptr<uint16_t>()[i];
        float v = from == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
        y.ptr<uint16_t>()[i] = f32_to_half(to, v);
      }
    }
  });
  return y;
}

}  // namespace mg::cpu
