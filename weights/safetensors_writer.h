// The bytes of a safetensors file (header JSON + data), for the few files the library writes
// (LoRA adapters, cached training codes). Writing them to disk is the caller's: through AtomicFile
// (codec/atomic_file.h), so a reader never sees half a file.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kernels/tensor.h"

namespace mg {

// The safetensors dtype string of f32/f16/bf16/i32/i64 ("F32", ...); nullptr for other dtypes.
const char* safetensors_dtype_name(DType t);

// Tensors in the given order (host tensors, f32/f16/bf16/i32/i64; contiguous), with optional
// string metadata ("__metadata__"). Data offsets are laid out in the given order; the header keys
// are sorted as the safetensors library writes them, and the header is padded with spaces to a
// multiple of 8 bytes. Names must be unique and non-empty.
std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace mg
