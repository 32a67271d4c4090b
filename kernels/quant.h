// Block-quantized weights (DType::Q8_0, DType::Q4_0): the formats, their reference quantize and
// dequantize functions, and the quantized view of activations that the integer dot products use.
// Layouts (ggml's, so the numbers and the experience carry over; docs/QUANTIZATION.md):
//   q8_0: 32 values per block, 34 bytes: f16 scale d, then 32 int8 q; value = d * q, q in [-127, 127].
//   q4_0: 32 values per block, 18 bytes: f16 scale d, then 16 bytes of nibbles n; byte j holds value j
//         in its low nibble and value j + 16 in its high one; value = d * (n - 8), n in [0, 15].
// A row of K values is K / 32 consecutive blocks; K must be a multiple of 32 (refused otherwise).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/tensor.h"

namespace mg {

constexpr int64_t kQuantBlock = 32;
constexpr size_t kQ8BlockBytes = 34;
constexpr size_t kQ4BlockBytes = 18;

struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t q[32];
};
struct BlockQ4_0 {
  uint16_t d;  // f16 scale
  uint8_t q[16];
};
static_assert(sizeof(BlockQ8_0) == kQ8BlockBytes && sizeof(BlockQ4_0) == kQ4BlockBytes, "block layouts");

// Throws mg::Error unless a tensor of `shape` can be stored as `t`: at least one dim, the last one
// a positive multiple of 32.
void check_quantizable(DType t, const Shape& shape);

// n values (a multiple of 32) <-> n / 32 blocks of dtype t (Q8_0 or Q4_0). Round to nearest; the
// scale is chosen, rounded to f16 first, and the values quantized with that rounded scale.
void quantize_row(DType t, const float* x, void* blocks, int64_t n);
void dequantize_row(DType t, const void* blocks, float* y, int64_t n);

// A host tensor of any float dtype (last dim a multiple of 32) quantized to t (Q8_0 or Q4_0).
Tensor quantize(const Tensor& w, DType t);

// Activations quantized for the integer dot products: each row of K values as K / 32 blocks of
// int8 q (q in [-127, 127]) with an f32 scale d = max|x| / 127 (0 for an all-zero block).
void quantize_activations(const float* x, int64_t k, int8_t* q, float* d);

}  // namespace mg
