// LoRA adapters for the MusicGen decoder, in PEFT's format (adapter_config.json +
// adapter_model.safetensors), so that an adapter trained here loads in PEFT
// (PeftModel.from_pretrained) and one trained with PEFT loads here.
//
// What an adapter is: for each targeted linear layer W [out, in] of a decoder layer, two matrices
// A [r, in] and B [out, r] (PEFT's lora_A.weight / lora_B.weight, nn.Linear layout), and the
// layer computes y = x W^T + scale * (x A^T) B^T with scale = lora_alpha / r. For inference the
// adapter is merged into the weights once at load: W' = W + scale * B A, computed in f32 on the
// checkpoint's weights BEFORE they are concatenated (q|k|v, cross k|v), converted to f16/bf16 or
// quantized, so every weight format sees the same merged matrix.
//
// Targets are the decoder's linear layers only (HF MusicgenDecoderLayer names):
//   self_attn.{q,k,v,out}_proj, encoder_attn.{q,k,v,out}_proj (not in melody models), fc1, fc2.
// Tensor names as PEFT writes them (adapter name "default" removed), with the module prefix of the
// class PEFT wrapped:
//   MusicgenForConditionalGeneration / MusicgenMelodyForConditionalGeneration (full snapshots):
//     base_model.model.decoder.model.decoder.layers.<l>.<module>.lora_{A,B}.weight
//   MusicgenForCausalLM (the decoder alone):
//     base_model.model.model.decoder.layers.<l>.<module>.lora_{A,B}.weight
// Both are read; save_peft_adapter writes the layout recorded in the adapter (full snapshots by
// default).
//
// Refused with a clear error (PEFT features whose maths differs from plain LoRA): use_rslora
// (scale alpha / sqrt(r)), use_dora, bias other than "none", fan_in_fan_out, modules_to_save,
// rank_pattern / alpha_pattern, target modules outside the decoder's linear layers, and any
// lora_* tensor whose module or shape does not fit the model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/tensor.h"
#include "lm/musicgen_config.h"
#include "weights/safetensors.h"

