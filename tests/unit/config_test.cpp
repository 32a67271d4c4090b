// JsonConfig error texts, and the three HF EnCodec configs parsed into EncodecConfig with HF's
// derived values. Traps pinned here: frame_rate is a ceil and num_quantizers a Python float floor
// division (32 kHz: 1000*2.2 = 2200.0000000000005 // 550 must give 4); use_conv_shortcut is absent
// from the 24/48 kHz files and must default to true, while 32 kHz says false (the skip is an
// identity there); codebook_dim null/absent falls back to hidden_size.
#include <fstream>
#include <cmath>
#include <functional>
#include <limits>

#include "codec/encodec_config.h"
#include "lm/musicgen_config.h"
#include "test_util.h"
#include "weights/json_config.h"

namespace {

std::string config_path(const std::string& name) { return mgtest::data_dir() + "/configs/" + name; }

std::string write_file(const std::string& name, const std::string& text) {
  std::string path = mgtest::temp_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

using mgtest::error_of;

#define EXPECT_HAS(msg, needle) EXPECT_NE((msg).find(needle), std::string::npos) << (msg)

TEST(JsonConfig, NotJsonNamesFileAndPosition) {
  std::string path = write_file("broken.json", "{\n  \"a\": 1,\n  \"b\": [1, 2\n}\n");
  std::string msg = error_of([&] { mg::JsonConfig::load(path); });
  EXPECT_HAS(msg, "broken.json");
  EXPECT_HAS(msg, "not valid JSON");
  EXPECT_HAS(msg, "line 4");
  msg = error_of([&] { mg::JsonConfig::load(mgtest::temp_dir() + "/nope.json"); });
  EXPECT_HAS(msg, "cannot open");
  EXPECT_HAS(msg, "nope.json");
  msg = error_of([&] { mg::JsonConfig::parse("[1, 2]", "list.json"); });
  EXPECT_HAS(msg, "list.json");
  EXPECT_HAS(msg, "object");
  msg = error_of([&] { mg::JsonConfig::parse("", "empty.json"); });
  EXPECT_HAS(msg, "empty.json");
}

TEST(JsonConfig, RequiredOptionalAndTypes) {
  mg::JsonConfig j = mg::JsonConfig::parse(
      R"({"i": 3, "f": 2.5, "s": "x", "b": true, "n": null, "v": [1, 2], "o": {"k": 1.0}, "big": 1e300,
          "extra_unknown_key": {"ignored": true}})",
      "cfg.json");
  EXPECT_EQ(j.req<int>("i"), 3);
  EXPECT_EQ(j.req<double>("i"), 3.0);  // an int is a fine number
  EXPECT_EQ(j.req<double>("f"), 2.5);
  EXPECT_EQ(j.req<std::string>("s"), "x");
  EXPECT_TRUE(j.req<bool>("b"));
  EXPECT_EQ(j.req<std::vector<int>>("v"), (std::vector<int>{1, 2}));
  EXPECT_EQ(j.opt<int>("missing", 7), 7);
  EXPECT_EQ(j.opt<int>("n", 7), 7);  // null means "use the default", as HF writes absent optionals
  EXPECT_FALSE(j.maybe<double>("n").has_value());
  EXPECT_TRUE(j.has("i"));
  EXPECT_FALSE(j.has("n"));
  EXPECT_FALSE(j.has("missing"));
  EXPECT_EQ(j.sub("o").req<double>("k"), 1.0);

  std::string msg = error_of([&] { j.req<int>("missing"); });
  EXPECT_HAS(msg, "missing required key 'missing'");
  EXPECT_HAS(msg, "integer");
  EXPECT_HAS(msg, "cfg.json");
  msg = error_of([&] { j.req<int>("f"); });  // 2.5 is not an integer
  EXPECT_HAS(msg, "key 'f' in cfg.json: expected integer, found number 2.5");
  msg = error_of([&] { j.req<int>("s"); });
  EXPECT_HAS(msg, "expected integer, found string");
  msg = error_of([&] { j.opt<bool>("i", false); });  // wrong type is never silently the default
  EXPECT_HAS(msg, "key 'i' in cfg.json: expected boolean");
  msg = error_of([&] { j.req<std::vector<std::string>>("v"); });
  EXPECT_HAS(msg, "expected array of string");
  msg = error_of([&] { j.req<int>("n"); });
  EXPECT_HAS(msg, "'n' is null");
  msg = error_of([&] { j.sub("o").req<std::string>("k"); });  // nested keys are named by path
  EXPECT_HAS(msg, "key 'o.k' in cfg.json");
  msg = error_of([&] { j.sub("i"); });
  EXPECT_HAS(msg, "expected object");
  msg = error_of([&] { j.req<float>("big"); });
  EXPECT_EQ(msg, "(no error)");  // floats read as numbers; range is the caller's concern
  mg::JsonConfig k = mg::JsonConfig::parse(R"({"x": 4294967296})", "k.json");
  msg = error_of([&] { k.req<int>("x"); });  // does not fit an int: refused, not truncated
  EXPECT_HAS(msg, "expected integer");
}

