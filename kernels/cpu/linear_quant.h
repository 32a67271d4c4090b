// The quantized linear's pieces shared by its files (not part of the op API):
//   linear_quant.cpp  the driver: quantizes the activations, splits the output columns over the pool;
//   linear_q8.cpp     q8_0 weight rows . int8 activations (portable, AVX2, AVX-512 VNNI);
//   linear_q4.cpp     q4_0 weight rows . int8 activations (the same three paths);
//   linear_quant_x16.cpp  either format interleaved by 16 rows (the CPU backend's AVX-512 layout).
//
// Arithmetic, the same on every path and layout so that all give the same bits: per 32-value
// block the 32 integer products are summed exactly in int32, the sum is converted to f32 and
// fused-multiply-added with the block's scale product (weight scale * activation scale, one f32
// multiply) into the output's one f32 accumulator, blocks in order. An output depends only on its
// own activation row and weight row: never on the batch size, the thread count or the layout.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/cpu/cpu_features.h"
#include "kernels/quant.h"

namespace mg::cpu::detail {

// Activation rows quantized to int8 blocks (kernels/quant.h quantize_activations).
struct QuantizedRows {
  const int8_t* q;  // [m, k]
  const float* d;   // [m, k / 32]
  int64_t m, k;
};

// The activations block by block for the interleaved kernels (linear_quant_x16.cpp): per block
// the rows' 32 int8 values side by side, then per row the offset correction (-offset x the block's
// sum) and the scale: one stream beside the weights'. Built once per call (pack_x16), then read by
// every thread. Measured (2 rows, 1 thread, weights in L3): reading the row-major buffers instead,
// [1024, 4096] (4 KB activation rows beside 37 KB weight groups) took 108-127 us, packed 89-93 us;
// [4096, 1024] the same either way (63-75 us). Two weight groups per pass was 2x slower: one
// stream is best.
struct ActivationBlocks {
  struct Record {
    const int8_t* q;      // [rows][32]
    const int32_t* corr;  // [rows]
    const float* d;       // [rows]
  };
  Record at(int64_t b) const {
    const uint8_t* rec = bytes.get() + size_t(b) * stride;
    return {reinterpret_cast<const int8_t*>(rec), reinterpret_cast<const int32_t*>(rec + rows * kQuantBlock),
            reinterpret_cast<const float*>(rec + rows * (kQuantBlock + 4))};
  }
  int64_t blocks = 0, rows = 0;
  size_t stride = 0;
  std::unique_ptr<uint8_t[]> bytes;
};

// y[r * ldy + n] for every activation row r and weight rows n in [n0, n1).
void gemv_q8_0(KernelPath p, const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1);
void gemv_q4_0(KernelPath p, const QuantizedRows& x, const void* w, float* y, int64_t ldy, int64_t n0, int64_t n1);
// The same over weights interleaved by 16 rows (QuantLayout::Interleaved16; linear_quant_x16.cpp),
// groups [g0, g1) (rows 16 g0 .. 16 g1): AVX-512 VNNI, else the portable arithmetic; same bits.
// a: pack_x16(p, t, x), made once per call and shared by the threads (empty off the AVX-512 path).
ActivationBlocks pack_x16(KernelPath p, DType t, const QuantizedRows& x);
void gemv_x16(KernelPath p, DType t, const QuantizedRows& x, const ActivationBlocks& a, const void* w, float* y,
              int64_t ldy, int64_t g0, int64_t g1);

}  // namespace mg::cpu::detail
