#include "codec/encodec_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "codec/audio_file.h"

namespace mg {

namespace {

// Python's float floor division `a // b` (CPython float_divmod), which HF's num_quantizers uses:
// 1000 * 2.2 is 2200.0000000000005, and the result must be the one Python prints.
double py_floordiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
  double fl = std::floor(div);
  if (div - fl > 0.5) fl += 1.0;
  return fl;
}

EncodecNorm parse_norm(const JsonConfig& j) {
  std::string s = j.opt<std::string>("norm_type", "weight_norm");
  if (s == "weight_norm") return EncodecNorm::WeightNorm;
  if (s == "time_group_norm") return EncodecNorm::TimeGroupNorm;
  throw Error(strcat("key '", j.key_path("norm_type"), "' in ", j.source(), ": unsupported value '", s,
                     "' (expected weight_norm or time_group_norm)"));
}

PadMode parse_pad_mode(const JsonConfig& j) {
  std::string s = j.opt<std::string>("pad_mode", "reflect");
  if (s == "reflect") return PadMode::Reflect;
  // audiocraft's yaml spells zero padding "constant"; the original encodec package "zero".
  if (s == "constant" || s == "zero") return PadMode::Constant;
  if (s == "replicate") return PadMode::Replicate;
  throw Error(strcat("key '", j.key_path("pad_mode"), "' in ", j.source(), ": unsupported value '", s,
                     "' (expected reflect, constant, zero or replicate)"));
}

// Upper bounds: far above every released EnCodec (32/48 kHz, 4 ratios, 32 filters, kernel 7), low
// enough that derived sizes (hop, channel counts, dilations, sample counts) stay far from overflow.
constexpr int kMaxRate = 384000;
constexpr int kMaxSize = 65536;
constexpr int kMaxKernel = 1024;
constexpr int kMaxRatios = 16;
constexpr int kMaxHop = 1 << 20;
constexpr int kMaxLayers = 64;
constexpr int kMaxQuantizers = 1024;
constexpr double kMaxBandwidth = 10000.0;  // kbps
constexpr double kMaxChunkS = 3600.0;

void check_bandwidths(const JsonConfig& j, const std::vector<double>& bws) {
  MG_CHECK(!bws.empty() && bws.size() <= 64, "key '", j.key_path("target_bandwidths"), "' in ", j.source(),
           ": must hold 1 to 64 values, found ", bws.size());
  for (double bw : bws) {
    MG_CHECK(bw > 0 && bw <= kMaxBandwidth, "key '", j.key_path("target_bandwidths"), "' in ", j.source(),
             ": each must be in (0, ", kMaxBandwidth, "] kbps, found ", bw);
  }
}

// The SEANet stack: each ratio doubles the channels and each residual layer multiplies the
// dilation, so those products are bounded as well as the single values.
void check_seanet(const JsonConfig& j, const EncodecConfig& c) {
  const std::string ratios = j.key_path("upsampling_ratios");
  MG_CHECK(!c.upsampling_ratios.empty() && int(c.upsampling_ratios.size()) <= kMaxRatios, "key '", ratios, "' in ",
           j.source(), ": must hold 1 to ", kMaxRatios, " ratios, found ", c.upsampling_ratios.size());
  int64_t hop = 1;
  for (int r : c.upsampling_ratios) {
    j.check_in("upsampling_ratios", r, 1, kMaxKernel);
    hop *= r;
    MG_CHECK(hop <= kMaxHop, "key '", ratios, "' in ", j.source(), ": the product of the ratios must be at most ",
             kMaxHop);
  }
  MG_CHECK((int64_t(c.num_filters) << c.upsampling_ratios.size()) <= kMaxSize, "key '", j.key_path("num_filters"),
           "' in ", j.source(), ": num_filters x 2^(number of ratios) must be at most ", kMaxSize);
  MG_CHECK(std::pow(double(c.dilation_growth_rate), std::max(0, c.num_residual_layers - 1)) *
                   double(c.residual_kernel_size) <= double(kMaxHop),
           "key '", j.key_path("dilation_growth_rate"), "' in ", j.source(),
           ": dilation_growth_rate^(num_residual_layers - 1) x residual_kernel_size must be at most ", kMaxHop);
}

// Every value of `c` within its range; each error names the key, the source and the range.
void check_ranges(const JsonConfig& j, const EncodecConfig& c) {
  check_bandwidths(j, c.target_bandwidths);
  j.check_in("sampling_rate", c.sampling_rate, 1, kMaxRate);
  j.check_in("audio_channels", c.audio_channels, 1, 2);
  j.check_in("codebook_size", c.codebook_size, 2, 1 << 20);
  j.check_in("hidden_size", c.hidden_size, 1, kMaxSize);
  j.check_in("num_filters", c.num_filters, 1, kMaxSize);
  j.check_in("num_residual_layers", c.num_residual_layers, 0, kMaxLayers);
  j.check_in("kernel_size", c.kernel_size, 1, kMaxKernel);
  j.check_in("last_kernel_size", c.last_kernel_size, 1, kMaxKernel);
  j.check_in("residual_kernel_size", c.residual_kernel_size, 1, kMaxKernel);
  j.check_in("dilation_growth_rate", c.dilation_growth_rate, 1, kMaxKernel);
  j.check_in("compress", c.compress, 1, c.num_filters);  // residual hidden = channels / compress >= 1
  j.check_in("num_lstm_layers", c.num_lstm_layers, 0, kMaxLayers);
  j.check_in("codebook_dim", c.codebook_dim, 1, kMaxSize);
  j.check_in("trim_right_ratio", c.trim_right_ratio, 0.0, 1.0);
  check_seanet(j, c);
  if (c.chunk_length_s) {
    MG_CHECK(*c.chunk_length_s > 0 && *c.chunk_length_s <= kMaxChunkS, "key '", j.key_path("chunk_length_s"),
             "' in ", j.source(), ": must be in (0, ", kMaxChunkS, "] seconds, found ", *c.chunk_length_s);
    MG_CHECK(*c.chunk_length() >= 1, "key '", j.key_path("chunk_length_s"), "' in ", j.source(),
             ": chunk is shorter than one sample");
  }
  if (c.overlap)
    MG_CHECK(*c.overlap >= 0.0 && *c.overlap < 1.0, "key '", j.key_path("overlap"), "' in ", j.source(),
             ": must be in [0, 1), found ", *c.overlap);
}

std::string config_file_of(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return (std::filesystem::path(path) / "config.json").string();
  return path;
}

}  // namespace

