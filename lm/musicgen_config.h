// A MusicGen snapshot's config.json, typed: the decoder (HF MusicgenDecoderConfig), the text
// encoder (T5) and the audio encoder (EnCodec 32 kHz). Every shape the model uses comes from here.
#pragma once

#include <string>
#include <vector>

#include "codec/encodec_config.h"
#include "conditioning/t5.h"

namespace mg {

struct MusicgenDecoderConfig {
  int vocab_size = 2048;            // codes per codebook; the special token is vocab_size
  int max_position_embeddings = 2048;
  int num_hidden_layers = 24;
  int ffn_dim = 4096;
  int num_attention_heads = 16;
  int hidden_size = 1024;
  int num_codebooks = 4;
  int audio_channels = 1;           // 2: stereo, codebooks interleaved L/R
  int pad_token_id = 2048;
  int bos_token_id = 2048;
};

struct MusicgenConfig {
  std::string model_type;           // "musicgen" or "musicgen_melody"
  bool melody = false;              // melody models: [chroma || text] prefix, no cross-attention
  int num_chroma = 12;              // melody only
  int chroma_length = 235;          // melody only: prefix frames of chroma (30 s at hop 4096)
  MusicgenDecoderConfig decoder;
  T5Config text_encoder;
  EncodecConfig audio_encoder;
  // Delay of each codebook: k for mono, k/2 for stereo (0,0,1,1,2,2,3,3), as HF builds its mask.
  std::vector<int> delays() const;
  int max_delay() const;
  int frame_rate() const { return audio_encoder.frame_rate(); }
};

// `path`: config.json or the snapshot folder. Errors name the key and the file.
MusicgenConfig load_musicgen_config(const std::string& path);

}  // namespace mg
