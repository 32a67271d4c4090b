// encodec-tool: EnCodec compress / decompress / roundtrip / info, and audio conversion.
// Each subcommand is a pair of functions: add_<name>() declares its options on the parser and
// run_<name>() does the work through the public C API (include/encodec.h) and returns the exit
// status. A new subcommand adds one pair and one line in main().
#include <encodec.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace {

constexpr const char* kTool = "encodec-tool";

// Owns an encodec_audio handle.
struct AudioDeleter {
  void operator()(encodec_audio* a) const { encodec_audio_free(a); }
};
using AudioPtr = std::unique_ptr<encodec_audio, AudioDeleter>;

// Checks of a number option whose message a user can read: CLI11's NonNegativeNumber and
// PositiveNumber print their upper bound, DBL_MAX, in 309 digits. A NaN is refused too.
// at_least(0, ...) accepts 0 and up, above(0, ...) only what is greater.
CLI::Validator number_check(double lo, bool lo_included, double hi, const std::string& range_text) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        const bool number = end != text.c_str() && *end == '\0';
        if (number && (lo_included ? v >= lo : v > lo) && v <= hi) return "";
        return "must be " + range_text + ", found '" + text + "'";
      },
      range_text);
}
CLI::Validator at_least(double lo, const std::string& range_text) { return number_check(lo, true, 1e300, range_text); }
CLI::Validator above(double lo, const std::string& range_text) { return number_check(lo, false, 1e300, range_text); }

int report_failure(musicgen_status status) {
  std::fprintf(stderr, "%s: error: %s\n", kTool, musicgen_last_error());
  return status == MUSICGEN_ERROR_INVALID_ARGUMENT ? 2 : 1;
}

// ---- convert ----

struct ConvertArgs {
  std::string input;
  std::string output;
  int rate = 32000;
  int channels = 1;
  std::string subtype = "pcm16";
};

CLI::App* add_convert(CLI::App& app, ConvertArgs& args) {
  CLI::App* cmd = app.add_subcommand(
      "convert", "Resample and remix an audio file (as audiocraft's convert_audio: resample, then channels)");
  cmd->add_option("input", args.input, "Input audio file (.wav .flac .ogg .mp3)")->required();
  cmd->add_option("output", args.output, "Output audio file; the extension picks the format")->required();
  cmd->add_option("-r,--rate", args.rate, "Output sample rate in Hz")
      ->check(number_check(1000, true, 768000, "in [1000, 768000] Hz (the rates audio files are read at)"))
      ->capture_default_str();
  cmd->add_option("-c,--channels", args.channels,
                  "Output channels: 1 = mean of the input channels, N from mono = copies, "
                  "N from more = the first N")
      ->check(at_least(1, "at least 1"))
      ->capture_default_str();
  cmd->add_option("-s,--subtype", args.subtype,
                  "Sample format of .wav/.flac output: pcm16, pcm24 (clipped to [-1,1]) or float (.wav)")
      ->check(CLI::IsMember({"pcm16", "pcm24", "float"}))
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  encodec-tool convert song.mp3 song-32k.wav                  32 kHz mono, 16-bit\n"
      "  encodec-tool convert in.wav out.flac --rate 48000 -c 2 -s pcm24\n"
      "The output file appears only when complete; on error nothing is written.");
  return cmd;
}

encodec_subtype subtype_from_name(const std::string& name) {
  if (name == "pcm24") return ENCODEC_SUBTYPE_PCM24;
  if (name == "float") return ENCODEC_SUBTYPE_FLOAT;
  return ENCODEC_SUBTYPE_PCM16;
}

int run_convert(const ConvertArgs& args) {
  // Block by block: files of any length convert in bounded memory.
  const musicgen_status st = encodec_audio_convert_file(args.input.c_str(), args.output.c_str(), args.rate,
                                                        args.channels, subtype_from_name(args.subtype));
  return st == MUSICGEN_OK ? 0 : report_failure(st);
}

// ---- the EnCodec subcommands ----

