#include "kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace mg {

void check_quantizable(DType t, const Shape& shape) {
  MG_CHECK(!shape.empty() && shape.back() > 0 && shape.back() % kQuantBlock == 0, dtype_name(t),
           " stores rows in blocks of ", kQuantBlock, " values, but shape ", shape_str(shape),
           " has rows of ", shape.empty() ? 0 : shape.back(),
           " (only tensors whose last dim is a positive multiple of 32 can be quantized; keep this one in f32/f16)");
}

namespace {

// The f16 scale for a block and the reciprocal used to quantize with it (0 for a zero block).
void block_scale(float d, uint16_t* d16, float* inv) {
  *d16 = f32_to_f16(d);
  const float dr = f16_to_f32(*d16);
  *inv = dr != 0.0f ? 1.0f / dr : 0.0f;
}

void quantize_q8_0(const float* x, BlockQ8_0* b, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, x += kQuantBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    float inv = 0.0f;
    block_scale(amax / 127.0f, &b[i].d, &inv);
    for (int j = 0; j < kQuantBlock; ++j)
      b[i].q[j] = int8_t(std::clamp(std::nearbyint(x[j] * inv), -127.0f, 127.0f));
  }
}

// As ggml's q4_0: the value of largest magnitude maps to -8 exactly, so its sign picks the scale's
// and the 16 levels cover [-8d, 7d] with that extreme on the wide side.
void quantize_q4_0(const float* x, BlockQ4_0* b, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, x += kQuantBlock) {
    float amax = 0.0f, vmax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        vmax = x[j];
      }
    float inv = 0.0f;
    block_scale(vmax / -8.0f, &b[i].d, &inv);
    auto nib = [&](float v) { return uint8_t(std::clamp(std::nearbyint(v * inv) + 8.0f, 0.0f, 15.0f)); };
    for (int j = 0; j < 16; ++j) b[i].q[j] = uint8_t(nib(x[j]) | (nib(x[j + 16]) << 4));
  }
}

}  // namespace

void quantize_row(DType t, const float* x, void* blocks, int64_t n) {
  check_quantizable(t, {n});
  if (t == DType::Q8_0) return quantize_q8_0(x, static_cast<BlockQ8_0*>(blocks), n / kQuantBlock);
  MG_CHECK(t == DType::Q4_0, "quantize_row: ", dtype_name(t), " is not a quantized dtype");
  quantize_q4_0(x, static_cast<BlockQ4_0*>(blocks), n / kQuantBlock);
}

void dequantize_row(DType t, const void* blocks, float* y, int64_t n) {
  check_quantizable(t, {n});
  if (t == DType::Q8_0) {
    const BlockQ8_0* b = static_cast<const BlockQ8_0*>(blocks);
    for (int64_t i = 0; i < n / kQuantBlock; ++i) {
      const float d = f16_to_f32(b[i].d);
      for (int j = 0; j < kQuantBlock; ++j) y[i * kQuantBlock + j] = d * float(b[i].q[j]);
    }
    return;
  }
  MG_CHECK(t == DType::Q4_0, "dequantize_row: ", dtype_name(t), " is not a quantized dtype");
  const BlockQ4_0* b = static_cast<const BlockQ4_0*>(blocks);
  for (int64_t i = 0; i < n / kQuantBlock; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < 16; ++j) {
      y[i * kQuantBlock + j] = d * float(int(b[i].q[j] & 15) - 8);
      y[i * kQuantBlock + j + 16] = d * float(int(b[i].q[j] >> 4) - 8);
    }
  }
}

