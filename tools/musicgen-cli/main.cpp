// musicgen-cli: `musicgen-cli --prompt "electro" -o out.wav`. Uses only the public C API.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "encodec.h"
#include "musicgen.h"

namespace {

const char* kDefaultModel = "weights/musicgen-small";

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

int die(const std::string& msg) {
  std::fprintf(stderr, "musicgen-cli: error: %s\n", msg.c_str());
  return 1;
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Generate music from a text prompt with a MusicGen model, natively (no Python).\n\n"
               "  musicgen-cli --prompt \"lo-fi hip hop with a mellow piano\" -o out.wav\n"
               "  musicgen-cli -p \"epic orchestral\" -d 60 -o long.wav          # > 30 s: sliding window\n"
               "  musicgen-cli -p \"jazz\" --continue clip.wav -d 20 -o more.wav  # continue a recording\n"
               "  musicgen-cli --prompts-file prompts.txt --takes 2 -o take.wav  # take-1.wav, take-2.wav, ...\n"
               "  musicgen-cli -p \"ambient\" --stream - | aplay                  # hear it while it is made\n"
               "  musicgen-cli -m weights/musicgen-melody -p \"80s synth\" --melody bach.mp3 -o tune.wav\n"
               "  musicgen-cli -m weights/musicgen-melody --chords \"C G Am F\" --bpm 100 -o chords.wav\n"};
  app.name("musicgen-cli");
  std::string prompt, output = "out.wav", model, device = "auto", normalize = "peak", weights = "f32";
  std::string prompts_file, continue_path, stream_to, stream_format = "wav";
  std::string melody, chords, chords_file, notes, notes_file, midi, chroma_png;
  float bpm = 120.0f, beats_per_chord = 4.0f;
  float duration = 10.0f, top_p = 0.0f, temperature = 1.0f, cfg = 3.0f, stride = 18.0f;
  int top_k = 250, threads = 0, takes = 1;
  uint64_t seed = 0;
  bool greedy = false, quiet = false, drop_prompt = false;
  app.add_option("-p,--prompt", prompt, "Text description of the music (empty: unconditional)");
  CLI::Option* out_opt =
      app.add_option("-o,--output", output, "Output file; the format comes from the extension (.wav .flac .ogg .mp3)")
          ->capture_default_str();
  app.add_option("-d,--duration", duration, "Seconds of audio (prompt included); above 30 s windows are chained")
      ->capture_default_str();
  app.add_option("-m,--model", model,
                 "MusicGen snapshot folder (default: $MUSICGEN_MODEL, else weights/musicgen-small)");
  app.add_option("-s,--seed", seed, "Random seed: the same seed, model, settings and device give the same audio")
      ->capture_default_str();
  app.add_option("--top-k", top_k, "Sample from the k most likely codes (0: off)")->capture_default_str();
  app.add_option("--top-p", top_p, "Nucleus sampling mass (0: off; when set it replaces top-k)")->capture_default_str();
  app.add_option("--temperature", temperature, "Softmax temperature (0: greedy)")->capture_default_str();
  app.add_option("--cfg", cfg, "Classifier-free guidance scale (1: off)")->capture_default_str();
  app.add_flag("--greedy", greedy, "Always take the most likely code (deterministic)");
  app.add_option("--extend-stride", stride, "Long generation: seconds each new window moves on (the rest of the "
                                            "window prompts it)")
      ->capture_default_str();
  app.add_option("--continue", continue_path, "Continue this recording (any format, rate, channels)");
  app.add_flag("--drop-prompt", drop_prompt, "With --continue: leave the prompt audio out of the output");
  app.add_option("--prompts-file", prompts_file, "One prompt per line, all generated as one batch");
  app.add_option("--takes", takes, "Takes per prompt (one batch; take i uses seed + i)")->capture_default_str();
  app.add_option("--stream", stream_to, "Write audio to stdout while generating: '-' (raw decoder output, not "
                                        "normalised)");
  app.add_option("--stream-format", stream_format, "Stream as a WAV (header with unknown length) or raw s16le")
      ->check(CLI::IsMember({"wav", "raw"}))
      ->capture_default_str();
  app.add_option("--melody", melody, "Melody models: follow the tune of this recording (any format)");
  app.add_option("--chords", chords, "Melody models: a chord progression, e.g. \"C G Am F7 | Dm/F\"");
  app.add_option("--chords-file", chords_file, "Melody models: a text file of chords");
  app.add_option("--notes", notes, "Melody models: notes with durations in beats, e.g. \"C4:1 E4:0.5 G4\"");
  app.add_option("--notes-file", notes_file, "Melody models: a text file of notes");
  app.add_option("--midi", midi, "Melody models: a MIDI file (its top voice)");
  app.add_option("--bpm", bpm, "Tempo for --chords/--notes (20..400)")->capture_default_str();
  app.add_option("--beats-per-chord", beats_per_chord, "Beats each chord lasts (4 = a 4/4 bar)")->capture_default_str();
  app.add_option("--chroma-png", chroma_png, "Write a picture of the melody condition (the chroma the model reads)");
  app.add_option("-t,--threads", threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--device", device, "Where to run: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--weights", weights, "Decoder weight precision: f32 (as stored), f16 or bf16 (half the memory traffic)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  app.add_option("--normalize", normalize, "Output level: peak (-1 dBFS), loudness (-14 LUFS), clip or none")
      ->check(CLI::IsMember({"peak", "loudness", "clip", "none"}))
      ->capture_default_str();
  app.add_flag("-q,--quiet", quiet, "No progress bar");
  app.set_version_flag("--version", [] { return std::string("musicgen-cli ") + encodec_version() + "\n" + encodec_system_info(); },
                       "Print the version and what this machine's backends use (SIMD, BLAS kernels, CUDA), then exit");
  CLI11_PARSE(app, argc, argv);

  // Validate everything cheap before loading a model of gigabytes.
  if (!(duration > 0)) return die("--duration must be > 0 seconds");
  if (top_k < 0) return die("--top-k must be >= 0");
  if (top_p < 0 || top_p > 1) return die("--top-p must be in [0, 1]");
  if (temperature < 0) return die("--temperature must be >= 0");
  if (takes < 1) return die("--takes must be >= 1");
  if (!greedy && temperature > 0 && top_k == 0 && top_p == 0)
    return die("--top-k 0 with no --top-p samples from all 2048 codes; set --top-k (default 250) or --top-p");
  if (!stream_to.empty() && stream_to != "-") return die("--stream takes '-' (standard output)");
  const bool write_file = stream_to.empty() || out_opt->count() > 0;
  if (write_file) {
    const std::string ext = lower_ext(output);
    if (ext != ".wav" && ext != ".flac" && ext != ".ogg" && ext != ".mp3")
      return die("cannot tell the format of '" + output + "': use a .wav, .flac, .ogg or .mp3 name");
    std::filesystem::path parent = std::filesystem::path(output).parent_path();
    if (parent.empty()) parent = ".";
    if (!std::filesystem::is_directory(parent) || access(parent.c_str(), W_OK) != 0)
      return die("cannot write '" + output + "': folder '" + parent.string() + "' does not exist or is not writable");
  }
  const int melody_sources = !melody.empty() + !chords.empty() + !chords_file.empty() + !notes.empty() +
                             !notes_file.empty() + !midi.empty();
  if (melody_sources > 1) return die("give one of --melody, --chords, --chords-file, --notes, --notes-file, --midi");
  if (!chroma_png.empty() && melody_sources == 0) return die("--chroma-png needs a melody (--melody, --chords, ...)");
  if (!chroma_png.empty() && lower_ext(chroma_png) != ".png") return die("--chroma-png needs a .png file name");
  std::vector<std::string> prompts;
  if (!prompts_file.empty()) {
    std::ifstream f(prompts_file);
    if (!f) return die("cannot read --prompts-file '" + prompts_file + "'");
    for (std::string line; std::getline(f, line);)
      if (!line.empty()) prompts.push_back(line);
    if (prompts.empty()) return die("--prompts-file '" + prompts_file + "' has no prompts");
  }
  if (model.empty()) {
    const char* env = std::getenv("MUSICGEN_MODEL");
    model = env && *env ? env : kDefaultModel;
  }
  if (!std::filesystem::is_directory(model))
    return die("model folder '" + model + "' not found. Download one with:\n  weights/download.sh musicgen-small\n"
               "or pass --model DIR (a Hugging Face MusicGen snapshot folder)");

  musicgen_context_params cp = musicgen_context_default_params();
  cp.device = device == "cpu" ? MUSICGEN_DEVICE_CPU : device == "cuda" ? MUSICGEN_DEVICE_CUDA : MUSICGEN_DEVICE_AUTO;
  cp.n_threads = threads;
  cp.weights = weights == "f16" ? MUSICGEN_WEIGHTS_F16 : weights == "bf16" ? MUSICGEN_WEIGHTS_BF16 : MUSICGEN_WEIGHTS_F32;
  musicgen_context* ctx = musicgen_init(&cp);
  if (!ctx) return die("out of memory");
  auto fail = [&](const std::string& what) {
    std::string e = what.empty() ? musicgen_error(ctx) : what;
    musicgen_free(ctx);
    return die(e);
  };
  const bool show = !quiet && isatty(STDERR_FILENO);
  if (show) std::fprintf(stderr, "loading %s ...\n", model.c_str());
  if (musicgen_load(ctx, model.c_str()) != MUSICGEN_OK) return fail("");
  const float window = musicgen_max_window(ctx);
  if (duration > window + 1e-6f && !(stride > 0 && stride < window))
    return fail("--extend-stride must be between 0 and " + std::to_string(window) + " s for durations above the window");

  musicgen_params p = musicgen_default_params();
  p.prompt = prompt.c_str();
  p.duration_s = duration;
  p.extend_stride_s = stride;
  p.top_k = top_k;
  p.top_p = top_p;
  p.temperature = temperature;
  p.guidance_scale = cfg;
  p.greedy = greedy ? 1 : 0;
  p.seed = seed;
  p.drop_prompt = drop_prompt ? 1 : 0;
  p.normalize = normalize == "loudness" ? MUSICGEN_NORMALIZE_LOUDNESS
                : normalize == "clip"   ? MUSICGEN_NORMALIZE_CLIP
                : normalize == "none"   ? MUSICGEN_NORMALIZE_NONE
                                        : MUSICGEN_NORMALIZE_PEAK;
  Progress progress;
  progress.show = show;
  p.progress = on_progress;
  p.progress_user_data = &progress;
  StreamOut stream;
  stream.wav = stream_format == "wav";
  stream.rate = musicgen_sample_rate(ctx);
  if (!stream_to.empty()) {
    p.stream = on_stream;
    p.stream_user_data = &stream;
  }
  musicgen_audio prompt_audio{};
  if (!continue_path.empty()) {
    if (musicgen_read_audio(ctx, continue_path.c_str(), &prompt_audio) != MUSICGEN_OK) return fail("");
    p.prompt_audio = prompt_audio.samples;
    p.prompt_audio_samples = prompt_audio.n_samples;
    p.prompt_audio_channels = prompt_audio.channels;
    p.prompt_audio_rate = prompt_audio.sample_rate;
  }

  // Melody condition: audio goes to the library as audio (re-sliced per window like audiocraft);
  // chords, notes and MIDI become a chroma matrix here.
  musicgen_audio melody_audio{};
  std::vector<float> chroma;
  if (melody_sources > 0 && !musicgen_is_melody_model(ctx))
    return fail("'" + model + "' does not follow melodies: use a musicgen-melody snapshot for --melody/--chords/...");
  if (!melody.empty()) {
    if (musicgen_read_audio(ctx, melody.c_str(), &melody_audio) != MUSICGEN_OK) return fail("");
    p.melody_audio = melody_audio.samples;
    p.melody_samples = melody_audio.n_samples;
    p.melody_channels = melody_audio.channels;
    p.melody_rate = melody_audio.sample_rate;
  } else if (melody_sources > 0) {
    chroma.resize(MUSICGEN_CHROMA_FRAMES * 12);
    musicgen_status cs = MUSICGEN_OK;
    auto slurp = [](const std::string& path, std::string& text) {
      std::ifstream f(path);
      if (!f) return false;
      text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
      return true;
    };
    if (!chords_file.empty() && !slurp(chords_file, chords)) return fail("cannot read --chords-file '" + chords_file + "'");
    if (!notes_file.empty() && !slurp(notes_file, notes)) return fail("cannot read --notes-file '" + notes_file + "'");
    if (!chords.empty()) cs = musicgen_chords_to_chroma(ctx, chords.c_str(), bpm, beats_per_chord, chroma.data());
    else if (!notes.empty()) cs = musicgen_notes_to_chroma(ctx, notes.c_str(), bpm, chroma.data());
    else cs = musicgen_midi_to_chroma(ctx, midi.c_str(), chroma.data());
    if (cs != MUSICGEN_OK) return fail("");
    p.chroma = chroma.data();
    p.chroma_frames = MUSICGEN_CHROMA_FRAMES;
  }
  if (!chroma_png.empty()) {
    std::vector<float> shown = chroma;
    if (shown.empty()) {
      shown.resize(MUSICGEN_CHROMA_FRAMES * 12);
      if (musicgen_audio_to_chroma(ctx, &melody_audio, shown.data()) != MUSICGEN_OK) return fail("");
    }
    if (musicgen_write_chroma_png(ctx, shown.data(), MUSICGEN_CHROMA_FRAMES, chroma_png.c_str()) != MUSICGEN_OK)
      return fail("");
    if (!quiet) std::fprintf(stderr, "wrote %s\n", chroma_png.c_str());
  }

  const bool batch = !prompts.empty() || takes > 1;
  if (!batch) prompts = {prompt};
  std::vector<const char*> cprompts;
  for (const std::string& s : prompts) cprompts.push_back(s.c_str());
  std::vector<musicgen_audio> outs(prompts.size() * size_t(takes));
  if (show)
    std::fprintf(stderr, "generating %zu x %.1f s on %s\n", outs.size(), duration, musicgen_device_name(ctx));
  const musicgen_status gs = batch ? musicgen_generate_batch(ctx, &p, cprompts.data(), int(cprompts.size()), takes,
                                                             outs.data())
                                   : musicgen_generate(ctx, &p, outs.data());
  musicgen_audio_free(&prompt_audio);
  musicgen_audio_free(&melody_audio);
  if (gs != MUSICGEN_OK) return fail("");
  int rc = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string path = batch ? numbered(output, i + 1) : output;
    if (write_file) {
      if (musicgen_write_audio(ctx, &outs[i], path.c_str()) != MUSICGEN_OK) {
        std::fprintf(stderr, "musicgen-cli: error: %s\n", musicgen_error(ctx));
        rc = 1;
      } else if (!quiet) {
        std::fprintf(stderr, "wrote %s (%.2f s)%s%s\n", path.c_str(), double(outs[i].n_samples) / outs[i].sample_rate,
                     batch ? "  prompt: " : "", batch ? prompts[i / size_t(takes)].c_str() : "");
      }
    }
    musicgen_audio_free(&outs[i]);
  }
  musicgen_free(ctx);
  return rc;
}
