#include "lm/musicgen_config.h"

#include <filesystem>

namespace mg {

namespace {

// Upper bounds of the decoder's sizes: far above every released model (musicgen-large: hidden
// 2048, ffn 8192, 48 layers, 32 heads, 4 or 8 codebooks, 2048 positions), low enough that sizes
// multiplied together stay far from int64 overflow.
constexpr int kMaxHidden = 65536;
constexpr int kMaxFfn = 4 * kMaxHidden;
constexpr int kMaxLayers = 1024;
constexpr int kMaxCodebooks = 64;
constexpr int kMaxVocab = 1 << 20;
constexpr int kMaxPositions = 65536;
constexpr int kMaxChroma = 128;

}  // namespace

std::vector<int> MusicgenConfig::delays() const {
  std::vector<int> d(decoder.num_codebooks);
  for (int k = 0; k < decoder.num_codebooks; ++k) d[k] = decoder.audio_channels == 2 ? k / 2 : k;
  return d;
}

int MusicgenConfig::max_delay() const {
  const std::vector<int> d = delays();
  return d.empty() ? 0 : d.back();
}

MusicgenConfig load_musicgen_config(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "config.json").string();
  JsonConfig j = JsonConfig::load(file);
  MusicgenConfig c;
  c.model_type = j.opt<std::string>("model_type", "musicgen");
  MG_CHECK(c.model_type == "musicgen" || c.model_type == "musicgen_melody", file, ": model_type '", c.model_type,
           "' is not a MusicGen model (expected \"musicgen\" or \"musicgen_melody\")");
  c.melody = c.model_type == "musicgen_melody";
  if (c.melody) {
    c.num_chroma = j.opt_in<int>("num_chroma", 12, 1, kMaxChroma);
    c.chroma_length = j.opt_in<int>("chroma_length", 235, 1, kMaxPositions);
  }
  JsonConfig d = j.sub("decoder");
  MusicgenDecoderConfig& m = c.decoder;
  // Missing keys take the defaults of HF's MusicgenDecoderConfig, as transformers loads them
  // (pad/bos: HF's default is 2048, which is vocab_size for every released model; vocab_size here
  // keeps a non-standard vocabulary consistent). Every size is bounded, so that a hostile config
  // is an error naming the key, not a division by zero, an empty table or an absurd allocation.
  m.vocab_size = d.opt_in<int>("vocab_size", 2048, 2, kMaxVocab);
  m.max_position_embeddings = d.opt_in<int>("max_position_embeddings", 2048, 1, kMaxPositions);
  m.num_hidden_layers = d.opt_in<int>("num_hidden_layers", 24, 1, kMaxLayers);
  m.ffn_dim = d.opt_in<int>("ffn_dim", 4096, 1, kMaxFfn);
  m.hidden_size = d.opt_in<int>("hidden_size", 1024, 1, kMaxHidden);
  m.num_attention_heads = d.opt_in<int>("num_attention_heads", 16, 1, m.hidden_size);
  m.num_codebooks = d.opt_in<int>("num_codebooks", 4, 1, kMaxCodebooks);
  m.audio_channels = d.opt_in<int>("audio_channels", 1, 1, 2);
  m.pad_token_id = d.opt_in<int>("pad_token_id", m.vocab_size, 0, m.vocab_size);
  m.bos_token_id = d.opt_in<int>("bos_token_id", m.vocab_size, 0, m.vocab_size);
  MG_CHECK(m.hidden_size % m.num_attention_heads == 0, "key '", d.key_path("num_attention_heads"), "' in ", file,
           ": must divide decoder.hidden_size ", m.hidden_size, ", found ", m.num_attention_heads);
  MG_CHECK(m.audio_channels == 1 || m.num_codebooks % 2 == 0, file, ": a stereo decoder needs an even num_codebooks");
  MG_CHECK(!d.opt<bool>("scale_embedding", false), file, ": decoder.scale_embedding=true is not a MusicGen setting");
  const std::string act = d.opt<std::string>("activation_function", "gelu");
  MG_CHECK(act == "gelu", file, ": decoder.activation_function '", act, "' is not supported (MusicGen uses exact gelu)");
  c.text_encoder = t5_config_from_json(j.sub("text_encoder"));
  c.audio_encoder = load_encodec_config(j.sub("audio_encoder"));
  return c;
}

}  // namespace mg
