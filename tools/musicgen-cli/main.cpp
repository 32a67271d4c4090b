// musicgen-cli: `musicgen-cli --prompt "electro" -o out.wav`. Uses only the public C API.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "analyze_command.h"
#include "train_command.h"
#include "quantize_command.h"
#include "compose_options.h"
#include "encodec.h"
#include "musicgen.h"

namespace {

const char* kDefaultModel = "weights/musicgen-small";
// --takes: the takes of a prompt run as one batch, each with its own attention caches (~0.6 GB per
// take of 30 s on musicgen-small), so a number typed with extra zeros is refused, not attempted.
constexpr int kMaxTakes = 64;

struct Progress {
  bool show = false;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

// A one-line bar on stderr: [#####.....] 120/503 steps  38.2 steps/s  ETA 10 s
void on_progress(int64_t done, int64_t total, void* user) {
  auto* p = static_cast<Progress*>(user);
  if (!p->show) return;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - p->start).count();
  const double rate = secs > 0 ? double(done) / secs : 0.0;
  const double eta = rate > 0 ? double(total - done) / rate : 0.0;
  const int width = 30, filled = int(width * done / std::max<int64_t>(1, total));
  std::fprintf(stderr, "\r[%s%s] %lld/%lld steps  %.1f steps/s  ETA %.0f s ", std::string(filled, '#').c_str(),
               std::string(width - filled, '.').c_str(), (long long)done, (long long)total, rate, eta);
  if (done == total) std::fprintf(stderr, "\n");
}

// --stream: 16-bit little-endian PCM to stdout as it is decoded, optionally behind a WAV header
// whose sizes say "unknown" (0xFFFFFFFF), which aplay, sox and ffmpeg accept for a pipe.
struct StreamOut {
  bool wav = true;
  bool header_done = false;
  int rate = 32000;
};

void put32(std::string& b, uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(char((v >> (8 * i)) & 0xff)); }
void put16(std::string& b, uint16_t v) { for (int i = 0; i < 2; ++i) b.push_back(char((v >> (8 * i)) & 0xff)); }

void on_stream(const float* samples, int64_t n, int channels, void* user) {
  auto* s = static_cast<StreamOut*>(user);
  std::string buf;
  if (s->wav && !s->header_done) {
    buf += "RIFF";
    put32(buf, 0xFFFFFFFFu);
    buf += "WAVEfmt ";
    put32(buf, 16);
    put16(buf, 1);
    put16(buf, uint16_t(channels));
    put32(buf, uint32_t(s->rate));
    put32(buf, uint32_t(s->rate * channels * 2));
    put16(buf, uint16_t(channels * 2));
    put16(buf, 16);
    buf += "data";
    put32(buf, 0xFFFFFFFFu);
  }
  s->header_done = true;
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < channels; ++c) {
      float x = samples[c * n + i];
      x = x > 1.0f ? 1.0f : (x < -1.0f ? -1.0f : x);
      const long v = std::lround(double(x) * 32768.0);
      put16(buf, uint16_t(int16_t(v > 32767 ? 32767 : v)));
    }
  std::fwrite(buf.data(), 1, buf.size(), stdout);
  std::fflush(stdout);
}

// An error the command line reports as "musicgen-cli: error: <message>" with exit code 1.
struct CliError {
  std::string message;
};

void require(bool ok, const std::string& message) {
  if (!ok) throw CliError{message};
}

// A library call that failed says why through musicgen_last_error.
void check(musicgen_status status) {
  if (status != MUSICGEN_OK) throw CliError{musicgen_last_error()};
}

std::string lower_ext(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  for (char& c : e) c = char(std::tolower((unsigned char)c));
  return e;
}

// out.wav -> out-3.wav
std::string numbered(const std::string& path, size_t i) {
  std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + std::to_string(i) + p.extension().string())).string();
}