struct Expected {
  const char* file;
  int sr, channels, hop, frame_rate, n_q, codebook_size, num_filters;
  bool causal, conv_shortcut, normalize;
  mg::EncodecNorm norm;
  int64_t chunk, stride;  // -1: none
};

TEST(EncodecConfig, HubConfigsParseToHfDerivedValues) {
  const Expected cases[] = {
      {"encodec_24khz.json", 24000, 1, 320, 75, 32, 1024, 32, true, true, false, mg::EncodecNorm::WeightNorm,
       -1, -1},
      {"encodec_32khz.json", 32000, 1, 640, 50, 4, 2048, 64, false, false, false, mg::EncodecNorm::WeightNorm,
       -1, -1},
      {"encodec_48khz.json", 48000, 2, 320, 150, 16, 1024, 32, false, true, true,
       mg::EncodecNorm::TimeGroupNorm, 48000, 47520},
  };
  for (const auto& e : cases) {
    SCOPED_TRACE(e.file);
    mg::EncodecConfig c = mg::load_encodec_config(config_path(e.file));
    EXPECT_EQ(c.sampling_rate, e.sr);
    EXPECT_EQ(c.audio_channels, e.channels);
    EXPECT_EQ(c.hop_length(), e.hop);
    EXPECT_EQ(c.frame_rate(), e.frame_rate);
    EXPECT_EQ(c.num_quantizers(), e.n_q);
    EXPECT_EQ(c.codebook_size, e.codebook_size);
    EXPECT_EQ(c.num_filters, e.num_filters);
    EXPECT_EQ(c.use_causal_conv, e.causal);
    EXPECT_EQ(c.use_conv_shortcut, e.conv_shortcut);
    EXPECT_EQ(c.normalize, e.normalize);
    EXPECT_EQ(c.norm_type, e.norm);
    EXPECT_EQ(c.chunk_length().value_or(-1), e.chunk);
    EXPECT_EQ(c.chunk_stride().value_or(-1), e.stride);
    EXPECT_EQ(c.hidden_size, 128);
    EXPECT_EQ(c.codebook_dim, 128);
    EXPECT_EQ(c.pad_mode, mg::PadMode::Reflect);
    EXPECT_EQ(c.kernel_size, 7);
    EXPECT_EQ(c.last_kernel_size, 7);
    EXPECT_EQ(c.residual_kernel_size, 3);
    EXPECT_EQ(c.compress, 2);
    EXPECT_EQ(c.num_lstm_layers, 2);
    EXPECT_EQ(c.dilation_growth_rate, 2);
    EXPECT_EQ(c.trim_right_ratio, 1.0);
  }
  // HF's default bandwidth is target_bandwidths[0]: 24 kHz at 1.5 kbps uses 2 codebooks, 6 kbps 8.
  mg::EncodecConfig c24 = mg::load_encodec_config(config_path("encodec_24khz.json"));
  EXPECT_EQ(c24.num_quantizers_for_bandwidth(1.5), 2);
  EXPECT_EQ(c24.num_quantizers_for_bandwidth(6.0), 8);
  EXPECT_EQ(c24.num_quantizers_for_bandwidth(24.0), 32);
  EXPECT_EQ(c24.num_quantizers_for_bandwidth(0.0), 32);
  EXPECT_EQ(c24.codebook_nbits(), 10);
}

