#include "lm/musicgen_config.h"

#include <filesystem>

namespace mg {

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
    c.num_chroma = j.opt<int>("num_chroma", 12);
    c.chroma_length = j.opt<int>("chroma_length", 235);
    MG_CHECK(c.num_chroma > 0 && c.chroma_length > 0, file, ": num_chroma and chroma_length must be positive");
  }
  JsonConfig d = j.sub("decoder");
  MusicgenDecoderConfig& m = c.decoder;
  // Missing keys take the defaults of HF's MusicgenDecoderConfig, as transformers loads them
  // (pad/bos: HF's default is 2048, which is vocab_size for every released model; vocab_size here
  // keeps a non-standard vocabulary consistent).
  m.vocab_size = d.opt<int>("vocab_size", 2048);
  m.max_position_embeddings = d.opt<int>("max_position_embeddings", 2048);
  m.num_hidden_layers = d.opt<int>("num_hidden_layers", 24);
  m.ffn_dim = d.opt<int>("ffn_dim", 4096);
  m.num_attention_heads = d.opt<int>("num_attention_heads", 16);
  m.hidden_size = d.opt<int>("hidden_size", 1024);
  m.num_codebooks = d.opt<int>("num_codebooks", 4);
  m.audio_channels = d.opt<int>("audio_channels", 1);
  m.pad_token_id = d.opt<int>("pad_token_id", m.vocab_size);
  m.bos_token_id = d.opt<int>("bos_token_id", m.vocab_size);
  MG_CHECK(m.vocab_size >= 2 && m.max_position_embeddings >= 1 && m.num_hidden_layers >= 1 && m.ffn_dim >= 1 &&
               m.num_attention_heads >= 1 && m.hidden_size >= 1 && m.num_codebooks >= 1,
           file, ": decoder sizes must be positive (vocab_size ", m.vocab_size, ", layers ", m.num_hidden_layers,
           ", heads ", m.num_attention_heads, ", hidden_size ", m.hidden_size, ", ffn_dim ", m.ffn_dim,
           ", num_codebooks ", m.num_codebooks, ")");
  MG_CHECK(m.hidden_size % m.num_attention_heads == 0, file, ": decoder.hidden_size ", m.hidden_size,
           " is not a multiple of num_attention_heads ", m.num_attention_heads);
  MG_CHECK(m.audio_channels == 1 || m.audio_channels == 2, file, ": decoder.audio_channels must be 1 or 2");
  MG_CHECK(m.audio_channels == 1 || m.num_codebooks % 2 == 0, file, ": a stereo decoder needs an even num_codebooks");
  MG_CHECK(!d.opt<bool>("scale_embedding", false), file, ": decoder.scale_embedding=true is not a MusicGen setting");
  const std::string act = d.opt<std::string>("activation_function", "gelu");
  MG_CHECK(act == "gelu", file, ": decoder.activation_function '", act, "' is not supported (MusicGen uses exact gelu)");
  c.text_encoder = t5_config_from_json(j.sub("text_encoder"));
  c.audio_encoder = load_encodec_config(j.sub("audio_encoder"));
  return c;
}

}  // namespace mg
