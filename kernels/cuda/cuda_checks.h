// Tensor checks shared by the CUDA backend's translation units (cuda_backend.cu,
// cuda_sequence_ops.cu): the same contract as the CPU backend (dtype, device, shape), with errors
// that name the op and the tensor.
#pragma once

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/tensor.h"

namespace mg {
namespace cuda {

inline bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
inline bool is_int(DType t) { return t == DType::I32 || t == DType::I64; }

inline void check_cuda(const Tensor& t, const char* op, const char* what) {
  MG_CHECK(t.defined() || t.numel() == 0, "cuda ", op, ": ", what, " is undefined");
  MG_CHECK(t.device == Device::CUDA, "cuda ", op, ": ", what, " is on the ", device_name(t.device),
           ", expected a cuda tensor (upload it first)");
}

inline void check_f32(const Tensor& t, const char* op, const char* what) {
  check_cuda(t, op, what);
  MG_CHECK(t.dtype == DType::F32, "cuda ", op, ": ", what, " must be f32, got ", dtype_name(t.dtype), " ",
           shape_str(t.shape));
}

// gamma / beta / bias style vectors: 1-D of n values.
inline void check_vec(const Tensor& t, int64_t n, const char* op, const char* what, bool any_float = false) {
  if (any_float) {
    check_cuda(t, op, what);
    MG_CHECK(is_float(t.dtype), "cuda ", op, ": ", what, " must be f32/f16/bf16, got ", dtype_name(t.dtype));
  } else {
    check_f32(t, op, what);
  }
  MG_CHECK(t.ndim() == 1 && t.dim(0) == n, "cuda ", op, ": ", what, " has shape ", shape_str(t.shape), ", expected [",
           n, "]");
}

inline const float* cf(const Tensor& t) { return static_cast<const float*>(t.data); }
inline float* mf(Tensor& t) { return static_cast<float*>(t.data); }

// A one-element i32 device tensor (the position, key count and step of a recorded step).
inline void check_scalar(const Tensor& t, const char* op, const char* what) {
  check_cuda(t, op, what);
  MG_CHECK(t.dtype == DType::I32 && t.numel() == 1, "cuda ", op, ": ", what, " must be an i32 [1] tensor, got ",
           dtype_name(t.dtype), " ", shape_str(t.shape));
}

inline void activate(const DeviceState& st) { CUDA_CHECK(cudaSetDevice(st.device)); }

// Waits for the stream and reads the device error flag (bad embedding id, i64 -> i32 overflow).
bool read_flag(DeviceState& st);

// The ops of kernels/cuda/cuda_sequence_ops.cu (attention, the KV cache, sampling, embeddings,
// the LSTM), as functions of the backend (for alloc/download/cast) and its device state; the
// backend's overrides call them. keys_dev / pos_dev / seeds_dev / step_dev: the recorded step's
// device scalars (null: the host values are used).
Tensor attend_rows(Backend& be, DeviceState& st, const Tensor& q, const Tensor& k, const Tensor& v, int64_t T,
                   const int32_t* keys_dev, int heads, float scale, bool causal, const char* op);
// cache2 (may be null): the layer's V cache, written from the D columns after col0 in the same launch.
void put_kv(DeviceState& st, Tensor& cache, int64_t pos, const int32_t* pos_dev, const Tensor& src, int64_t col0,
            const char* op, Tensor* cache2 = nullptr);
Tensor sample(Backend& be, DeviceState& st, const Tensor& logits, bool cfg, float guidance_scale,
              const SamplerParams& p, int B, const uint64_t* seeds, int64_t step, const uint64_t* seeds_dev,
              const int32_t* step_dev, Tensor* guided, const char* op);
Tensor embed(Backend& be, DeviceState& st, const std::vector<const Tensor*>& tables, const Tensor& ids,
             const char* name);
Tensor lstm(Backend& be, DeviceState& st, const Tensor& x, const LstmLayerWeights& w, Tensor* h_state, Tensor* c_state);

}  // namespace cuda
}  // namespace mg
