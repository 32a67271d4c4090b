// Multi-head attention (kernels/ops.h's attention op), flash-decoding style. The visible keys of
// each (query row, head) are cut into chunks of kChunk; one block per (row and head, chunk)
// computes the chunk's scores, their max m, l = sum exp(s - m) and the unnormalised
// o = sum exp(s - m) v. The chunks are merged, rescaling each by exp(m_c - M), by the last chunk
// block of each (row, head) to finish (with the backend's zeroed counters), else by a second kernel.
// K and V may be f16 (a half KV cache); q's rows may be wider than H*dh (a fused q|k|v row).
// Why split over the keys: the decode step has ONE query per row, so one block per head would
// leave the GPU almost idle (16 blocks for musicgen-small) while it walks up to ~1500 cached
// positions; chunks give T / kChunk times more blocks. With a single chunk (short T: cross-
// attention over the text, the first steps) the first kernel normalises and writes the output.
// All arithmetic is f32; the result differs from the CPU's single-pass softmax only by rounding.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace mg {
namespace cuda {
namespace {

constexpr int kChunk = 128;    // keys per block
constexpr int kThreads = 128;  // 4 warps; one warp per key for the scores

// out_row[d] = sum_c exp(m_c - M) o_c[d] / sum_c exp(m_c - M) l_c over the chunks of one (row,
// head), by `nthreads` threads from `tid`. The partials are read past L1 (__ldcg): in the fused
// path they were written by other blocks moments before.
__device__ void merge_chunks(const float* pm, const float* pl, const float* po, float* out_row, int dh, int nchunks,
                             int tid, int nthreads) {
  float M = -INFINITY;
  for (int c = 0; c < nchunks; ++c) M = fmaxf(M, __ldcg(pm + c));
  float L = 0.0f;
  for (int c = 0; c < nchunks; ++c) {
    const float lc = __ldcg(pl + c);
    if (lc > 0.0f) L += lc * expf(__ldcg(pm + c) - M);
  }
  for (int d = tid; d < dh; d += nthreads) {
    float o = 0.0f;
    for (int c = 0; c < nchunks; ++c)
      if (__ldcg(pl + c) > 0.0f) o += __ldcg(po + int64_t(c) * dh + d) * expf(__ldcg(pm + c) - M);
    out_row[d] = L > 0.0f ? o / L : 0.0f;
  }
}

// Grid: x = row * H + head (S * H blocks), y = chunk, z = problem. The merge of the chunks runs in
// the last chunk block to finish (counters given) or as attention_merge_kernel. Query i sees keys [0, visible(i)).
// nchunks == 1: out gets the normalised result; otherwise part_m / part_l [S*H, nchunks] and
// part_o [S*H, nchunks, dh] get the chunk's partial state.
template <typename KV>
__global__ void attention_chunk_kernel(const float* __restrict__ q, const KV* __restrict__ k,
                                       const KV* __restrict__ v, float* __restrict__ out,
                                       float* __restrict__ part_m, float* __restrict__ part_l,
                                       float* __restrict__ part_o, int64_t S, int64_t T, int H, int dh,
                                       float scale, bool causal, int nchunks, int64_t kv_stride,
                                       int64_t scratch_stride, const int32_t* __restrict__ keys_dev, int64_t qs,
                                       unsigned* __restrict__ counters) {
  __shared__ float sq[kMaxAttentionHeadDim];
  __shared__ float sp[kChunk];
  __shared__ float red[kThreads];
  __shared__ float scratch[kWarp];
  const int64_t ih = blockIdx.x;
  const int64_t i = ih / H, h = ih % H, D = int64_t(H) * dh;
  const int c = blockIdx.y;
  // blockIdx.z: the problem of a batched call (attention_rows), each with its own q/k/v/out/scratch.
  const int64_t b = blockIdx.z;
  q += b * S * qs;  // q's rows may be wider than D (a fused q|k|v row): its first D columns
  out += b * S * D;
  k += b * kv_stride;
  v += b * kv_stride;
  if (nchunks > 1) {
    part_m += b * scratch_stride;
    part_l += b * scratch_stride;
    part_o += b * scratch_stride;
  }
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp, nwarps = blockDim.x / kWarp;
  if (keys_dev) T = min(T, int64_t(*keys_dev));  // a recorded step: the launch covers the cache
  const int64_t visible = max(int64_t(0), causal ? T - S + i + 1 : T);
  const int64_t j0 = int64_t(c) * kChunk;
  const int n = int(max(int64_t(0), min(visible, j0 + kChunk) - j0));

  for (int d = tid; d < dh; d += blockDim.x) sq[d] = q[i * qs + h * dh + d];
  __syncthreads();
  for (int jj = warp; jj < n; jj += nwarps) {
    const KV* kr = k + (j0 + jj) * D + h * dh;
    float s = 0.0f;
    for (int d = lane; d < dh; d += kWarp) s += sq[d] * to_f32(kr[d]);
    s = warp_sum(s);
    if (lane == 0) sp[jj] = s * scale;
  }
  __syncthreads();
  float m = -INFINITY;
  for (int jj = tid; jj < n; jj += blockDim.x) m = fmaxf(m, sp[jj]);
  m = block_max(m, scratch);
  float l = 0.0f;
  for (int jj = tid; jj < n; jj += blockDim.x) {
    const float p = expf(sp[jj] - m);
    sp[jj] = p;
    l += p;
  }
  l = block_sum(l, scratch);  // its leading __syncthreads also publishes the sp[] writes

  // o[d] = sum_j p_j v[j, d]: G groups of dh threads (coalesced reads of a value row), each over
  // every G-th key, then the groups' partial sums are added.
  const int64_t slot = ih * nchunks + c;
  auto emit = [&](int d, float o) {
    if (nchunks == 1) out[i * D + h * dh + d] = l > 0.0f ? o / l : 0.0f;
    else part_o[slot * dh + d] = o;
  };
  if (dh <= int(blockDim.x)) {
    const int G = blockDim.x / dh, g = tid / dh, d = tid % dh;
    if (g < G) {
      float acc = 0.0f;
      for (int jj = g; jj < n; jj += G) acc += sp[jj] * to_f32(v[(j0 + jj) * D + h * dh + d]);
      red[g * dh + d] = acc;
    }
    __syncthreads();
    if (tid < dh) {
      float o = 0.0f;
      for (int gg = 0; gg < G; ++gg) o += red[gg * dh + tid];
      emit(tid, o);
    }
  } else {
    for (int d = tid; d < dh; d += blockDim.x) {
      float acc = 0.0f;
      for (int jj = 0; jj < n; ++jj) acc += sp[jj] * to_f32(v[(j0 + jj) * D + h * dh + d]);
      emit(d, acc);
    }
  }
  if (nchunks > 1 && tid == 0) {
    part_m[slot] = m;  // -inf for a chunk past the visible keys (then l = 0, o = 0)
    part_l[slot] = l;
  }
  if (nchunks == 1 || !counters) return;
  // Fused merge: the last chunk block of this (row, head) to finish merges them all (CUDA's
  // threadFenceReduction pattern), saving the merge kernel's launch. The counter goes back to 0 for
  // the next launch.
  __shared__ bool last;
  __threadfence();  // this block's partials are visible device-wide before it is counted
  __syncthreads();
  unsigned* counter = counters + b * gridDim.x + ih;
  if (tid == 0) last = atomicAdd(counter, 1u) == unsigned(nchunks - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  merge_chunks(part_m + ih * nchunks, part_l + ih * nchunks, part_o + ih * nchunks * dh, out + i * D + h * dh, dh,
               nchunks, tid, blockDim.x);
  if (tid == 0) *counter = 0u;
}

// One block per (row, head): out = sum_c exp(m_c - M) o_c / sum_c exp(m_c - M) l_c.
__global__ void attention_merge_kernel(const float* __restrict__ part_m, const float* __restrict__ part_l,
                                       const float* __restrict__ part_o, float* __restrict__ out, int H, int dh,
                                       int nchunks, int64_t S, int64_t scratch_stride) {
  const int64_t ih = blockIdx.x, b = blockIdx.y;
  const int64_t i = ih / H, h = ih % H, D = int64_t(H) * dh;
  out += b * S * D;
  const float* pm = part_m + b * scratch_stride + ih * nchunks;
  const float* pl = part_l + b * scratch_stride + ih * nchunks;
  const float* po = part_o + b * scratch_stride + ih * nchunks * dh;
  merge_chunks(pm, pl, po, out + i * D + h * dh, dh, nchunks, threadIdx.x, blockDim.x);
}

}  // namespace

int64_t attention_chunks(int64_t T) { return std::max<int64_t>(1, ceil_div(T, kChunk)); }

int64_t attention_scratch_floats(int64_t S, int heads, int64_t dh, int64_t T) {
  const int64_t chunks = attention_chunks(T);
  return chunks == 1 ? 0 : S * heads * chunks * (dh + 2);
}

void attention_batched(cudaStream_t s, const float* q, const void* k, const void* v, float* out, float* scratch,
                       int64_t batch, int64_t kv_rows, int64_t S, int64_t T, int heads, int64_t dh, float scale,
                       bool causal, const int32_t* keys_dev, DType kv_dtype, int64_t q_stride, unsigned* counters) {
  const int64_t qs = q_stride > 0 ? q_stride : int64_t(heads) * dh;
  if (batch == 0 || S == 0 || dh == 0) return;
  MG_CHECK(dh <= kMaxAttentionHeadDim, "cuda attention: head size ", dh, " exceeds ", kMaxAttentionHeadDim);
  const int64_t chunks = attention_chunks(T), rows = S * heads;
  MG_CHECK(chunks <= 65535 && batch <= 65535 && rows <= 0x7fffffffLL, "cuda attention: ", batch, " x ", S,
           " queries x ", heads, " heads over ", T, " keys exceed the grid limits");
  // Per problem: part_m [rows, chunks], part_l [rows, chunks], part_o [rows, chunks, dh].
  const int64_t per = attention_scratch_floats(S, heads, dh, T);
  float* part_m = scratch;
  float* part_l = chunks > 1 ? scratch + rows * chunks : nullptr;
  float* part_o = chunks > 1 ? scratch + 2 * rows * chunks : nullptr;
  MG_CHECK(chunks == 1 || scratch, "cuda attention: ", chunks, " key chunks need a scratch buffer");
  const int64_t kv_stride = kv_rows * heads * dh;
  const dim3 grid{unsigned(rows), unsigned(chunks), unsigned(batch)};
  // The fused merge needs one zeroed counter per (problem, row, head).
  unsigned* fused = chunks > 1 && counters && batch * rows <= kAttentionCounters ? counters : nullptr;
  MG_CHECK(kv_dtype == DType::F32 || kv_dtype == DType::F16, "cuda attention: k/v must be f32 or f16, got ",
           dtype_name(kv_dtype));
  if (kv_dtype == DType::F16)
    attention_chunk_kernel<__half><<<grid, kThreads, 0, s>>>(q, static_cast<const __half*>(k),
                                                             static_cast<const __half*>(v), out, part_m, part_l, part_o,
                                                             S, T, heads, int(dh), scale, causal, int(chunks),
                                                             kv_stride, per, keys_dev, qs, fused);
  else
    attention_chunk_kernel<float><<<grid, kThreads, 0, s>>>(q, static_cast<const float*>(k),
                                                            static_cast<const float*>(v), out, part_m, part_l, part_o,
                                                            S, T, heads, int(dh), scale, causal, int(chunks), kv_stride,
                                                            per, keys_dev, qs, fused);
  CUDA_CHECK_LAUNCH();
  if (chunks > 1 && !fused) {
    const int block = dh <= 32 ? 32 : dh <= 64 ? 64 : 128;
    const dim3 mgrid{unsigned(rows), unsigned(batch)};
    attention_merge_kernel<<<mgrid, block, 0, s>>>(part_m, part_l, part_o, out, heads, int(dh), int(chunks), S, per);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace cuda
}  // namespace mg
