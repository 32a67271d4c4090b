// Continuous batching's decode step: one new column for each of several independent generations,
// each with its own DecoderState (KV cache, position, text), in one pass over the weights.
//
// Every linear layer runs on the new rows of all states concatenated, so a weight read serves
// every request; attention and cross-attention run per state on its own cache. The linears are
// called on groups of at most kBatchedStepRowsPerCall rows (8 requests with CFG): on the CPU that
// keeps them on the GEMV path (kernels/cpu/linear.cpp), whose result for a row does not depend on
// the other rows of the call, and which reads each weight once for all of them (sgemm's blocking
// does change the last bits with the row count). Quantized weights (q8_0, q4_0) go in one
// call for all rows: their kernel is row-count independent by design. So a request's tokens are
// the same bits whichever requests share its steps (tests/unit/batched_step_test.cpp).
#pragma once

#include <functional>
#include <vector>

#include "lm/transformer.h"

namespace mg {

constexpr int64_t kBatchedStepRowsPerCall = 16;

// ids: i32 [K, total rows] on the device, rows in `states` order (state i's rows after state
// i-1's). Each state takes one column at its own position (st.length), which then advances by
// one. Returns the logits [total rows, K, vocab] on the device.
// before_layer (optional) is called with each layer's index before the layer runs: step lanes
// (lm/step_lanes.h) pace themselves there.
Tensor decoder_step_states(Backend& be, const MusicgenDecoder& dec, const std::vector<DecoderState*>& states,
                           const Tensor& ids, const std::function<void(size_t)>& before_layer = {});

// linear_fused on x[M, N_in] in groups of at most kBatchedStepRowsPerCall rows (see above).
Tensor linear_in_row_groups(Backend& be, const Tensor& x, const Tensor& w, const LinearFusion& fuse);

}  // namespace mg