bool read_text(const std::string& path, std::string& text) {
  std::ifstream f(path);
  if (!f) return false;
  text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

// ---- options ----

struct Options {
  std::string prompt, output = "out.wav", model, device = "auto", normalize = "peak", weights = "f32";
  std::string prompts_file, continue_path, stream_to, stream_format = "wav", codes_out, from_codes;
  std::string melody, chords, chords_file, notes, notes_file, midi, chroma_png;
  std::string lora;                        // --lora: a PEFT LoRA adapter folder merged at load
  float lora_scale = 1.0f;                 // --lora-scale
  bool lora_scale_given = false;
  float bpm = 120.0f, beats_per_chord = 4.0f;
  float duration = 10.0f, top_p = 0.0f, temperature = 1.0f, cfg = 3.0f, stride = 18.0f;
  int top_k = 250, threads = 0, takes = 1;
  uint64_t seed = 0;
  std::string seed_text = "0";  // --seed as typed: parse_seed refuses what a uint64 would clamp or wrap
  bool greedy = false, quiet = false, drop_prompt = false;
  bool output_given = false;  // -o on the command line (with --stream, a file is written only then)
  bool report = false, bpm_given = false;  // --report; --bpm on the command line (a tempo to compare)
  mgcli::ComposeOptions compose;           // --compose, --compose-midi

  // How many of --melody, --chords, --chords-file, --notes, --notes-file, --midi are given.
  int melody_sources() const {
    return !melody.empty() + !chords.empty() + !chords_file.empty() + !notes.empty() + !notes_file.empty() +
           !midi.empty() + !compose.description.empty();
  }
  bool writes_file() const { return stream_to.empty() || output_given; }
};

void add_options(CLI::App& app, Options& o) {
  app.description("Generate music from a text prompt with a MusicGen model, natively (no Python).\n\n"
                  "  musicgen-cli --prompt \"lo-fi hip hop with a mellow piano\" -o out.wav\n"
                  "  musicgen-cli -p \"epic orchestral\" -d 60 -o long.wav          # > 30 s: sliding window\n"
                  "  musicgen-cli -p \"jazz\" --continue clip.wav -d 20 -o more.wav  # continue a recording\n"
                  "  musicgen-cli --prompts-file prompts.txt --takes 2 -o take.wav  # take-1.wav, take-2.wav, ...\n"
                  "  musicgen-cli -p \"ambient\" --stream - | aplay                  # hear it while it is made\n"
                  "  musicgen-cli -m weights/musicgen-melody -p \"80s synth\" --melody bach.mp3 -o tune.wav\n"
                  "  musicgen-cli -m weights/musicgen-melody --chords \"C G Am F\" --bpm 100 -o chords.wav\n");
  app.name("musicgen-cli");
  app.add_option("-p,--prompt", o.prompt, "Text description of the music (empty: unconditional)");
  app.add_option("-o,--output", o.output, "Output file; the format comes from the extension (.wav .flac .ogg .mp3)")
      ->capture_default_str();
  app.add_option("-d,--duration", o.duration, "Seconds of audio (prompt included); above 30 s windows are chained")
      ->capture_default_str();
  app.add_option("-m,--model", o.model,
                 "MusicGen snapshot folder (default: $MUSICGEN_MODEL, else weights/musicgen-small)");
  app.add_option("-s,--seed", o.seed_text, "Random seed: the same seed, model, settings and device give the same audio")
      ->capture_default_str();
  app.add_option("--top-k", o.top_k, "Sample from the k most likely codes (0: off)")->capture_default_str();
  app.add_option("--top-p", o.top_p, "Nucleus sampling mass (0: off; when set it replaces top-k)")->capture_default_str();
  app.add_option("--temperature", o.temperature, "Softmax temperature (0: greedy)")->capture_default_str();
  app.add_option("--cfg", o.cfg, "Classifier-free guidance scale (1: off)")->capture_default_str();
  app.add_flag("--greedy", o.greedy, "Always take the most likely code (deterministic)");
  app.add_option("--extend-stride", o.stride, "Long generation: seconds each new window moves on (the rest of the "
                                              "window prompts it)")
      ->capture_default_str();
  app.add_option("--continue", o.continue_path, "Continue this recording (any format, rate, channels)");
  app.add_flag("--drop-prompt", o.drop_prompt, "With --continue: leave the prompt audio out of the output");
  app.add_option("--prompts-file", o.prompts_file, "One prompt per line, all generated as one batch");
  app.add_option("--takes", o.takes, "Takes per prompt (one batch; take i uses seed + i)")->capture_default_str();
  app.add_option("--stream", o.stream_to, "Write audio to stdout while generating: '-' (raw decoder output, not "
                                          "normalised)");
  app.add_option("--stream-format", o.stream_format, "Stream as a WAV (header with unknown length) or raw s16le")
      ->check(CLI::IsMember({"wav", "raw"}))
      ->capture_default_str();
  app.add_option("--melody", o.melody, "Melody models: follow the tune of this recording (any format)");
  app.add_option("--chords", o.chords, "Melody models: a chord progression, e.g. \"C G Am F7 | Dm/F\"");
  app.add_option("--chords-file", o.chords_file, "Melody models: a text file of chords");
  app.add_option("--notes", o.notes, "Melody models: notes with durations in beats, e.g. \"C4:1 E4:0.5 G4\"");
  app.add_option("--notes-file", o.notes_file, "Melody models: a text file of notes");
  app.add_option("--midi", o.midi, "Melody models: a MIDI file (its top voice)");
  app.add_option("--bpm", o.bpm, "Tempo for --chords/--notes (20..400)")->capture_default_str();
  app.add_option("--beats-per-chord", o.beats_per_chord, "Beats each chord lasts (4 = a 4/4 bar)")->capture_default_str();
  app.add_option("--chroma-png", o.chroma_png, "Write a picture of the melody condition (the chroma the model reads)");
  app.add_option("-t,--threads", o.threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--device", o.device, "Where to run: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--weights", o.weights,
                 "Decoder weight precision: f32 (as stored), f16 or bf16 (half the memory traffic), q8 or q4 "
                 "(quantized blocks: ~1/4 and ~1/7 of f32's bytes; a snapshot from 'musicgen-cli quantize' needs its own)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8", "q4"}))
      ->capture_default_str();
  app.add_option("--lora", o.lora,
                 "A LoRA adapter folder (PEFT's adapter_config.json + adapter_model.safetensors, e.g. from "
                 "'musicgen-cli train'), merged into the decoder at load");
  app.add_option("--lora-scale", o.lora_scale, "How much of the adapter: 1 = as trained, 0 = the base model")
      ->capture_default_str()
      ->each([&o](const std::string&) { o.lora_scale_given = true; });
  app.add_option("--normalize", o.normalize, "Output level: peak (-1 dBFS), loudness (-14 LUFS), clip or none")
      ->check(CLI::IsMember({"peak", "loudness", "clip", "none"}))
      ->capture_default_str();
  app.add_option("--codes-out", o.codes_out, "Also write the generated codes as an .ecdc file (encodec-tool "
                                             "decompress turns it into audio with --model <this MusicGen folder>)");
  app.add_option("--from-codes", o.from_codes, "Decode this .ecdc file of codes (from --codes-out) instead of "
                                               "generating");
  mgcli::add_compose_options(app, o.compose);
  app.add_flag("-q,--quiet", o.quiet, "No progress bar");
  app.add_flag("--report", o.report, "After generating, analyse the output (key, tempo, chords) and print requested "
                                     "vs found to stderr (docs/analysis.md)");
  app.set_version_flag("--version", [] { return std::string("musicgen-cli ") + musicgen_version() + "\n" + musicgen_system_info(); },
                       "Print the version and what this machine's backends use (SIMD, BLAS kernels, CUDA), then exit");
}

