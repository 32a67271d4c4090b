#include "kernels/tensor.h"

#include "kernels/host_buffer_cache.h"
#include "kernels/quant.h"

#include <cstdlib>
#include <cstring>

namespace mg {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::Q8_0:
    case DType::Q4_0: return 0;
  }
  return 0;
}

bool dtype_is_quantized(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

size_t dtype_nbytes(DType t, int64_t n) {
  if (t == DType::Q8_0) return size_t(n / kQuantBlock) * kQ8BlockBytes;
  if (t == DType::Q4_0) return size_t(n / kQuantBlock) * kQ4BlockBytes;
  return size_t(n) * dtype_size(t);
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_0: return "q4_0";
  }
  return "?";
}

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

// IEEE half <-> float, bit-exact with PyTorch (round to nearest even, subnormals kept).
float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) { mant <<= 1; --exp; }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return uint16_t(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));  // inf/nan
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520: overflow to inf
  if (absx < 0x38800000u) {  // result is subnormal or zero
    if (absx < 0x33000000u) return uint16_t(sign);  // < 2^-25 rounds to zero
    uint32_t e = absx >> 23;
    uint32_t m = (absx & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 113 - e + 13
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = absx - 0x38000000u;  // rebias exponent 127 -> 15
  uint32_t lower = r & 0x1fff;
  r >>= 13;
  if (lower > 0x1000 || (lower == 0x1000 && (r & 1))) ++r;
  return uint16_t(sign | r);
}

float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);  // quiet NaN
  uint32_t rounding = 0x7fff + ((x >> 16) & 1);
  return uint16_t((x + rounding) >> 16);
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  MG_CHECK(j >= 0 && j < n, "tensor dim ", i, " out of range for shape ", shape_str(shape));
  return shape[j];
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

float* Tensor::f32() {
  MG_CHECK(dtype == DType::F32 && device == Device::CPU, "expected a CPU f32 tensor, got ",
           device_name(device), " ", dtype_name(dtype));
  return static_cast<float*>(data);
}

const float* Tensor::f32() const { return const_cast<Tensor*>(this)->f32(); }

Tensor Tensor::reshape(const Shape& s) const {
  Shape out = s;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      MG_CHECK(infer < 0, "reshape ", shape_str(shape), " -> ", shape_str(s), ": more than one -1");
      infer = int(i);
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) {
    MG_CHECK(known > 0 && numel() % known == 0, "reshape ", shape_str(shape), " -> ", shape_str(s),
             ": sizes do not divide");
    out[infer] = numel() / known;
    known *= out[infer];
  }
  MG_CHECK(known == numel(), "reshape ", shape_str(shape), " -> ", shape_str(s), ": element count differs");
  MG_CHECK(out.size() <= 4, "tensors have at most 4 dims, asked for ", shape_str(s));
  Tensor t = *this;
  t.shape = out;
  return t;
}

Tensor Tensor::slice0(int64_t start, int64_t len) const {
  MG_CHECK(ndim() >= 1 && start >= 0 && len >= 0 && start + len <= shape[0], "slice0(", start, ", ", len,
           ") out of range for shape ", shape_str(shape));
  // Interleaved16 keeps 16 rows' blocks together: only whole groups (or up to the end) are rows.
  MG_CHECK(layout == QuantLayout::Rows || (start % 16 == 0 && (len % 16 == 0 || start + len == shape[0])),
           "slice0(", start, ", ", len, ") of a 16-row interleaved ", dtype_name(dtype), " tensor ", shape_str(shape),
           ": slice whole groups of 16 rows");
  Tensor t = *this;
  t.shape[0] = len;
  int64_t row = shape[0] == 0 ? 0 : numel() / shape[0];
  t.data = static_cast<char*>(data) + dtype_nbytes(dtype, start * row);
  return t;
}