int EncodecConfig::hop_length() const {
  int64_t hop = 1;
  for (int r : upsampling_ratios) hop *= r;
  return int(hop);
}

int EncodecConfig::frame_rate() const {
  int hop = hop_length();
  return (sampling_rate + hop - 1) / hop;  // both positive: integer ceil == math.ceil(sr / hop)
}

int EncodecConfig::codebook_nbits() const { return int(std::ceil(std::log2(double(codebook_size)))); }

int EncodecConfig::num_quantizers() const {
  MG_CHECK(!target_bandwidths.empty(), "EncodecConfig: target_bandwidths is empty");
  return int(py_floordiv(1000.0 * target_bandwidths.back(), double(frame_rate() * codebook_nbits())));
}

int EncodecConfig::num_quantizers_for_bandwidth(double kbps) const {
  // A NaN or infinite request is a caller's mistake, not "the maximum" (which <= 0 asks for).
  if (!std::isfinite(kbps))
    throw AudioRequestError(strcat("bandwidth must be a finite number of kbps, found ", kbps));
  if (!(kbps > 0.0)) return num_quantizers();
  double bw_per_q = std::log2(double(codebook_size)) * frame_rate();  // not rounded up, as HF
  return int(std::max(1.0, std::floor(kbps * 1000.0 / bw_per_q)));
}

std::optional<int64_t> EncodecConfig::chunk_length() const {
  if (!chunk_length_s) return std::nullopt;
  return int64_t(*chunk_length_s * sampling_rate);  // Python int(): truncation
}

std::optional<int64_t> EncodecConfig::chunk_stride() const {
  if (!chunk_length_s || !overlap) return std::nullopt;
  return std::max<int64_t>(1, int64_t((1.0 - *overlap) * double(*chunk_length())));
}