// ---- inputs ----

// A number in an error as the library's errors print it (1e+38, nan, inf; not 38 digits).
std::string shown(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Everything cheap is checked before a model of gigabytes is loaded.
void validate_options(const Options& o) {
  // Written as "not (the bad case)" so that a NaN is judged as the bad cases say.
  require(o.duration > 0, "--duration must be > 0 seconds");
  // The library's bounds (musicgen_common.h), checked here too so that the message names the flag.
  require(!(o.duration > MUSICGEN_MAX_DURATION_S), "--duration must be at most " + shown(MUSICGEN_MAX_DURATION_S) +
                                                        " seconds (one hour), found " + shown(o.duration));
  require(o.threads <= MUSICGEN_MAX_THREADS, "--threads must be at most " + std::to_string(MUSICGEN_MAX_THREADS) +
                                                 " (0: all cores), found " + std::to_string(o.threads));
  require(!(o.top_k < 0), "--top-k must be >= 0");
  require(o.top_p >= 0 && o.top_p <= 1, "--top-p must be in [0, 1], found " + shown(o.top_p));
  const std::string scale_range = "[0, " + shown(MUSICGEN_MAX_SCALE) + "]";
  require(o.temperature >= 0 && o.temperature <= MUSICGEN_MAX_SCALE,
          "--temperature must be in " + scale_range + ", found " + shown(o.temperature));
  require(o.cfg >= 0 && o.cfg <= MUSICGEN_MAX_SCALE, "--cfg must be in " + scale_range + ", found " + shown(o.cfg));
  require(!o.drop_prompt || !o.continue_path.empty(),
          "--drop-prompt needs a prompt audio (--continue): there is no prompt to drop");
  require(o.takes >= 1 && o.takes <= kMaxTakes, "--takes must be in [1, " + std::to_string(kMaxTakes) +
                                                   "] (one batch: every take is generated at once), found " +
                                                   std::to_string(o.takes));
  require(!(!o.greedy && o.temperature > 0 && o.top_k == 0 && o.top_p == 0),
          "--top-k 0 with no --top-p samples from all 2048 codes; set --top-k (default 250) or --top-p");
  require(o.stream_to.empty() || o.stream_to == "-", "--stream takes '-' (standard output)");
  if (o.writes_file()) {
    const std::string ext = lower_ext(o.output);
    require(ext == ".wav" || ext == ".flac" || ext == ".ogg" || ext == ".mp3",
            "cannot tell the format of '" + o.output + "': use a .wav, .flac, .ogg or .mp3 name");
    std::filesystem::path parent = std::filesystem::path(o.output).parent_path();
    if (parent.empty()) parent = ".";
    require(std::filesystem::is_directory(parent) && access(parent.c_str(), W_OK) == 0,
            "cannot write '" + o.output + "': folder '" + parent.string() + "' does not exist or is not writable");
  }
  require(o.melody_sources() <= 1, "give one of --melody, --chords, --chords-file, --notes, --notes-file, --midi, --compose");
  require(o.chroma_png.empty() || o.melody_sources() > 0, "--chroma-png needs a melody (--melody, --chords, ...)");
  require(o.chroma_png.empty() || lower_ext(o.chroma_png) == ".png", "--chroma-png needs a .png file name");
  const bool batch = !o.prompts_file.empty() || o.takes > 1;
  require(o.codes_out.empty() || (!batch && lower_ext(o.codes_out) == ".ecdc"),
          "--codes-out takes an .ecdc file name, for one generation (not with --prompts-file or --takes)");
  require(o.from_codes.empty() || (!batch && o.codes_out.empty() && o.stream_to.empty() && o.melody_sources() == 0 &&
                                   o.continue_path.empty()),
          "--from-codes decodes codes instead of generating: it takes no --prompts-file, --takes, --codes-out, "
          "--stream, melody or --continue");
}

// --seed: all of 0..2^64-1, and nothing else (CLI11 would clamp 2^64 and wrap -1).
uint64_t parse_seed(const std::string& text) {
  const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  errno = 0;
  const unsigned long long v = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
  require(digits && errno != ERANGE, "--seed must be an integer in [0, 18446744073709551615], found '" + text + "'");
  return v;
}

// The non-empty lines of --prompts-file (none without it).
std::vector<std::string> read_prompts_file(const std::string& path) {
  std::vector<std::string> prompts;
  if (path.empty()) return prompts;
  std::ifstream f(path);
  require(bool(f), "cannot read --prompts-file '" + path + "'");
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) prompts.push_back(line);
  require(!prompts.empty(), "--prompts-file '" + path + "' has no prompts");
  return prompts;
}

