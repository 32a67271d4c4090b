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

// QuantLayout::Interleaved16 (kernels/cpu/linear_quant_x16.cpp reads it): rows in groups of 16,
// each group's blocks in order; per block, the 16 rows' f16 scales (32 bytes), then the 16 rows'
// values in chunks of 64 bytes, chunk c holding 4 bytes of each row (row r at bytes 4r..4r+3):
//   q8_0: 8 chunks, chunk c = values 4c..4c+3 of each row, each stored as q + 128 (unsigned);
//   q4_0: 4 chunks, chunk c = nibble bytes 4c..4c+3 of each row as stored (values 4c.. and 16+4c..).
// A 512-bit register of a chunk holds 4 consecutive values of 16 rows, one row per 32-bit lane:
// what vpdpbusd needs to make 16 rows' partial dot products at once. A group takes the bytes of its
// 16 rows (34 x 16 = 32 + 512; 18 x 16 = 32 + 256); the last N % 16 rows stay in row order at the end.
// Both take w by value: when it holds the only reference to its buffer (a temporary, or moved in)
// they convert that buffer in place, else they copy. Fewer than 16 rows: w as it is. Given an
// arena (kernels/weight_arena.h: 2 MiB pages, which a decode step streams faster), interleave
// always copies into it.
class WeightArena;
Tensor interleave_rows16(Tensor w, WeightArena* arena = nullptr);  // [N, K] Q8_0/Q4_0 rows -> Interleaved16
Tensor deinterleave_rows16(Tensor w); // and back

// Activations quantized for the integer dot products: each row of K values as K / 32 blocks of
// int8 q (q in [-127, 127]) with an f32 scale d = max|x| / 127 (0 for an all-zero block).
void quantize_activations(const float* x, int64_t k, int8_t* q, float* d);
// The same in plain C++, one value at a time: the reference that quantize_activations (SIMD where
// the CPU has it) equals bit for bit.
void quantize_activations_portable(const float* x, int64_t k, int8_t* q, float* d);

}  // namespace mg
