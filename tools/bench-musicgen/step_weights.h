// What one MusicGen decode step reads in weights: bench-musicgen's roofline (bytes over a read
// bandwidth) and bench-server-step's compute bound (2 x rows x weights FLOPs over the FMA peak).
#pragma once

#include <cstdint>

#include "kernels/quant.h"
#include "lm/musicgen_config.h"

namespace mgbench {

// Weight elements one decode step reads for its rows: per layer the self-attention q, k, v, o, the
// cross-attention q and o (its k and v are computed once from the text), fc1 and fc2; then the K
// heads. Embedding rows and norm vectors are a few KB and left out.
inline int64_t weights_read_per_step(const mg::MusicgenConfig& c) {
  const int64_t D = c.decoder.hidden_size, F = c.decoder.ffn_dim, L = c.decoder.num_hidden_layers;
  const int64_t cross = c.melody ? 0 : 2 * D * D;
  return L * (4 * D * D + cross + 2 * D * F) + int64_t(c.decoder.num_codebooks) * c.decoder.vocab_size * D;
}

// Bytes one weight takes in memory in dtype dt, its block scales included (q8_0: 34 bytes per 32
// weights, q4_0: 18), so that the roofline of a quantized decoder counts every byte it reads.
inline double bytes_per_weight(mg::DType dt) {
  if (dt == mg::DType::Q8_0) return double(mg::kQ8BlockBytes) / double(mg::kQuantBlock);
  if (dt == mg::DType::Q4_0) return double(mg::kQ4BlockBytes) / double(mg::kQuantBlock);
  return double(mg::dtype_size(dt));
}

}  // namespace mgbench