// A loaded model and the one session this tool computes with.
struct Loaded {
  std::unique_ptr<encodec_model, void (*)(encodec_model*)> model{nullptr, encodec_model_free};
  std::unique_ptr<encodec_session, void (*)(encodec_session*)> session{nullptr, encodec_session_free};
  explicit operator bool() const { return session != nullptr; }
};

struct ModelArgs {
  std::string model;  // empty: $ENCODEC_MODEL, else weights/encodec_24khz
  int threads = 0;
};

constexpr const char* kDefaultModel = "weights/encodec_24khz";

void add_model_options(CLI::App* cmd, ModelArgs& args) {
  cmd->add_option("-m,--model", args.model,
                  "EnCodec model: a Hugging Face snapshot folder (encodec_24khz, encodec_32khz, encodec_48khz, or a "
                  "MusicGen folder, whose codec is used), or a name under weights/ "
                  "[default: $ENCODEC_MODEL, else weights/encodec_24khz]");
  cmd->add_option("-t,--threads", args.threads, "CPU threads (0 = all)")->check(at_least(0, "at least 0 (0 = all cores)"));
}

// fallback: the model when neither --model nor $ENCODEC_MODEL names one.
std::string model_path(const ModelArgs& args, const std::string& fallback = kDefaultModel) {
  std::string m = args.model;
  if (m.empty()) {
    const char* env = std::getenv("ENCODEC_MODEL");
    m = env && *env ? env : fallback;
  }
  std::error_code ec;
  // A bare name ("encodec_32khz") that is not a folder here means weights/<name>.
  if (!std::filesystem::exists(m, ec) && m.find('/') == std::string::npos &&
      std::filesystem::exists("weights/" + m, ec))
    return "weights/" + m;
  return m;
}

// Loads the model and makes a session, or reports why not (an empty Loaded).
Loaded load_model(const ModelArgs& args, const std::string& fallback = kDefaultModel) {
  encodec_model_params p = encodec_model_default_params();
  p.device = MUSICGEN_DEVICE_CPU;
  p.n_threads = args.threads;
  encodec_session_params sp = encodec_session_default_params();
  sp.n_threads = args.threads;
  Loaded l;
  encodec_model* raw = nullptr;
  const std::string path = model_path(args, fallback);
  if (encodec_model_load(path.c_str(), &p, &raw) != MUSICGEN_OK) {
    std::fprintf(stderr, "%s: error: cannot load the EnCodec model: %s\n", kTool, musicgen_last_error());
    if (args.model.empty())
      std::fprintf(stderr, "%s: hint: pass --model DIR or set ENCODEC_MODEL (default %s)\n", kTool, fallback.c_str());
    return l;
  }
  l.model.reset(raw);
  encodec_session* session = nullptr;
  if (encodec_session_create(l.model.get(), &sp, &session) != MUSICGEN_OK) {
    std::fprintf(stderr, "%s: error: %s\n", kTool, musicgen_last_error());
    return l;
  }
  l.session.reset(session);
  return l;
}

constexpr const char* kBandwidthHelp =
    "Target bandwidth in kbps; one the model supports: encodec_24khz 1.5 3 6 12 24, encodec_48khz 3 6 12 24, "
    "encodec_32khz 2.2 [default: 6 when the model has it, else its highest]";

double pick_bandwidth(const encodec_model* model, double asked) {
  if (!(asked <= 0)) return asked;  // NaN and inf too: the library refuses them, naming the bandwidths
  return encodec_model_num_codebooks(model, 6.0) > 0 ? 6.0 : 0.0;  // encodec's CLI default, else the highest
}

struct CompressArgs {
  std::string input, output;
  double kbps = 0;
  ModelArgs model;
};