namespace mg {

// The linear layers of a decoder layer an adapter may target.
enum class LoraModule { SelfQ, SelfK, SelfV, SelfO, CrossQ, CrossK, CrossV, CrossO, Fc1, Fc2 };

// Every module, in the order above (the order tensors are saved and merged in).
const std::vector<LoraModule>& all_lora_modules();
// The module's name inside a decoder layer, as HF names it: "self_attn.q_proj", "encoder_attn.out_proj",
// "fc1", ... (what PEFT's target_modules hold when we write them).
const char* lora_module_name(LoraModule m);
// The inverse of lora_module_name; also accepts nothing else. Unknown is an error naming the name
// and the known ones.
LoraModule lora_module_from_name(const std::string& name);
// The base weight's shape [out, in] for the model: D x D for the attention projections,
// fc1 [ffn_dim, D], fc2 [D, ffn_dim].
Shape lora_module_shape(LoraModule m, const MusicgenDecoderConfig& cfg);
bool lora_module_is_cross(LoraModule m);

// musicgen-cli's --targets list: comma-separated words from
//   q, k, v, o   -> self_attn.{q,k,v,out}_proj
//   cross        -> encoder_attn.{q,k,v,out}_proj
//   ffn          -> fc1, fc2
//   all          -> every module above
// Duplicates collapse; order follows all_lora_modules(). Unknown or empty words are an error that
// lists the accepted ones.
std::vector<LoraModule> parse_lora_targets(const std::string& list);

// Which HF class PEFT wrapped: decides the tensor-name prefix (see the top of this file).
enum class PeftLayout { ConditionalGeneration, CausalLM };
// "base_model.model.decoder.model.decoder.layers." or "base_model.model.model.decoder.layers."
const char* peft_layer_prefix(PeftLayout layout);

// adapter_config.json, the fields we use. Others PEFT writes are kept on save with PEFT's defaults.
struct LoraConfig {
  int r = 8;                         // rank, >= 1
  float lora_alpha = 16.0f;          // scale = lora_alpha / r
  float lora_dropout = 0.0f;         // training only: dropout on the LoRA branch's input, [0, 1)
  std::vector<LoraModule> targets;   // the modules adapted (saved as target_modules: their names)
  std::string base_model_name_or_path;  // informational, as PEFT; written on save
  PeftLayout layout = PeftLayout::ConditionalGeneration;
  // The decoder's shape the adapter was made for (lora_model_signature), kept in the safetensors
  // metadata ("musicgen.base_model", which PEFT ignores): a model of the same layer shapes but
  // another kind (mono vs stereo codebooks) is then refused instead of merged. "" = unknown (PEFT's
  // own files), then only the shapes are checked. init_lora_adapter sets it.
  std::string base_model_signature;
  float scale() const { return lora_alpha / float(r); }
};

// One adapted module of one decoder layer. A [r, in], B [out, r]: host f32 tensors.
struct LoraWeights {
  int layer = 0;
  LoraModule module = LoraModule::SelfQ;
  Tensor A, B;
};

struct LoraAdapter {
  LoraConfig config;
  // Sorted by (layer, module order of all_lora_modules()); at most one entry per pair.
  std::vector<LoraWeights> weights;
  // The entry for (layer, module), or nullptr when that module is not adapted in that layer.
  const LoraWeights* find(int layer, LoraModule module) const;
  LoraWeights* find(int layer, LoraModule module);
};

// "layers=24 hidden=1024 ffn=4096 heads=16 codebooks=4 channels=1 vocab=2048 cross=1".
std::string lora_model_signature(const MusicgenDecoderConfig& model, bool cross_attention);

// A fresh adapter as PEFT initialises one (init_lora_weights=True): every target module of every
// layer gets A ~ kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)), and B = 0, so the
// adapted model starts equal to the base model. Deterministic for a seed. Cross-attention targets
// on a model without cross-attention (melody) are an error.
LoraAdapter init_lora_adapter(const LoraConfig& config, const MusicgenDecoderConfig& model, bool cross_attention,
                              uint64_t seed);

// Checks the adapter against a model: the signature when the adapter has one, every layer index <
// num_hidden_layers, A [r, in] and B [out, r] with [out, in] = lora_module_shape, no cross-attention
// module on a model without cross-attention. Errors name the tensor (PEFT name), the expected and the found shape, and say
// that the adapter was made for another model.
void check_lora_adapter(const LoraAdapter& adapter, const MusicgenDecoderConfig& model, bool cross_attention);

// Reads DIR/adapter_config.json and DIR/adapter_model.safetensors (PEFT's files; A and B in any
// float dtype, converted to f32). Errors: a missing file or folder, peft_type other than LORA, the
// refused features above, an unknown target module, a lora tensor outside the decoder layers, an
// A without its B, ranks that differ from r. Shapes against the model: check_lora_adapter.
LoraAdapter load_peft_adapter(const std::string& dir);

// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (f32) as PEFT does, creating
// DIR if needed; each file is written to a temporary name and renamed (AtomicFile), the weights
// first, so a reader never sees half a file. The tensor names and dtype are PEFT's; the config
// holds the fields of a plain LoRA adapter that PEFT has read since 0.9, with the values PEFT
// writes (tests/parity/lora_parity_test.cpp compares with PEFT 0.21's files), and the safetensors
// metadata {"format": "pt", "musicgen.base_model": signature}.
void save_peft_adapter(const std::string& dir, const LoraAdapter& adapter);

// W' = W + scale * B A for one base weight. W: host [out, in], any float dtype (read as f32);
// returns a new host f32 tensor (W itself is never written: it may be a read-only mmap). Shapes
// must match (an error names the module and layer). scale = adapter scale * user scale.
Tensor merge_lora_weight(const Tensor& W, const LoraWeights& lw, float scale);

// The weight a decoder load should use for (layer, module): W unchanged (no copy) when the module
// is not adapted or scale is 0, else merge_lora_weight(W, ..., adapter.config.scale() * user_scale).
// `adapter` may be null (no adapter). This is the single place the decoder load merges: it is
// called on the checkpoint's tensors before concatenation, dtype conversion or quantization.
Tensor lora_merged_weight(const Tensor& W, const LoraAdapter* adapter, float user_scale, int layer, LoraModule module);

// A MusicGen snapshot's weights (seen from its root) with the adapter merged: check_lora_adapter,
// then every adapted "decoder.model.decoder.layers.<l>.<module>.weight" replaced by its f32 merge
// (WeightStore::with_replaced), so load_musicgen_decoder concatenates, converts or quantizes the
// merged weights as it would stored ones. A quantized snapshot is refused (merge into the f32/f16
// snapshot, then quantize at load).
WeightStore merge_lora_into(const WeightStore& snapshot, const LoraAdapter& adapter, float user_scale,
                            const MusicgenDecoderConfig& model, bool cross_attention);

}  // namespace mg