// The smallest config HF would accept from us: required keys only, the rest take HF defaults.
const char* kMinimal =
    R"({"sampling_rate": 16000, "audio_channels": 1, "upsampling_ratios": [4, 4], "codebook_size": 256,
        "target_bandwidths": [16.0], "some_future_key": [1, {"x": null}], "codebook_dim": null})";

TEST(EncodecConfig, DefaultsAndUnknownKeys) {
  mg::EncodecConfig c = mg::load_encodec_config(mg::JsonConfig::parse(kMinimal, "minimal.json"));
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.codebook_dim, 128);  // null -> hidden_size
  EXPECT_EQ(c.num_filters, 32);
  EXPECT_TRUE(c.use_causal_conv);
  EXPECT_TRUE(c.use_conv_shortcut);
  EXPECT_EQ(c.pad_mode, mg::PadMode::Reflect);
  EXPECT_EQ(c.norm_type, mg::EncodecNorm::WeightNorm);
  EXPECT_EQ(c.frame_rate(), 1000);
  EXPECT_EQ(c.num_quantizers(), 2);  // 16000 // (1000 frames/s * 8 bits)
}

// The requirement changed: keys used to be required (a truncated config.json was an error); now,
// as transformers' EncodecConfig does, every missing key takes HF's default (encodec_24khz's
// values), and only present keys of the wrong type or out of range are refused.
TEST(EncodecConfig, MissingKeysTakeHfDefaultsWrongTypesAreRefused) {
  mg::EncodecConfig d = mg::load_encodec_config(mg::JsonConfig::parse(R"({"audio_channels": 1})", "short.json"));
  EXPECT_EQ(d.sampling_rate, 24000);
  EXPECT_EQ(d.audio_channels, 1);
  EXPECT_EQ(d.codebook_size, 1024);
  EXPECT_EQ(d.upsampling_ratios, (std::vector<int>{8, 5, 4, 2}));
  EXPECT_EQ(d.target_bandwidths, (std::vector<double>{1.5, 3.0, 6.0, 12.0, 24.0}));
  EXPECT_EQ(d.num_quantizers(), 32);
  mg::EncodecConfig no_sr = mg::load_encodec_config(write_file("no_sr.json", R"({"target_bandwidths": [1.5],
      "audio_channels": 1, "upsampling_ratios": [320], "codebook_size": 16})"));
  EXPECT_EQ(no_sr.sampling_rate, 24000);
  EXPECT_EQ(no_sr.num_quantizers(), 5);  // 1500 // (75 frames/s * 4 bits)
  std::string msg;
  msg = error_of([] {
    mg::load_encodec_config(mg::JsonConfig::parse(
        R"({"sampling_rate": "24000", "audio_channels": 1, "upsampling_ratios": [2], "codebook_size": 16,
            "target_bandwidths": [1.5]})",
        "str_sr.json"));
  });
  EXPECT_HAS(msg, "key 'sampling_rate' in str_sr.json: expected integer, found string");
  msg = error_of([] {
    mg::load_encodec_config(mg::JsonConfig::parse(
        R"({"sampling_rate": 8000, "audio_channels": 1, "upsampling_ratios": [2, 2.5], "codebook_size": 16,
            "target_bandwidths": [1.5]})",
        "ratios.json"));
  });
  EXPECT_HAS(msg, "upsampling_ratios");
  EXPECT_HAS(msg, "array of integer");
}