const char* encodec_norm_name(EncodecNorm n) {
  return n == EncodecNorm::WeightNorm ? "weight_norm" : "time_group_norm";
}

const char* pad_mode_name(PadMode m) {
  switch (m) {
    case PadMode::Reflect:
      return "reflect";
    case PadMode::Constant:
      return "constant";
    case PadMode::Replicate:
      return "replicate";
  }
  return "?";
}

EncodecConfig encodec_config_from_json(const JsonConfig& j) {
  // A MusicGen config handed over by mistake would otherwise fail on "missing sampling_rate".
  if (j.has("model_type")) {
    std::string mt = j.req<std::string>("model_type");
    MG_CHECK(mt == "encodec", "key '", j.key_path("model_type"), "' in ", j.source(),
             ": expected 'encodec', found '", mt, "'",
             j.has("audio_encoder") ? " (use its audio_encoder)" : "");
  }
  EncodecConfig c;
  c.target_bandwidths = j.opt<std::vector<double>>("target_bandwidths", c.target_bandwidths);
  c.sampling_rate = j.opt<int>("sampling_rate", c.sampling_rate);
  c.audio_channels = j.opt<int>("audio_channels", c.audio_channels);
  c.upsampling_ratios = j.opt<std::vector<int>>("upsampling_ratios", c.upsampling_ratios);
  c.codebook_size = j.opt<int>("codebook_size", c.codebook_size);

  c.normalize = j.opt<bool>("normalize", c.normalize);
  c.chunk_length_s = j.maybe<double>("chunk_length_s");
  c.overlap = j.maybe<double>("overlap");
  c.hidden_size = j.opt<int>("hidden_size", c.hidden_size);
  c.num_filters = j.opt<int>("num_filters", c.num_filters);
  c.num_residual_layers = j.opt<int>("num_residual_layers", c.num_residual_layers);
  c.norm_type = parse_norm(j);
  c.kernel_size = j.opt<int>("kernel_size", c.kernel_size);
  c.last_kernel_size = j.opt<int>("last_kernel_size", c.last_kernel_size);
  c.residual_kernel_size = j.opt<int>("residual_kernel_size", c.residual_kernel_size);
  c.dilation_growth_rate = j.opt<int>("dilation_growth_rate", c.dilation_growth_rate);
  c.use_causal_conv = j.opt<bool>("use_causal_conv", c.use_causal_conv);
  c.pad_mode = parse_pad_mode(j);
  c.compress = j.opt<int>("compress", c.compress);
  c.num_lstm_layers = j.opt<int>("num_lstm_layers", c.num_lstm_layers);
  c.trim_right_ratio = j.opt<double>("trim_right_ratio", c.trim_right_ratio);
  c.codebook_dim = j.opt<int>("codebook_dim", c.hidden_size);  // HF __post_init__: None -> hidden_size
  c.use_conv_shortcut = j.opt<bool>("use_conv_shortcut", c.use_conv_shortcut);

  check_ranges(j, c);
  MG_CHECK(c.num_quantizers() >= 1, "config ", j.source(), ": target bandwidth ", c.target_bandwidths.back(),
           " kbps gives no codebook at ", c.frame_rate(), " frames/s x ", c.codebook_nbits(), " bits");
  MG_CHECK(c.num_quantizers() <= kMaxQuantizers, "config ", j.source(), ": target bandwidth ",
           c.target_bandwidths.back(), " kbps needs ", c.num_quantizers(), " codebooks, more than ", kMaxQuantizers);
  return c;
}

EncodecConfig load_encodec_config(const JsonConfig& j) {
  if (j.has("audio_encoder")) return encodec_config_from_json(j.sub("audio_encoder"));
  return encodec_config_from_json(j);
}

EncodecConfig load_encodec_config(const std::string& path) {
  return load_encodec_config(JsonConfig::load(config_file_of(path)));
}

EncodecConfig load_musicgen_audio_encoder_config(const std::string& path) {
  JsonConfig j = JsonConfig::load(config_file_of(path));
  return encodec_config_from_json(j.sub("audio_encoder"));
}

}  // namespace mg
