// encodec-tool: audio conversion now; EnCodec compress / decompress / roundtrip / info later.
// Each subcommand is a pair of functions: add_<name>() declares its options on the parser and
// run_<name>() does the work through the public C API (include/encodec.h) and returns the exit
// status. A new subcommand adds one pair and one line in main().
#include <encodec.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

namespace {

constexpr const char* kTool = "encodec-tool";

// Owns an encodec_audio handle.
struct AudioDeleter {
  void operator()(encodec_audio* a) const { encodec_audio_free(a); }
};
using AudioPtr = std::unique_ptr<encodec_audio, AudioDeleter>;

int report_failure(encodec_status status) {
  std::fprintf(stderr, "%s: error: %s\n", kTool, encodec_last_error());
  return status == ENCODEC_ERROR_INVALID_ARGUMENT ? 2 : 1;
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
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("-c,--channels", args.channels,
                  "Output channels: 1 = mean of the input channels, N from mono = copies, "
                  "N from more = the first N")
      ->check(CLI::PositiveNumber)
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
  encodec_audio* raw = nullptr;
  encodec_status st = encodec_audio_read(args.input.c_str(), &raw);
  if (st != ENCODEC_OK) return report_failure(st);
  AudioPtr input(raw);

  st = encodec_audio_convert(input.get(), args.rate, args.channels, &raw);
  if (st != ENCODEC_OK) return report_failure(st);
  AudioPtr converted(raw);

  st = encodec_audio_write(args.output.c_str(), converted.get(), subtype_from_name(args.subtype));
  if (st != ENCODEC_OK) return report_failure(st);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "encodec-tool: audio files in and out of libmusicgen's EnCodec (no Python needed).\n"
      "Reads .wav .flac .ogg .mp3; writes the format named by the output's extension."};
  app.name(kTool);
  app.require_subcommand(1);
  app.footer("Run 'encodec-tool SUBCOMMAND --help' for the options of a subcommand.");
  app.set_version_flag("--version", std::string(kTool) + " " + encodec_version());

  ConvertArgs convert_args;
  CLI::App* convert = add_convert(app, convert_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (convert->parsed()) return run_convert(convert_args);
  return 2;  // unreachable: require_subcommand(1) rejects anything else
}