TEST(EncodecConfig, BadValues) {
  auto with = [](const std::string& extra) {
    std::string text = R"({"sampling_rate": 8000, "audio_channels": 1, "upsampling_ratios": [2],
                          "codebook_size": 16, "target_bandwidths": [64.0])" +
                       extra + "}";
    return error_of([&] { mg::load_encodec_config(mg::JsonConfig::parse(text, "bad.json")); });
  };
  EXPECT_EQ(with(""), "(no error)");
  EXPECT_HAS(with(R"(, "norm_type": "layer_norm")"),
             "'norm_type' in bad.json: unsupported value 'layer_norm'");
  EXPECT_HAS(with(R"(, "pad_mode": "circular")"), "'pad_mode' in bad.json: unsupported value 'circular'");
  EXPECT_HAS(with(R"(, "num_filters": 0)"), "key 'num_filters' in bad.json: must be in [1, 65536], found 0");
  EXPECT_HAS(with(R"(, "overlap": 1.5, "chunk_length_s": 1.0)"), "'overlap'");
  EXPECT_HAS(with(R"(, "model_type": "musicgen")"), "expected 'encodec'");
  // 0.001 kbps at 4000 frames/s x 4 bits cannot fund one codebook.
  std::string msg = error_of([] {
    mg::load_encodec_config(mg::JsonConfig::parse(
        R"({"sampling_rate": 8000, "audio_channels": 1, "upsampling_ratios": [2], "codebook_size": 16,
            "target_bandwidths": [0.001]})",
        "tiny_bw.json"));
  });
  EXPECT_HAS(msg, "gives no codebook");
  // audiocraft's yaml spelling of zero padding is accepted.
  mg::EncodecConfig c = mg::load_encodec_config(mg::JsonConfig::parse(
      R"({"sampling_rate": 8000, "audio_channels": 1, "upsampling_ratios": [2], "codebook_size": 16,
          "target_bandwidths": [64.0], "pad_mode": "constant"})",
      "ok.json"));
  EXPECT_EQ(c.pad_mode, mg::PadMode::Constant);
}