// --model, else $MUSICGEN_MODEL, else the default folder; it must exist.
std::string resolve_model(const std::string& given) {
  std::string model = given;
  if (model.empty()) {
    const char* env = std::getenv("MUSICGEN_MODEL");
    model = env && *env ? env : kDefaultModel;
  }
  require(std::filesystem::is_directory(model),
          "model folder '" + model + "' not found. Download one with:\n  weights/download.sh musicgen-small\n"
          "or pass --model DIR (a Hugging Face MusicGen snapshot folder)");
  return model;
}

using Model = std::unique_ptr<musicgen_model, void (*)(musicgen_model*)>;
using Session = std::unique_ptr<musicgen_session, void (*)(musicgen_session*)>;
using Codes = std::unique_ptr<encodec_codes, void (*)(encodec_codes*)>;

Model load_model(const Options& o, const std::string& model, bool show) {
  musicgen_model_params mp = musicgen_model_default_params();
  mp.device = o.device == "cpu" ? MUSICGEN_DEVICE_CPU : o.device == "cuda" ? MUSICGEN_DEVICE_CUDA : MUSICGEN_DEVICE_AUTO;
  mp.n_threads = o.threads;
  mp.weights = o.weights == "f16"    ? MUSICGEN_WEIGHTS_F16
               : o.weights == "bf16" ? MUSICGEN_WEIGHTS_BF16
               : o.weights == "q8"   ? MUSICGEN_WEIGHTS_Q8
               : o.weights == "q4"   ? MUSICGEN_WEIGHTS_Q4
                                     : MUSICGEN_WEIGHTS_F32;
  require(!o.lora_scale_given || !o.lora.empty(), "--lora-scale needs --lora DIR (the adapter to scale)");
  mp.lora_dir = o.lora.empty() ? nullptr : o.lora.c_str();
  mp.lora_scale = o.lora_scale;
  if (show) std::fprintf(stderr, "loading %s%s%s ...\n", model.c_str(), o.lora.empty() ? "" : " with LoRA ",
                         o.lora.c_str());
  musicgen_model* raw = nullptr;
  check(musicgen_model_load(model.c_str(), &mp, &raw));
  Model m(raw, musicgen_model_free);
  const float window = musicgen_model_max_window(m.get());
  require(!(o.duration > window + 1e-6f) || (o.stride > 0 && o.stride < window),
          "--extend-stride must be between 0 and " + std::to_string(window) + " s for durations above the window");
  return m;
}

