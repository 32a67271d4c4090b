// Residual vector quantizer (EnCodec's RVQ): each codebook quantises what the previous ones left.
// Only `codebook.embed` is needed at inference; the EMA buffers are training state.
#pragma once

#include <vector>

#include "codec/encodec_config.h"
#include "kernels/ops.h"
#include "weights/safetensors.h"

namespace mg {

struct Rvq {
  std::vector<Tensor> codebooks;  // [bins, dim] each, on the backend's device
  int64_t bins = 0;
  int64_t dim = 0;
};

Rvq load_rvq(Backend& be, const WeightStore& weights, const EncodecConfig& cfg);

// emb[1, dim, T] -> codes[nq, T] (i64, host), quantising with the first nq codebooks.
Tensor rvq_encode(Backend& be, const Rvq& rvq, const Tensor& emb, int nq);
// codes[K, T] (i32/i64, host) -> emb[1, dim, T] on the device: the sum of the K codewords, summed in
// codebook order as the reference does.
Tensor rvq_decode(Backend& be, const Rvq& rvq, const Tensor& codes);

}  // namespace mg
