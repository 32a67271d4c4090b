// The EnCodec hyper-parameters, typed: every field of HF's EncodecConfig that the model maths
// reads (transformers/models/encodec/configuration_encodec.py), with the same names, defaults and
// derived properties, so that codec code can be read side by side with modeling_encodec.py.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "weights/json_config.h"

namespace mg {

enum class EncodecNorm { WeightNorm, TimeGroupNorm };  // HF norm_type "weight_norm" / "time_group_norm"

struct EncodecConfig {
  // Every key is optional, with the defaults of HF's EncodecConfig (encodec_24khz's values), as
  // transformers loads a config.json: a truncated config that transformers accepts loads here too,
  // and the weights' shapes catch a config that does not describe them.
  std::vector<double> target_bandwidths = {1.5, 3.0, 6.0, 12.0, 24.0};  // kbps, ascending; the last sets num_quantizers()
  int sampling_rate = 24000;
  int audio_channels = 1;
  std::vector<int> upsampling_ratios = {8, 5, 4, 2};  // decoder order; the encoder uses them reversed
  int codebook_size = 1024;

  bool normalize = false;                // per-chunk RMS renormalisation (48 kHz)
  std::optional<double> chunk_length_s;  // null: the whole signal is one chunk
  std::optional<double> overlap;
  int hidden_size = 128;  // latent dim (SEANet "dimension")
  int num_filters = 32;
  int num_residual_layers = 1;
  EncodecNorm norm_type = EncodecNorm::WeightNorm;
  int kernel_size = 7;
  int last_kernel_size = 7;
  int residual_kernel_size = 3;
  int dilation_growth_rate = 2;
  bool use_causal_conv = true;
  PadMode pad_mode = PadMode::Reflect;  // "reflect" (HF), "constant"/"zero" (audiocraft yaml)
  int compress = 2;                     // residual hidden = dim / compress
  int num_lstm_layers = 2;
  double trim_right_ratio = 1.0;
  int codebook_dim = 0;  // null in the json -> hidden_size
  bool use_conv_shortcut = true;

  // Derived exactly as HF's properties (same integer/float semantics).
  int hop_length() const;      // prod(upsampling_ratios)
  int frame_rate() const;      // ceil(sampling_rate / hop_length)
  int codebook_nbits() const;  // ceil(log2(codebook_size))
  int num_quantizers() const;  // for target_bandwidths.back()
  // EncodecResidualVectorQuantizer.get_num_quantizers_for_bandwidth: <= 0 means the maximum.
  int num_quantizers_for_bandwidth(double kbps) const;
  std::optional<int64_t> chunk_length() const;  // int(chunk_length_s * sampling_rate)
  std::optional<int64_t> chunk_stride() const;  // max(1, int((1 - overlap) * chunk_length))
};

const char* encodec_norm_name(EncodecNorm n);  // "weight_norm" / "time_group_norm"
const char* pad_mode_name(PadMode m);          // "reflect" / "constant" / "replicate"

// From the EnCodec object itself (HF encodec config.json, or MusicGen's "audio_encoder").
// Validates values (positive sizes, known norm/pad names) and names the key and source on error.
EncodecConfig encodec_config_from_json(const JsonConfig& j);

// `path` is a config.json or a folder holding one. A MusicGen config (one with an
// "audio_encoder" object) is accepted too: its audio_encoder is the EnCodec config.
EncodecConfig load_encodec_config(const std::string& path);
EncodecConfig load_encodec_config(const JsonConfig& j);

// Strictly a MusicGen / MusicGen-melody config.json (file or folder): its "audio_encoder".
EncodecConfig load_musicgen_audio_encoder_config(const std::string& path);

}  // namespace mg