Session new_session(const Options& o, const musicgen_model* model) {
  musicgen_session_params sp = musicgen_session_default_params();
  sp.n_threads = o.threads;
  musicgen_session* raw = nullptr;
  check(musicgen_session_create(model, &sp, &raw));
  return Session(raw, musicgen_session_free);
}

// The audio the generation reads (continuation, melody) and the chroma made here from chords,
// notes or MIDI; the generation's parameters point into it.
struct Inputs {
  musicgen_audio prompt_audio{}, melody_audio{};
  std::vector<float> chroma;
  Inputs() = default;
  Inputs(const Inputs&) = delete;
  Inputs& operator=(const Inputs&) = delete;
  ~Inputs() { free_audio(); }
  void free_audio() {  // musicgen_audio_free empties the audio, so a second call does nothing
    musicgen_audio_free(&prompt_audio);
    musicgen_audio_free(&melody_audio);
  }
};

// How much of an input file (continuation, melody) the generation can use: its duration, plus 2 s
// so that the melody's last chroma frames see the audio after them as in a whole-file read.
float usable_input_seconds(const Options& o) {
  return std::min(o.duration + 2.0f, float(MUSICGEN_MAX_DURATION_S));
}

void prepare_continuation(const Options& o, Inputs& in, musicgen_generate_params& p) {
  if (o.continue_path.empty()) return;
  // The prompt must be shorter than the generation: a file much longer is refused from its header
  // (the library then checks the exact length in frames).
  check(musicgen_audio_read_limited(o.continue_path.c_str(), usable_input_seconds(o), 0, &in.prompt_audio));
  p.prompt_audio = in.prompt_audio.samples;
  p.prompt_audio_samples = in.prompt_audio.n_samples;
  p.prompt_audio_channels = in.prompt_audio.channels;
  p.prompt_audio_rate = in.prompt_audio.sample_rate;
}

