// The decoder weight precision a musicgen_weights value asks for (api/quantize_api.cpp).
#pragma once

#include "kernels/tensor.h"
#include "musicgen.h"

namespace mg::capi {

// Throws ArgumentError for a value outside the enum.
mg::DType decoder_weights_dtype(musicgen_weights w);

}  // namespace mg::capi
