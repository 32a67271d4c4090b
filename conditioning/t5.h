// The T5 encoder (HF T5EncoderModel, as MusicGen's text conditioner uses it): shared embedding,
// pre-RMSNorm blocks with relative-position-biased self-attention (bias table of block 0 shared by
// all blocks, NO 1/sqrt(d) scaling) and a ReLU feed-forward, then a final RMSNorm.
#pragma once

#include <string>
#include <vector>

#include "kernels/ops.h"
#include "weights/json_config.h"
#include "weights/safetensors.h"

namespace mg {

struct T5Config {
  int vocab_size = 32128;
  int d_model = 768;
  int d_kv = 64;
  int d_ff = 3072;
  int num_layers = 12;
  int num_heads = 12;
  int relative_attention_num_buckets = 32;
  int relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  std::string feed_forward_proj = "relu";
  int eos_token_id = 1;
};

// From a T5 config object (e.g. MusicGen's "text_encoder"). Only the ReLU (non-gated) feed-forward
// of t5-base is supported; anything else is an error naming the value.
T5Config t5_config_from_json(const JsonConfig& j);

// HF's _relative_position_bucket for the bidirectional encoder: rel = key_pos - query_pos.
int t5_relative_position_bucket(int64_t rel, int num_buckets, int max_distance);

struct T5Block {
  Tensor ln_attn, q, k, v, o;  // RMSNorm weight, projections [inner, d_model] / [d_model, inner]
  Tensor ln_ff, wi, wo;
};

struct T5Encoder {
  T5Config cfg;
  Tensor embed;                // [vocab, d_model]
  Tensor rel_bias;             // [buckets, heads] (host: the bias is built on the host per length)
  std::vector<T5Block> blocks;
  Tensor final_ln;
};

// `weights` is seen through the text encoder's prefix (e.g. "text_encoder.").
T5Encoder load_t5_encoder(Backend& be, const WeightStore& weights, const T5Config& cfg);

// ids (one prompt, all attended) -> last_hidden_state [T, d_model] on the device.
Tensor t5_encode(Backend& be, const T5Encoder& enc, const std::vector<int>& ids);

// Several prompts in one pass (a server's requests that start together): each prompt's
// last_hidden_state, the same bits as t5_encode gives it alone. On the CPU, prompts of at most
// kT5RowsPerCall tokens share their linears, in calls of up to kT5RowsPerCall rows that may cut
// across prompts: the CPU GEMV gives a row the same bits for any row count up to there
// (kernels/cpu/linear.cpp), and a prompt that short takes the GEMV alone too, so a weight read
// serves several prompts. Longer prompts (sgemm, whose blocking changes the bits with the row
// count) and other backends run their linears prompt by prompt. Attention is per prompt.
constexpr int64_t kT5RowsPerCall = 16;
std::vector<Tensor> t5_encode_batch(Backend& be, const T5Encoder& enc, const std::vector<std::vector<int>>& prompts);

}  // namespace mg
