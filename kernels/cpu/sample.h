// Token sampling shared by the CPU reference (kernels/cpu/sample.cpp) and the CUDA kernel
// (kernels/cuda/sample.cu): the counter-based random number and the host reference of
// Backend::sample_tokens. The random number depends only on (seed, step, codebook), never on
// how many draws came before, so a backend may draw every (sequence, codebook) in parallel and
// the same seed gives the same tokens on the CPU and on CUDA for the same logits (up to the last
// bit of exp() in double, which only matters when a draw falls exactly on a boundary).
// This is a different stream from the mt19937 sampler of earlier versions: only reproducibility
// for a seed is promised, not the old token sequences.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/ops.h"

#if defined(__CUDACC__)
#define MG_HOST_DEVICE __host__ __device__
#else
#define MG_HOST_DEVICE
#endif

namespace mg {

// splitmix64's finaliser: a bijective 64-bit mix (Steele, Lea, Flood 2014).
MG_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The uniform draw in [0, 1) for one token: 53 random bits of hash(seed, step, codebook).
MG_HOST_DEVICE inline double sample_uniform(uint64_t seed, int64_t step, int codebook) {
  const uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ uint64_t(step)) ^ uint64_t(codebook));
  return double(h >> 11) * (1.0 / 9007199254740992.0);
}

// Classifier-free guidance on one value, in the references' order and rounding:
// uncond + (cond - uncond) * scale, each operation rounded to f32 (no fused multiply-add, so the
// CPU and CUDA agree bit for bit).
MG_HOST_DEVICE inline float cfg_value(float cond, float uncond, float scale) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(uncond, __fmul_rn(__fsub_rn(cond, uncond), scale));
#else
  volatile float d = (cond - uncond) * scale;  // volatile: keeps a compiler from fusing into an FMA
  return uncond + d;
#endif
}

namespace cpu {

// One token from logits[V] (already guided): greedy (first maximum) when p.greedy or
// temperature <= 0; otherwise softmax(logits / temperature) in double, then top-p if > 0 (as
// audiocraft's sample_top_p: sort descending, stable; drop a token when the mass before it
// exceeds p) else top-k if 0 < k < V (as sample_top_k: keep probabilities >= the k-th largest,
// ties kept), then the inverse-CDF walk in index order with u = sample_uniform(...).
int sample_one(const float* logits, int64_t V, const SamplerParams& p, double u);

// The host reference of Backend::sample_tokens (see kernels/ops.h): logits[R, K, V] host f32 ->
// ids[B, K] host i32; guided (optional) gets the [B, K, V] guided logits.
Tensor sample_tokens(const Tensor& logits, bool cfg, float guidance_scale, const SamplerParams& p,
                     const std::vector<uint64_t>& seeds, int64_t step, Tensor* guided = nullptr);

}  // namespace cpu
}  // namespace mg