// Melody condition: audio goes to the library as audio (re-sliced per window like audiocraft);
// chords, notes and MIDI become a chroma matrix here.
void prepare_melody(const musicgen_model* m, const Options& o, const std::string& model, Inputs& in,
                    musicgen_generate_params& p) {
  if (o.melody_sources() == 0) return;
  require(musicgen_model_is_melody(m),
          "'" + model + "' does not follow melodies: use a musicgen-melody snapshot for --melody/--chords/...");
  if (!o.melody.empty()) {
    // Only the generation's length of the tune is used: the rest is never decoded.
    check(musicgen_audio_read_limited(o.melody.c_str(), usable_input_seconds(o), 1, &in.melody_audio));
    p.melody_audio = in.melody_audio.samples;
    p.melody_samples = in.melody_audio.n_samples;
    p.melody_channels = in.melody_audio.channels;
    p.melody_rate = in.melody_audio.sample_rate;
    return;
  }
  in.chroma.resize(MUSICGEN_CHROMA_FRAMES * 12);
  std::string chords = o.chords, notes = o.notes;
  require(o.chords_file.empty() || read_text(o.chords_file, chords), "cannot read --chords-file '" + o.chords_file + "'");
  require(o.notes_file.empty() || read_text(o.notes_file, notes), "cannot read --notes-file '" + o.notes_file + "'");
  if (!o.compose.chroma.empty()) in.chroma = o.compose.chroma;  // composed before the model loaded
  else if (!chords.empty()) check(musicgen_chroma_from_chords(chords.c_str(), o.bpm, o.beats_per_chord, in.chroma.data()));
  else if (!notes.empty()) check(musicgen_chroma_from_notes(notes.c_str(), o.bpm, in.chroma.data()));
  else check(musicgen_chroma_from_midi(o.midi.c_str(), in.chroma.data()));
  p.chroma = in.chroma.data();
  p.chroma_frames = MUSICGEN_CHROMA_FRAMES;
}

// ---- run ----

musicgen_generate_params generation_params(const Options& o) {
  musicgen_generate_params p = musicgen_generate_default_params();
  p.prompt = o.prompt.c_str();
  p.duration_s = o.duration;
  p.extend_stride_s = o.stride;
  p.top_k = o.top_k;
  p.top_p = o.top_p;
  p.temperature = o.temperature;
  p.guidance_scale = o.cfg;
  p.greedy = o.greedy ? 1 : 0;
  p.seed = o.seed;
  p.drop_prompt = o.drop_prompt ? 1 : 0;
  p.normalize = o.normalize == "loudness" ? MUSICGEN_NORMALIZE_LOUDNESS
                : o.normalize == "clip"   ? MUSICGEN_NORMALIZE_CLIP
                : o.normalize == "none"   ? MUSICGEN_NORMALIZE_NONE
                                          : MUSICGEN_NORMALIZE_PEAK;
  return p;
}

// One generation (one prompt, one take) or a batch (--prompts-file, --takes): every output in
// prompt-major order.
std::vector<musicgen_audio> generate(musicgen_session* session, const musicgen_generate_params& p,
                                     const std::vector<std::string>& prompts, bool batch, int takes) {
  std::vector<const char*> cprompts;
  for (const std::string& s : prompts) cprompts.push_back(s.c_str());
  std::vector<musicgen_audio> outs(prompts.size() * size_t(takes));
  check(batch ? musicgen_session_generate_batch(session, &p, cprompts.data(), int(cprompts.size()), takes, outs.data())
              : musicgen_session_generate(session, &p, outs.data()));
  return outs;
}