Tensor quantize(const Tensor& w, DType t) {
  MG_CHECK(w.device == Device::CPU, "quantize: the tensor ", shape_str(w.shape), " must be on the CPU");
  MG_CHECK(w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16, "quantize: ",
           dtype_name(w.dtype), " tensor ", shape_str(w.shape), " is not f32, f16 or bf16");
  check_quantizable(t, w.shape);
  Tensor out = Tensor::empty(t, w.shape);
  const int64_t k = w.cols(), rows = w.rows();
  const size_t row_bytes = dtype_nbytes(t, k);
  auto quantize_rows = [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = r0; r < r1; ++r) {
      const float* src = nullptr;
      if (w.dtype == DType::F32) {
        src = w.ptr<float>() + r * k;
      } else {
        const uint16_t* h = w.ptr<uint16_t>() + r * k;
        for (int64_t j = 0; j < k; ++j) row[j] = w.dtype == DType::F16 ? f16_to_f32(h[j]) : bf16_to_f32(h[j]);
        src = row.data();
      }
      quantize_row(t, src, static_cast<char*>(out.data) + size_t(r) * row_bytes, k);
    }
  };
  // Rows are independent, so a large weight (a model load converts ~360 M values) is split over a
  // few threads; the bytes are the same for any split.
  const int64_t threads = rows * k >= (int64_t(1) << 20)
                              ? std::min<int64_t>({8, rows, std::max(1u, std::thread::hardware_concurrency())})
                              : 1;
  std::vector<std::thread> pool;
  for (int64_t i = 1; i < threads; ++i) pool.emplace_back(quantize_rows, rows * i / threads, rows * (i + 1) / threads);
  quantize_rows(0, rows / threads);
  for (std::thread& th : pool) th.join();
  return out;
}

namespace {

// One row; inlined into both entry points below, so std::nearbyint becomes one roundss where the
// CPU has SSE4.1 instead of a library call per value (the same rounding: current mode, no
// exceptions).
inline __attribute__((always_inline)) void quantize_activations_row(const float* x, int64_t k, int8_t* q, float* d) {
  for (int64_t i = 0; i < k / kQuantBlock; ++i, x += kQuantBlock, q += kQuantBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    d[i] = amax / 127.0f;
    const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) q[j] = int8_t(std::clamp(std::nearbyint(x[j] * inv), -127.0f, 127.0f));
  }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("sse4.1"))) void quantize_activations_sse41(const float* x, int64_t k, int8_t* q, float* d) {
  quantize_activations_row(x, k, q, d);
}

// The same values 8 at a time (a decode step quantizes a few KB per linear, on one thread while
// the others wait: scalar, [2, 4096] took 8.6 us beside the linear's 85). Bit for bit the row
// above, extremes included: the block's max |x| is exact in any order (a NaN is skipped, as
// std::max skips it when it comes second), d and 127 / amax are the same scalar divisions (inf
// when amax is tiny), x * inv the same multiply, vroundps rounds in the current mode as nearbyint
// does, the clamp keeps a NaN as std::clamp does (operands in that order) and a NaN then becomes
// 0, as the scalar float -> int8 conversion makes it (the low byte of 0x80000000).
__attribute__((target("avx2"))) void quantize_activations_avx2(const float* x, int64_t k, int8_t* q, float* d) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  for (int64_t i = 0; i < k / kQuantBlock; ++i, x += kQuantBlock, q += kQuantBlock) {
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 8 * j);
      m = _mm256_max_ps(_mm256_and_ps(v[j], abs_mask), m);  // m when |x| is NaN
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    d[i] = amax / 127.0f;
    const __m256 inv = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    __m256i r[4];
    for (int j = 0; j < 4; ++j) {
      const __m256 n = _mm256_round_ps(_mm256_mul_ps(v[j], inv), _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
      const __m256 c = _mm256_max_ps(lo, _mm256_min_ps(hi, n));  // NaN stays NaN
      r[j] = _mm256_cvtps_epi32(_mm256_and_ps(c, _mm256_cmp_ps(c, c, _CMP_ORD_Q)));
    }
    // packs work per 128-bit lane: bytes come out as 0-3 8-11 | 4-7 12-15 (in units of 4 values).
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q),
                        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
}
#endif

void quantize_activations_generic(const float* x, int64_t k, int8_t* q, float* d) {
  quantize_activations_row(x, k, q, d);
}

}  // namespace

void quantize_activations(const float* x, int64_t k, int8_t* q, float* d) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool kHasAvx2 = __builtin_cpu_supports("avx2");
  if (kHasAvx2) return quantize_activations_avx2(x, k, q, d);
  static const bool kHasSse41 = __builtin_cpu_supports("sse4.1");
  if (kHasSse41) return quantize_activations_sse41(x, k, q, d);
#endif
  quantize_activations_generic(x, k, q, d);
}

void quantize_activations_portable(const float* x, int64_t k, int8_t* q, float* d) {
  quantize_activations_generic(x, k, q, d);
}

}  // namespace mg
