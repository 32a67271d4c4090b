// The decoder's input for training: the K codebook embeddings summed plus the sinusoidal position
// (train_ops.h). Embeddings and positions are frozen, so the backward ends at x: this file has the
// forward only, kept beside the other training ops so that the op list reads complete.
#include "kernels/cpu/train_ops.h"

namespace mg::cpu::train {

void embedding_sum_forward(const std::vector<const float*>& tables, const std::vector<const int32_t*>& ids,
                           const float* positions, const int32_t* pos, int64_t n, int64_t D, float* x) {
  for (int64_t r = 0; r < n; ++r) {
    float* xr = x + r * D;
    for (int64_t i = 0; i < D; ++i) xr[i] = 0.0f;
    for (size_t k = 0; k < tables.size(); ++k) {
      const float* e = tables[k] + int64_t(ids[k][r]) * D;
      for (int64_t i = 0; i < D; ++i) xr[i] += e[i];
    }
    const float* p = positions + int64_t(pos[r]) * D;
    for (int64_t i = 0; i < D; ++i) xr[i] += p[i];
  }
}

}  // namespace mg::cpu::train