CLI::App* add_compress(CLI::App& app, CompressArgs& args) {
  CLI::App* cmd = app.add_subcommand("compress", "Compress an audio file into an .ecdc file");
  cmd->add_option("input", args.input, "Input audio (.wav .flac .ogg .mp3); any rate and channel count")->required();
  cmd->add_option("output", args.output, "Output .ecdc file")->required();
  cmd->add_option("-b,--bandwidth", args.kbps, kBandwidthHelp)->check(above(0, "a positive number of kbps"));
  add_model_options(cmd, args.model);
  cmd->footer(
      "The input is resampled and remixed to the model's rate and channels as audiocraft does\n"
      "(convert_audio). The .ecdc file is the one facebookresearch/encodec writes without its\n"
      "entropy-coding LM (`encodec -f`), readable by `encodec` for encodec_24khz/48khz.\n"
      "Examples:\n"
      "  encodec-tool compress song.mp3 song.ecdc -b 6 --model weights/encodec_24khz\n"
      "  ENCODEC_MODEL=weights/encodec_48khz encodec-tool compress live.flac live.ecdc -b 12");
  return cmd;
}

int run_compress(const CompressArgs& args) {
  Loaded l = load_model(args.model);
  if (!l) return 1;
  const musicgen_status st = encodec_session_compress_file(l.session.get(), args.input.c_str(), args.output.c_str(),
                                                           pick_bandwidth(l.model.get(), args.kbps));
  return st == MUSICGEN_OK ? 0 : report_failure(st);
}

struct DecompressArgs {
  std::string input, output;
  std::string subtype = "pcm16";
  ModelArgs model;
};

void add_subtype_option(CLI::App* cmd, std::string& subtype) {
  cmd->add_option("-s,--subtype", subtype,
                  "Sample format of .wav/.flac output: pcm16, pcm24 (clipped to [-1,1]) or float (.wav)")
      ->check(CLI::IsMember({"pcm16", "pcm24", "float"}))
      ->capture_default_str();
}

CLI::App* add_decompress(CLI::App& app, DecompressArgs& args) {
  CLI::App* cmd = app.add_subcommand("decompress", "Decompress an .ecdc file into an audio file");
  cmd->add_option("input", args.input, "Input .ecdc file")->required();
  cmd->add_option("output", args.output, "Output audio file; the extension picks the format (.wav .flac .ogg .mp3)")
      ->required();
  add_subtype_option(cmd, args.subtype);
  add_model_options(cmd, args.model);
  cmd->footer(
      "The output is at the model's sample rate and channels. The model must be the one named in\n"
      "the file (see `encodec-tool info`); without --model or $ENCODEC_MODEL it is weights/<that name>.\n"
      "Files written with the entropy-coding LM (`encodec`\n"
      "without -f) are not supported yet.\n"
      "Example:\n"
      "  encodec-tool decompress song.ecdc song.wav            # the model named in song.ecdc, from weights/\n"
      "  encodec-tool decompress song.ecdc song.wav --model ~/models/encodec_24khz");
  return cmd;
}

int run_decompress(const DecompressArgs& args) {
  // As Meta's `encodec`, the file says which model decodes it: weights/<that name> by default.
  encodec_ecdc_info info;
  const musicgen_status hs = encodec_ecdc_read_info(args.input.c_str(), &info);
  if (hs != MUSICGEN_OK) return report_failure(hs);
  Loaded l = load_model(args.model, std::string("weights/") + info.model);
  if (!l) return 1;
  const musicgen_status st = encodec_session_decompress_file(l.session.get(), args.input.c_str(), args.output.c_str(),
                                                             subtype_from_name(args.subtype));
  return st == MUSICGEN_OK ? 0 : report_failure(st);
}

struct RoundtripArgs {
  std::string input, output;
  double kbps = 0;
  std::string subtype = "pcm16";
  ModelArgs model;
};

CLI::App* add_roundtrip(CLI::App& app, RoundtripArgs& args) {
  CLI::App* cmd = app.add_subcommand("roundtrip", "Encode and decode an audio file (hear what a bandwidth does)");
  cmd->add_option("input", args.input, "Input audio (.wav .flac .ogg .mp3); any rate and channel count")->required();
  cmd->add_option("output", args.output, "Output audio file; the extension picks the format")->required();
  cmd->add_option("-b,--bandwidth", args.kbps, kBandwidthHelp)->check(above(0, "a positive number of kbps"));
  add_subtype_option(cmd, args.subtype);
  add_model_options(cmd, args.model);
  cmd->footer(
      "Example:\n"
      "  encodec-tool roundtrip song.mp3 song-1.5kbps.wav -b 1.5 --model weights/encodec_24khz");
  return cmd;
}

