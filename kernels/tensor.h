// The tensor type: a typed, shaped, contiguous (row-major) block of memory on the CPU or a CUDA
// device. A tensor never copies on its own: it either owns its memory through `owner` or is a view
// that keeps another owner alive (a memory-mapped weight file, a larger tensor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kernels/common.h"

namespace mg {

// Q8_0 and Q4_0 are block-quantized weights (kernels/quant.h, docs/QUANTIZATION.md): a tensor of
// logical shape [N, K] holds N rows of K / 32 blocks; its last dim must be a multiple of 32.
enum class DType { F32, F16, BF16, I32, I64, Q8_0, Q4_0 };
enum class Device { CPU, CUDA };
// How a block-quantized tensor's blocks are ordered in memory (kernels/quant.h). Rows: row after
// row, as stored in files and read by every backend. Interleaved16: the CPU backend's repacked
// order for its AVX-512 kernels (made at load by Backend::upload_linear_weight; quant.h has it).
enum class QuantLayout : uint8_t { Rows, Interleaved16 };

size_t dtype_size(DType t);        // bytes per element; 0 for the block-quantized dtypes
const char* dtype_name(DType t);   // "f32", "f16", "bf16", "i32", "i64", "q8_0", "q4_0"
bool dtype_is_quantized(DType t);  // Q8_0, Q4_0
// Bytes of n elements (n a multiple of 32 for the block-quantized dtypes).
size_t dtype_nbytes(DType t, int64_t n);
const char* device_name(Device d); // "cpu", "cuda"

// Scalar conversions used by casts and by f16/bf16 weight reads (round-to-nearest-even, as PyTorch).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 4]"

struct Tensor {
  DType dtype = DType::F32;
  Device device = Device::CPU;
  Shape shape;                   // at most 4 dims; empty shape = scalar (numel 1)
  void* data = nullptr;          // first element
  std::shared_ptr<void> owner;   // keeps `data` alive
  QuantLayout layout = QuantLayout::Rows;  // block-quantized dtypes only

  bool defined() const { return data != nullptr; }
  int ndim() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const;      // negative i counts from the end
  int64_t numel() const;
  size_t nbytes() const { return dtype_nbytes(dtype, numel()); }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }  // size of the last dim
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); } // product of the others

  template <typename T> T* ptr() { return static_cast<T*>(data); }
  template <typename T> const T* ptr() const { return static_cast<const T*>(data); }
  float* f32();                  // checks dtype == F32 and device == CPU
  const float* f32() const;

  // Views sharing memory (no copy).
  Tensor reshape(const Shape& s) const;            // same numel; one dim may be -1
  Tensor slice0(int64_t start, int64_t len) const; // rows [start, start+len) of dim 0

  // Host tensors.
  static Tensor empty(DType t, const Shape& s);            // uninitialised CPU memory
  static Tensor zeros(DType t, const Shape& s);
  static Tensor from_vector(const std::vector<float>& v, const Shape& s);
  static Tensor view(void* data, DType t, const Shape& s, Device d, std::shared_ptr<void> owner);
  Tensor clone() const;                                    // deep copy (CPU only)
  Tensor as_f32() const;  // CPU: itself when already f32, else an f32 copy (f16/bf16/int/quantized)
  std::vector<float> to_vector() const;  // any float or quantized dtype, CPU only, as f32
};

// Host tensors [n_i, C] stacked along dim 0 into a new host tensor (f32 when their dtypes differ):
// fused projections such as q|k|v.
Tensor concat_rows(std::vector<Tensor> parts);

}  // namespace mg