TEST(EncodecConfig, MusicgenAudioEncoderSubObject) {
  std::ifstream in(config_path("encodec_32khz.json"));
  std::string codec((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string text =
      R"({"model_type": "musicgen", "decoder": {"num_codebooks": 4}, "audio_encoder": )" + codec + "}";
  std::string path = write_file("musicgen_config.json", text);
  mg::EncodecConfig c = mg::load_musicgen_audio_encoder_config(path);
  EXPECT_EQ(c.hop_length(), 640);
  EXPECT_EQ(c.num_quantizers(), 4);
  EXPECT_EQ(mg::load_encodec_config(path).frame_rate(), 50);  // found automatically too
  // Errors inside the sub-object name it by path (a missing key is no error: it takes HF's default).
  std::string broken = R"({"audio_encoder": {"sampling_rate": 32000, "codebook_size": "many"}})";
  std::string msg =
      error_of([&] { mg::load_musicgen_audio_encoder_config(write_file("mg_broken.json", broken)); });
  EXPECT_HAS(msg, "'audio_encoder.");
  EXPECT_HAS(msg, "mg_broken.json");
  msg = error_of([&] { mg::load_musicgen_audio_encoder_config(config_path("encodec_32khz.json")); });
  EXPECT_HAS(msg, "missing required key 'audio_encoder'");
}

// ---- hostile values: each is an error naming the key, the file and the range, never a crash ----

// The tiny MusicGen config with one value replaced ("decoder.num_codebooks" -> value), written to
// a temp file and loaded; returns the error ("(no error)" when it loads).
std::string musicgen_with(const std::string& dotted, const nlohmann::json& value) {
  std::ifstream in(mgtest::data_dir() + "/models/musicgen_tiny/config.json");
  nlohmann::json j = nlohmann::json::parse(in);
  nlohmann::json* at = &j;
  std::string rest = dotted;
  for (size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1))
    at = &(*at)[rest.substr(0, dot)];
  (*at)[rest] = value;
  const std::string path = write_file("hostile_config.json", j.dump());
  return error_of([&] { mg::load_musicgen_config(path); });
}

void expect_range_error(const std::string& key, const nlohmann::json& value, const std::string& range) {
  const std::string msg = musicgen_with(key, value);
  EXPECT_HAS(msg, "key '" + key + "'");
  EXPECT_HAS(msg, "hostile_config.json");
  EXPECT_HAS(msg, "must be in " + range);
}

TEST(MusicgenConfigLimits, TinyConfigLoads) { EXPECT_EQ(musicgen_with("decoder.num_codebooks", 4), "(no error)"); }

TEST(MusicgenConfigLimits, NumCodebooks) {
  for (int v : {0, -1, std::numeric_limits<int>::min(), 65}) expect_range_error("decoder.num_codebooks", v, "[1, 64]");
}

TEST(MusicgenConfigLimits, HeadsZeroAndNotDividing) {
  expect_range_error("decoder.num_attention_heads", 0, "[1, 24]");
  expect_range_error("decoder.num_attention_heads", -4, "[1, 24]");  // it used to fail later as a shape error
  const std::string msg = musicgen_with("decoder.num_attention_heads", 5);
  EXPECT_HAS(msg, "key 'decoder.num_attention_heads'");
  EXPECT_HAS(msg, "must divide decoder.hidden_size 24, found 5");
}

TEST(MusicgenConfigLimits, DecoderSizes) {
  expect_range_error("decoder.hidden_size", 65537, "[1, 65536]");
  expect_range_error("decoder.num_hidden_layers", 0, "[1, 1024]");
  expect_range_error("decoder.num_hidden_layers", 1025, "[1, 1024]");
  expect_range_error("decoder.vocab_size", (1 << 20) + 1, "[2, 1048576]");
  expect_range_error("decoder.ffn_dim", -4, "[1, 262144]");
  expect_range_error("decoder.max_position_embeddings", 0, "[1, 65536]");
  expect_range_error("decoder.audio_channels", 3, "[1, 2]");
  expect_range_error("decoder.bos_token_id", 4096, "[0, 2048]");
}

TEST(MusicgenConfigLimits, TextEncoder) {
  expect_range_error("text_encoder.num_heads", 0, "[1, 8192]");
  expect_range_error("text_encoder.d_model", 0, "[1, 65536]");
  expect_range_error("text_encoder.num_layers", 2000, "[1, 1024]");
  expect_range_error("text_encoder.relative_attention_num_buckets", 2, "[4, 1024]");
  expect_range_error("text_encoder.relative_attention_max_distance", 8, "[9, 1048576]");
  expect_range_error("text_encoder.layer_norm_epsilon", 2.0, "[0, 1]");
}

TEST(MusicgenConfigLimits, AudioEncoder) {
  expect_range_error("audio_encoder.sampling_rate", std::numeric_limits<int>::max(), "[1, 384000]");
  expect_range_error("audio_encoder.sampling_rate", 0, "[1, 384000]");
  expect_range_error("audio_encoder.kernel_size", 100000, "[1, 1024]");
  expect_range_error("audio_encoder.upsampling_ratios", nlohmann::json::array({8, 0, 4}), "[1, 1024]");
  EXPECT_HAS(musicgen_with("audio_encoder.upsampling_ratios", nlohmann::json::array({1024, 1024, 2})),
             "the product of the ratios must be at most 1048576");
  EXPECT_HAS(musicgen_with("audio_encoder.target_bandwidths", nlohmann::json::array({1e300})),
             "each must be in (0, 10000] kbps");
  expect_range_error("audio_encoder.dilation_growth_rate", 2000, "[1, 1024]");
  // Each value in range, their product not: 1024^(3 - 1) x 3 > 2^20.
  nlohmann::json ae = nlohmann::json::parse(std::ifstream(mgtest::data_dir() + "/models/musicgen_tiny/config.json"));
  ae["audio_encoder"]["dilation_growth_rate"] = 1024;
  ae["audio_encoder"]["num_residual_layers"] = 3;
  const std::string path = write_file("hostile_dilation.json", ae.dump());
  EXPECT_HAS(error_of([&] { mg::load_musicgen_config(path); }),
             "key 'audio_encoder.dilation_growth_rate' in " + path + ": dilation_growth_rate^(num_residual_layers");
  expect_range_error("audio_encoder.compress", 3, "[1, 2]");  // num_filters 2: no channel left
}

TEST(MusicgenConfigLimits, Melody) {
  nlohmann::json j = nlohmann::json::parse(std::ifstream(mgtest::data_dir() + "/models/musicgen_melody_tiny/config.json"));
  for (const char* key : {"num_chroma", "chroma_length"}) {
    nlohmann::json bad = j;
    bad[key] = 0;
    const std::string path = write_file("hostile_melody.json", bad.dump());
    const std::string msg = error_of([&] { mg::load_musicgen_config(path); });
    EXPECT_HAS(msg, std::string("key '") + key + "' in " + path + ": must be in [1, ");
  }
}

TEST(EncodecConfigLimits, BandwidthRequest) {
  const mg::EncodecConfig c = mg::load_encodec_config(config_path("encodec_24khz.json"));
  EXPECT_HAS(error_of([&] { c.num_quantizers_for_bandwidth(std::nan("")); }), "bandwidth must be a finite number");
  EXPECT_EQ(c.num_quantizers_for_bandwidth(0.0), c.num_quantizers());  // <= 0 still asks for the maximum
}

}  // namespace