int run_roundtrip(const RoundtripArgs& args) {
  Loaded l = load_model(args.model);
  if (!l) return 1;
  encodec_audio* raw = nullptr;
  musicgen_status st = encodec_audio_read(args.input.c_str(), &raw);
  if (st != MUSICGEN_OK) return report_failure(st);
  AudioPtr input(raw);
  encodec_codes* codes = nullptr;
  st = encodec_session_encode(l.session.get(), input.get(), pick_bandwidth(l.model.get(), args.kbps), &codes);
  if (st != MUSICGEN_OK) return report_failure(st);
  input.reset();
  std::unique_ptr<encodec_codes, void (*)(encodec_codes*)> codes_owner(codes, encodec_codes_free);
  st = encodec_session_decode(l.session.get(), codes, &raw);
  if (st != MUSICGEN_OK) return report_failure(st);
  AudioPtr output(raw);
  st = encodec_audio_write(args.output.c_str(), output.get(), subtype_from_name(args.subtype));
  return st == MUSICGEN_OK ? 0 : report_failure(st);
}

struct InfoArgs {
  std::string input;
};

CLI::App* add_info(CLI::App& app, InfoArgs& args) {
  CLI::App* cmd = app.add_subcommand("info", "Show what an .ecdc file holds (no model needed)");
  cmd->add_option("input", args.input, "An .ecdc file")->required();
  return cmd;
}

int run_info(const InfoArgs& args) {
  encodec_ecdc_info info;
  const musicgen_status st = encodec_ecdc_read_info(args.input.c_str(), &info);
  if (st != MUSICGEN_OK) return report_failure(st);
  std::printf("file:        %s (%lld bytes, %lld of header)\n", args.input.c_str(), (long long)info.file_size,
              (long long)info.header_size);
  std::printf("model:       %s\n", info.model);
  if (info.sample_rate > 0) {
    std::printf("audio:       %lld samples, %.3f s at %d Hz, %d channel%s\n", (long long)info.audio_length,
                double(info.audio_length) / info.sample_rate, info.sample_rate, info.channels,
                info.channels == 1 ? "" : "s");
    std::printf("codebooks:   %d (%g kbps)\n", info.num_codebooks, info.bandwidth_kbps);
    std::printf("segments:    %d\n", info.num_segments);
  } else {
    std::printf("audio:       %lld samples (unknown model: rate unknown)\n", (long long)info.audio_length);
    std::printf("codebooks:   %d\n", info.num_codebooks);
  }
  std::printf("entropy LM:  %s\n", info.lm ? "yes (not decodable by this tool yet)" : "no (bit-packed)");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "encodec-tool: Meta's EnCodec neural audio codec, natively (no Python needed).\n"
      "Compresses audio to .ecdc files compatible with facebookresearch/encodec, and back.\n"
      "Reads .wav .flac .ogg .mp3; writes the format named by the output's extension."};
  app.name(kTool);
  app.require_subcommand(1);
  app.footer("Run 'encodec-tool SUBCOMMAND --help' for the options of a subcommand.");
  app.set_version_flag("--version", [] { return std::string(kTool) + " " + musicgen_version() + "\n" + musicgen_system_info(); });

  CompressArgs compress_args;
  CLI::App* compress = add_compress(app, compress_args);
  DecompressArgs decompress_args;
  CLI::App* decompress = add_decompress(app, decompress_args);
  RoundtripArgs roundtrip_args;
  CLI::App* roundtrip = add_roundtrip(app, roundtrip_args);
  InfoArgs info_args;
  CLI::App* info = add_info(app, info_args);
  ConvertArgs convert_args;
  CLI::App* convert = add_convert(app, convert_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (compress->parsed()) return run_compress(compress_args);
  if (decompress->parsed()) return run_decompress(decompress_args);
  if (roundtrip->parsed()) return run_roundtrip(roundtrip_args);
  if (info->parsed()) return run_info(info_args);
  if (convert->parsed()) return run_convert(convert_args);
  return 2;  // unreachable: require_subcommand(1) rejects anything else
}