Tensor Tensor::empty(DType t, const Shape& s) {
  MG_CHECK(s.size() <= 4, "tensors have at most 4 dims, asked for ", shape_str(s));
  for (int64_t d : s) MG_CHECK(d >= 0, "negative dimension in shape ", shape_str(s));
  if (dtype_is_quantized(t)) check_quantizable(t, s);
  Tensor out;
  out.dtype = t;
  out.device = Device::CPU;
  out.shape = s;
  size_t bytes = out.nbytes();
  // 64-byte alignment for SIMD; at least one byte so that an empty tensor is still "defined".
  size_t alloc = (bytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  size_t granted = 0;
  void* p = detail::host_alloc(alloc, &granted);
  out.owner = std::shared_ptr<void>(p, [granted](void* q) { detail::host_release(q, granted); });
  out.data = p;
  return out;
}

Tensor Tensor::zeros(DType t, const Shape& s) {
  Tensor out = empty(t, s);
  std::memset(out.data, 0, out.nbytes());
  return out;
}

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& s) {
  Tensor out = empty(DType::F32, s);
  MG_CHECK(size_t(out.numel()) == v.size(), "from_vector: ", v.size(), " values for shape ", shape_str(s));
  std::memcpy(out.data, v.data(), v.size() * sizeof(float));
  return out;
}

Tensor Tensor::view(void* data, DType t, const Shape& s, Device d, std::shared_ptr<void> owner) {
  Tensor out;
  out.dtype = t;
  out.device = d;
  out.shape = s;
  out.data = data;
  out.owner = std::move(owner);
  return out;
}

Tensor Tensor::clone() const {
  MG_CHECK(device == Device::CPU, "clone() of a ", device_name(device), " tensor: use Backend");
  Tensor out = empty(dtype, shape);
  std::memcpy(out.data, data, nbytes());
  out.layout = layout;
  return out;
}

Tensor Tensor::as_f32() const { return dtype == DType::F32 ? *this : from_vector(to_vector(), shape); }

Tensor concat_rows(std::vector<Tensor> parts) {
  MG_CHECK(!parts.empty(), "concat_rows: no tensors");
  bool same = true;
  for (const Tensor& t : parts) {
    MG_CHECK(t.device == Device::CPU && t.ndim() == 2 && t.dim(1) == parts[0].dim(1), "concat_rows: ",
             shape_str(t.shape), " on ", device_name(t.device), " does not stack with ", shape_str(parts[0].shape),
             " (2-D host tensors with the same columns)");
    same = same && t.dtype == parts[0].dtype;
  }
  if (!same)
    for (Tensor& t : parts) t = Tensor::from_vector(t.to_vector(), t.shape);
  int64_t rows = 0;
  for (const Tensor& t : parts) rows += t.dim(0);
  Tensor out = Tensor::empty(parts[0].dtype, {rows, parts[0].dim(1)});
  char* dst = static_cast<char*>(out.data);
  for (const Tensor& t : parts) {
    std::memcpy(dst, t.data, t.nbytes());
    dst += t.nbytes();
  }
  return out;
}

std::vector<float> Tensor::to_vector() const {
  MG_CHECK(device == Device::CPU, "to_vector() of a ", device_name(device), " tensor: download first");
  std::vector<float> v(numel());
  const int64_t n = numel();
  if (n == 0) return v;  // no memcpy from a possibly null pointer
  switch (dtype) {
    case DType::F32: std::memcpy(v.data(), data, n * 4); break;
    case DType::F16: for (int64_t i = 0; i < n; ++i) v[i] = f16_to_f32(ptr<uint16_t>()[i]); break;
    case DType::BF16: for (int64_t i = 0; i < n; ++i) v[i] = bf16_to_f32(ptr<uint16_t>()[i]); break;
    case DType::I32: for (int64_t i = 0; i < n; ++i) v[i] = float(ptr<int32_t>()[i]); break;
    case DType::I64: for (int64_t i = 0; i < n; ++i) v[i] = float(ptr<int64_t>()[i]); break;
    case DType::Q8_0:
    case DType::Q4_0:
      if (layout == QuantLayout::Interleaved16) return deinterleave_rows16(*this).to_vector();
      dequantize_row(dtype, data, v.data(), n);
      break;
  }
  return v;
}

}  // namespace mg