// --stream alone: the generation streams its audio; the codes are dropped, nothing is decoded after.
std::vector<musicgen_audio> generate_stream_only(musicgen_session* session, const musicgen_generate_params& p) {
  encodec_codes* raw = nullptr;
  check(musicgen_session_generate_codes(session, &p, &raw));
  encodec_codes_free(raw);
  return {};
}

// --codes-out: the codes are generated, written as .ecdc, then decoded here, which gives the audio
// musicgen_session_generate would have given. Stereo models have two codec streams: no .ecdc.
std::vector<musicgen_audio> generate_with_codes(const musicgen_model* m, musicgen_session* session,
                                                const musicgen_generate_params& p, const Options& o) {
  require(musicgen_model_channels(m) == 1, "--codes-out: the codes of a stereo model are two EnCodec streams, "
                                           "which one .ecdc file cannot hold");
  encodec_codes* raw = nullptr;
  check(musicgen_session_generate_codes(session, &p, &raw));
  Codes codes(raw, encodec_codes_free);
  check(encodec_codes_write_ecdc(musicgen_model_codec(m), codes.get(), o.codes_out.c_str()));
  if (!o.quiet) std::fprintf(stderr, "wrote %s\n", o.codes_out.c_str());
  std::vector<musicgen_audio> outs(1);
  check(musicgen_session_decode_codes(session, codes.get(), p.normalize, outs.data()));
  return outs;
}

// --from-codes: an .ecdc file of this model's codes, decoded (and normalised) as a generation is.
std::vector<musicgen_audio> decode_codes_file(const musicgen_model* m, musicgen_session* session,
                                              const musicgen_generate_params& p, const Options& o) {
  encodec_codes* raw = nullptr;
  check(encodec_codes_read_ecdc(musicgen_model_codec(m), o.from_codes.c_str(), &raw));
  Codes codes(raw, encodec_codes_free);
  std::vector<musicgen_audio> outs(1);
  check(musicgen_session_decode_codes(session, codes.get(), p.normalize, outs.data()));
  return outs;
}

// ---- outputs ----

// --chroma-png: the chroma made from chords/notes/MIDI, or the one the library computes from the
// melody audio.
void write_chroma_png(const Options& o, const Inputs& in) {
  if (o.chroma_png.empty()) return;
  std::vector<float> shown = in.chroma;
  if (shown.empty()) {
    shown.resize(MUSICGEN_CHROMA_FRAMES * 12);
    check(musicgen_chroma_from_audio(&in.melody_audio, shown.data()));
  }
  check(musicgen_chroma_write_png(shown.data(), MUSICGEN_CHROMA_FRAMES, o.chroma_png.c_str()));
  if (!o.quiet) std::fprintf(stderr, "wrote %s\n", o.chroma_png.c_str());
}

// Writes every output (when a file is asked for) and frees it. A failed write is reported and
// the others are still written: returns 1 if any failed.
int write_outputs(const Options& o, std::vector<musicgen_audio>& outs,
                  const std::vector<std::string>& prompts, bool batch) {
  int rc = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string path = batch ? numbered(o.output, i + 1) : o.output;
    if (o.writes_file()) {
      if (musicgen_audio_write(&outs[i], path.c_str()) != MUSICGEN_OK) {
        std::fprintf(stderr, "musicgen-cli: error: %s\n", musicgen_last_error());
        rc = 1;
      } else if (!o.quiet) {
        std::fprintf(stderr, "wrote %s (%.2f s)%s%s\n", path.c_str(), double(outs[i].n_samples) / outs[i].sample_rate,
                     batch ? "  prompt: " : "", batch ? prompts[i / size_t(o.takes)].c_str() : "");
      }
    }
    musicgen_audio_free(&outs[i]);
  }
  return rc;
}

