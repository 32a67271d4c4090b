// The training ops of kernels/cpu/train_ops.h on the GPU, one .cu per op
// (kernels/cuda/*_backward.cu, cross_entropy.cu): the same arguments, device pointers instead of
// host ones, same accumulate (+=) convention, no thread pool. Each call is complete when it returns
// (it synchronises the device): these are the checked building blocks of GPU training, not yet
// scheduled into streams or graphs. tests/gpu/cuda_train_ops_test.cpp checks each against the CPU.
// In a build without CUDA every function throws mg::Error saying so (train_ops_stub.cpp).
#pragma once

#include <cstdint>

namespace mg::cuda::train {

// linear_backward.cu: y = x W^T (beta 0 overwrites y, 1 adds); dx += dy W.
void linear_forward(const float* x, int64_t ldx, const float* W, int64_t N, int64_t I, int64_t O, float* y,
                    int64_t ldy, float beta);
void linear_backward_input(const float* dy, int64_t lddy, const float* W, int64_t N, int64_t I, int64_t O, float* dx,
                           int64_t lddx);
// LoRA without dropout: xa[N, R] = x A^T, y += scale xa B^T; backward dA, dB, dx (nullable) +=.
void lora_forward(const float* x, int64_t ldx, const float* A, const float* B, int64_t N, int64_t I, int64_t O,
                  int64_t R, float scale, float* y, int64_t ldy, float* xa);
void lora_backward(const float* dy, int64_t lddy, const float* x, int64_t ldx, const float* A, const float* B,
                   const float* xa, int64_t N, int64_t I, int64_t O, int64_t R, float scale, float* dA, float* dB,
                   float* dx, int64_t lddx);

// attention_backward.cu: one sequence, H heads of hd; probs [H, Tq, Tk].
void attention_forward(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
                       int64_t Tq, int64_t Tk, int H, int64_t hd, float scale, bool causal, float* out, int64_t ldo,
                       float* probs);
void attention_backward(const float* dout, int64_t lddo, const float* q, int64_t ldq, const float* k, int64_t ldk,
                        const float* v, int64_t ldv, const float* probs, int64_t Tq, int64_t Tk, int H, int64_t hd,
                        float scale, float* dq, int64_t lddq, float* dk, int64_t lddk, float* dv, int64_t lddv);

// layer_norm_backward.cu
void layer_norm_forward(const float* x, const float* w, const float* b, int64_t N, int64_t D, float eps, float* y,
                        float* mean, float* rstd);
void layer_norm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                         int64_t N, int64_t D, float* dx);

// gelu_backward.cu
void gelu_forward(const float* x, float* y, int64_t n);
void gelu_backward(const float* dy, const float* x, float* dx, int64_t n);

// cross_entropy.cu: logits [N, K, V], targets [N, K] (-1 masked) on the device; dlogits written
// (nullable). Returns the loss (the per-codebook means averaged).
double cross_entropy_forward_backward(const float* logits, const int32_t* targets, int64_t N, int K, int64_t V,
                                      float grad_scale, float* dlogits);

}  // namespace mg::cuda::train
