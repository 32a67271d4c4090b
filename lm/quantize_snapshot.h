// Quantized snapshots: a MusicGen snapshot folder rewritten with its decoder projections and LM
// heads stored as q8_0 or q4_0 blocks, so that loading maps them as they are (no conversion) and
// the folder is 3.5x (q8_0) to 6-7x (q4_0) smaller than f32 for the decoder. Everything else
// (embeddings, norms, T5, EnCodec, config.json, tokenizer files) is kept unchanged.
//
// Layout (docs/QUANTIZATION.md): one model.safetensors whose metadata has
// "musicgen.quantization": "q8_0" | "q4_0"; each quantized weight keeps its name and is a U8
// tensor [rows, K / 32 * block bytes] (kernels/quant.h's blocks, row after row); the other tensors
// keep their dtype, shape and bytes.
#pragma once

#include <string>

#include "kernels/tensor.h"

namespace mg {

// Whether the snapshot tensor `name` is one the decoder computes with as a quantized weight.
bool is_quantizable_decoder_weight(const std::string& name);

// Writes the quantized snapshot of the snapshot folder `src` (f32, f16 or bf16 weights) to the new
// folder `dst`, atomically: everything is written into a temporary folder next to `dst`, which is
// renamed to `dst` at the end (on failure nothing is left). `dst` must not exist yet.
// scheme: DType::Q8_0 or DType::Q4_0.
void quantize_snapshot(const std::string& src, const std::string& dst, DType scheme);

}  // namespace mg