// --report: each written file analysed, against the key, chords and tempo asked for.
int report_outputs(const Options& o, size_t count, bool batch) {
  if (!o.report || !o.writes_file()) return 0;
  mgcli::ReportRequest r;
  r.chords = o.chords;
  // The key asked for: the composed melody's ("A minor; i VI ..." -> "A minor"), else the key the
  // chords or notes were moved to, else the one they were written in.
  r.key = !o.compose.description.empty() ? o.compose.description.substr(0, o.compose.description.find(';'))
          : !o.compose.transpose_to.empty() ? o.compose.transpose_to
                                            : o.compose.key;
  if (!o.chords_file.empty()) read_text(o.chords_file, r.chords);
  r.bpm = o.bpm_given ? o.bpm : 0.0f;
  r.chord_bpm = o.bpm;
  r.beats_per_chord = o.beats_per_chord;
  int rc = 0;
  for (size_t i = 0; i < count; ++i) rc |= mgcli::print_report(batch ? numbered(o.output, i + 1) : o.output, r);
  return rc;
}

int run(const Options& o) {
  validate_options(o);
  std::vector<std::string> prompts = read_prompts_file(o.prompts_file);
  const std::string model = resolve_model(o.model);
  const bool show = !o.quiet && isatty(STDERR_FILENO);
  Model m = load_model(o, model, show);
  Session session = new_session(o, m.get());

  musicgen_generate_params p = generation_params(o);
  if (!o.from_codes.empty()) {
    std::vector<musicgen_audio> outs = decode_codes_file(m.get(), session.get(), p, o);
    return write_outputs(o, outs, prompts, false);
  }
  Progress progress;
  progress.show = show;
  p.progress = on_progress;
  p.progress_user_data = &progress;
  StreamOut stream;
  stream.wav = o.stream_format == "wav";
  stream.rate = musicgen_model_sample_rate(m.get());
  if (!o.stream_to.empty()) {
    p.stream = on_stream;
    p.stream_user_data = &stream;
  }
  Inputs in;
  prepare_continuation(o, in, p);
  prepare_melody(m.get(), o, model, in, p);
  write_chroma_png(o, in);

  const bool batch = !prompts.empty() || o.takes > 1;
  if (prompts.empty()) prompts = {o.prompt};  // -p (or no prompt), as one take or several
  if (show)
    std::fprintf(stderr, "generating %zu x %.1f s on %s\n", prompts.size() * size_t(o.takes), o.duration,
                 musicgen_model_device_name(m.get()));
  // --stream without -o: the audio goes out only through the stream, so the codes are not decoded
  // again as a whole (that decode, which nothing would use, cost as much as a file's).
  const bool stream_only = !o.stream_to.empty() && !o.writes_file() && !batch && o.codes_out.empty();
  std::vector<musicgen_audio> outs = stream_only           ? generate_stream_only(session.get(), p)
                                     : o.codes_out.empty() ? generate(session.get(), p, prompts, batch, o.takes)
                                                           : generate_with_codes(m.get(), session.get(), p, o);
  in.free_audio();  // before the outputs are encoded: long inputs are large
  const int rc = write_outputs(o, outs, prompts, batch);
  return report_outputs(o, outs.size(), batch) || rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "analyze") return mgcli::analyze_main(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "quantize") return mgcli::quantize_main(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "train") return mgcli::train_main(argc - 1, argv + 1);
  CLI::App app;
  Options o;
  add_options(app, o);
  CLI11_PARSE(app, argc, argv);
  o.output_given = app.get_option("--output")->count() > 0;
  o.bpm_given = app.get_option("--bpm")->count() > 0;
  try {
    o.seed = parse_seed(o.seed_text);
    if (!mgcli::compose_melody(o.compose, o.seed, o.quiet)) return 1;
    if (!mgcli::apply_key(o.compose, o.chords, o.chords_file, o.notes, o.notes_file, o.quiet)) return 1;
    return run(o);
  } catch (const CliError& e) {
    std::fprintf(stderr, "musicgen-cli: error: %s\n", e.message.c_str());
    return 1;
  }
}
