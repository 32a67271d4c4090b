// Forward-with-cache and backward of every op the MusicGen decoder uses, for LoRA training
// (train/). Plain f32 host arrays, row-major, llm.c style: each op's forward keeps what its
// backward needs, each backward ACCUMULATES (+=) into the gradients it is given, so a residual
// stream or several consumers of one activation simply add up. The frozen parameters (base
// weights, norms, embeddings) get no gradient; only activations and the LoRA matrices do.
// One file per op (kernels/cpu/<op>_backward.cpp); tests/unit/train_ops_test.cpp checks each
// against finite differences, tests/parity/train_ops_test.cpp against PyTorch autograd.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace mg::cpu::train {

// ---- linear_backward.cpp: y = x W^T (+ scale * (x A^T) B^T, LoRA) ----
// A strided matrix view: rows of `cols` floats, `ld` floats apart.
struct MatView {
  float* p = nullptr;
  int64_t ld = 0;
};
// y[N, O] (+)= x[N, I] W[O, I]^T; beta 0 overwrites y, 1 adds.
void linear_forward(const Exec& ex, const float* x, int64_t ldx, const float* W, int64_t N, int64_t I, int64_t O,
                    MatView y, float beta);
// dx[N, I] += dy[N, O] W[O, I] (W frozen: no dW).
void linear_backward_input(const Exec& ex, const float* dy, int64_t lddy, const float* W, int64_t N, int64_t I,
                           int64_t O, MatView dx);

// The LoRA branch of one adapted linear: xa[N, R] = xd A^T, y[N, O] += scale * xa B^T, where xd is
// x (no dropout) or x * mask / (1 - p) (dropout: `keep` is the 0/1 mask [N, I], else empty).
// xd (when dropout) and xa are kept for the backward.
struct LoraCache {
  std::vector<float> xd;  // [N, I] only with dropout
  std::vector<float> xa;  // [N, R]
};
void lora_forward(const Exec& ex, const float* x, int64_t ldx, const float* A, const float* B, int64_t N, int64_t I,
                  int64_t O, int64_t R, float scale, const std::vector<uint8_t>& keep, float dropout, MatView y,
                  LoraCache& cache);
// dA[R, I] += scale * (dy B)^T xd, dB[O, R] += scale * dy^T xa, dx[N, I] += scale * (dy B) A (times
// the dropout mask / (1 - p) when there was one). dx may be null (the input needs no gradient).
void lora_backward(const Exec& ex, const float* dy, int64_t lddy, const float* x, int64_t ldx, const float* A,
                   const float* B, int64_t N, int64_t I, int64_t O, int64_t R, float scale,
                   const std::vector<uint8_t>& keep, float dropout, const LoraCache& cache, float* dA, float* dB,
                   MatView dx);

// ---- attention_backward.cpp: one sequence, H heads of hd = D / H ----
// out[Tq, D] = softmax(scale * q k^T + mask) v per head; causal: query i sees keys j <= i (the
// query's position is its row; Tq == Tk). Keys beyond Tk (the text's padding) are simply not
// passed: a padded key under a -inf mask has weight exactly zero. probs [H, Tq, Tk] is kept.
void attention_forward(const Exec& ex, const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
                       int64_t ldv, int64_t Tq, int64_t Tk, int H, int64_t hd, float scale, bool causal, float* out,
                       int64_t ldo, float* probs);
// dq, dk, dv += the gradients of out (dout); any of them may be null when not needed.
void attention_backward(const Exec& ex, const float* dout, int64_t lddo, const float* q, int64_t ldq, const float* k,
                        int64_t ldk, const float* v, int64_t ldv, const float* probs, int64_t Tq, int64_t Tk, int H,
                        int64_t hd, float scale, float* dq, int64_t lddq, float* dk, int64_t lddk, float* dv,
                        int64_t lddv);

// ---- layer_norm_backward.cpp: y = (x - mean) * rstd * w + b over rows of D, w and b frozen ----
void layer_norm_forward(const Exec& ex, const float* x, const float* w, const float* b, int64_t N, int64_t D,
                        float eps, float* y, float* mean, float* rstd);
void layer_norm_backward(const Exec& ex, const float* dy, const float* x, const float* w, const float* mean,
                         const float* rstd, int64_t N, int64_t D, float* dx);

// ---- gelu_backward.cpp: exact GELU 0.5 x (1 + erf(x / sqrt 2)) ----
void gelu_forward(const Exec& ex, const float* x, float* y, int64_t n);
void gelu_backward(const Exec& ex, const float* dy, const float* x, float* dx, int64_t n);

// ---- embedding_backward.cpp: x[n, D] = sum_k table_k[ids[k][n]] + positions[pos[n]] ----
// The embeddings and positions are frozen, so there is no backward: the gradient stops at x.
void embedding_sum_forward(const std::vector<const float*>& tables, const std::vector<const int32_t*>& ids,
                           const float* positions, const int32_t* pos, int64_t n, int64_t D, float* x);

// ---- cross_entropy.cpp: audiocraft's loss over K codebooks ----
// logits [N, K, V], targets [N, K] (-1: masked). loss = 1/K sum_k mean over codebook k's unmasked
// rows of -log softmax(logits)[target]; per_codebook[k] gets each mean (NaN when a codebook has no
// unmasked row, as PyTorch). dlogits [N, K, V] (may be null) is WRITTEN with d loss / d logits,
// times `grad_scale` (e.g. 1 / accumulation steps).
double cross_entropy_forward_backward(const Exec& ex, const float* logits, const int32_t* targets, int64_t N, int K,
                                      int64_t V, float grad_scale, float* dlogits, std::vector<double>* per_codebook);

}  // namespace mg::cpu::train
