// What the CUDA backend's translation units share (cuda_backend.cu, cuda_sequence_ops.cu): raw
// pointers of f32 tensors, the device error flag, and the sequence ops. Tensors reaching them have
// passed the op's contract (kernels/op_checks.h).
#pragma once

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/tensor.h"

namespace mg {
namespace cuda {

inline const float* cf(const Tensor& t) { return static_cast<const float*>(t.data); }
inline float* mf(Tensor& t) { return static_cast<float*>(t.data); }

inline void activate(const DeviceState& st) { CUDA_CHECK(cudaSetDevice(st.device)); }

// Registers a launch whose kernel may set the device error flag (kernels/cuda/pending_checks.h);
// returns the tag to give it, 0 while capturing (then the kernel gets no flag).
int add_check(DeviceState& st, PendingCheck check);
// Waits for the stream (download, synchronize) and reports the first failed check since the last
// time: throws mg::Error naming the op and, for an embedding, the bad id and where it was.
void synchronize_checked(Backend& be, DeviceState& st);

// The ops of kernels/cuda/cuda_sequence_ops.cu (attention, the KV cache, sampling, embeddings,
// the LSTM) and chroma, as functions of the backend (for alloc/download/cast) and its device state; the
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

// chroma.cu: Backend::chroma. signal[n >= n_fft], window[n_fft], filters[n_chroma, n_fft/2 + 1]
// -> features[frames, n_chroma] and argmax[frames] (the first maximum), frames = 1 + n / hop. The
// cuFFT plan and the scratch buffers are cached per (n_fft, frames) in st (a few sizes).
void chroma(DeviceState& st, const float* signal, int64_t n, const float* window, float window_norm,
            const float* filters, int n_fft, int hop, int n_chroma, float eps, float* features, int32_t* argmax,
            int64_t frames);

}  // namespace cuda
}  // namespace mg
