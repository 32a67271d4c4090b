// write_kv: new positions into a KV cache (Backend::write_kv's contract, kernels/ops.h), for the
// CPU backend and as the host default of kernels/backend_fallbacks.cpp. Narrowing to a half cache
// one value at a time through f32_to_f16 (a call with several branches per value) cost ~0.5 ms of
// a musicgen-small decode step on one core (24 layers x K and V x 2 CFG rows x 1024 values). Here
// F16C converts 8 values per instruction, rounding to nearest even as f32_to_f16 does (subnormals and
// overflow to infinity included); a NaN becomes f32_to_f16's quiet NaN (sign | 0x7e00) rather than
// the instruction's payload-keeping one, so the cache holds the same bits either way.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

namespace {

__attribute__((target("avx2,f16c"))) void narrow_f16_avx2(const float* f, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(f + i);
    __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    if (!_mm256_testz_ps(nan, nan)) {
      // f32_to_f16's NaN: the sign and 0x7e00, whatever the payload.
      const __m256i sign = _mm256_srli_epi32(_mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(int(0x80000000u))), 16);
      const __m256i qnan = _mm256_or_si256(sign, _mm256_set1_epi32(0x7e00));
      const __m128i qnan16 = _mm_packus_epi32(_mm256_castsi256_si128(qnan), _mm256_extracti128_si256(qnan, 1));
      const __m256i m32 = _mm256_castps_si256(nan);
      const __m128i m16 = _mm_packs_epi32(_mm256_castsi256_si128(m32), _mm256_extracti128_si256(m32, 1));
      h = _mm_blendv_epi8(h, qnan16, m16);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), h);
  }
  for (; i < n; ++i) d[i] = f32_to_f16(f[i]);
}

void narrow(const Exec& ex, DType to, const float* f, uint16_t* d, int64_t n) {
  if (to == DType::F16 && ex.simd()) return narrow_f16_avx2(f, d, n);
  if (to == DType::F16) {
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(f[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(f[i]);
  }
}

}  // namespace

void write_kv(Tensor& cache, int64_t pos, const Tensor& src, int64_t col0, const Exec& ex) {
  const int64_t R = cache.dim(0), cap = cache.dim(1), D = cache.dim(2), S = src.dim(0) / R, W = src.dim(1);
  const bool narrowing = src.dtype == DType::F32 && (cache.dtype == DType::F16 || cache.dtype == DType::BF16);
  if (narrowing) {
    uint16_t* dst = static_cast<uint16_t*>(cache.data);
    const float* from = src.ptr<float>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s)
        narrow(ex, cache.dtype, from + (r * S + s) * W + col0, dst + (r * cap + pos + s) * D, D);
    return;
  }
  const size_t es = dtype_size(cache.dtype);
  char* dst = static_cast<char*>(cache.data);
  const char* from = static_cast<const char*>(src.data);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < S; ++s)
      std::memcpy(dst + ((r * cap + pos + s) * D) * es, from + ((r * S + s) * W + col0) * es, size_t(D) * es);
}

}  // namespace mg::cpu
