// musicgen-cli: `musicgen-cli --prompt "electro" -o out.wav`. Uses only the public C API.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

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

int die(const std::string& msg) {
  std::fprintf(stderr, "musicgen-cli: error: %s\n", msg.c_str());
  return 1;
}

std::string lower_ext(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  for (char& c : e) c = char(std::tolower((unsigned char)c));
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Generate music from a text prompt with a MusicGen model, natively (no Python).\n\n"
               "  musicgen-cli --prompt \"lo-fi hip hop with a mellow piano\" -o out.wav\n"};
  app.name("musicgen-cli");
  std::string prompt, output = "out.wav", model, device = "auto", normalize = "peak", weights = "f32";
  float duration = 10.0f, top_p = 0.0f, temperature = 1.0f, cfg = 3.0f;
  int top_k = 250, threads = 0;
  uint64_t seed = 0;
  bool greedy = false, quiet = false;
  app.add_option("-p,--prompt", prompt, "Text description of the music (empty: unconditional)");
  app.add_option("-o,--output", output, "Output file; the format comes from the extension (.wav .flac .ogg .mp3)")
      ->capture_default_str();
  app.add_option("-d,--duration", duration, "Seconds of audio to generate (at most 30 for one window)")
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
  app.add_option("-t,--threads", threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--device", device, "Where to run: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--normalize", normalize, "Output level: peak (-1 dBFS), loudness (-14 LUFS), clip or none")
      ->check(CLI::IsMember({"peak", "loudness", "clip", "none"}))
      ->capture_default_str();
  app.add_option("--weights", weights, "Decoder weight precision: f32 (as stored), f16 or bf16 (half the memory traffic)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  app.add_flag("-q,--quiet", quiet, "No progress bar");
  CLI11_PARSE(app, argc, argv);

  // Validate everything cheap before loading a model of gigabytes.
  if (!(duration > 0)) return die("--duration must be > 0 seconds");
  if (top_k < 0) return die("--top-k must be >= 0");
  if (top_p < 0 || top_p > 1) return die("--top-p must be in [0, 1]");
  if (temperature < 0) return die("--temperature must be >= 0");
  if (!greedy && temperature > 0 && top_k == 0 && top_p == 0)
    return die("--top-k 0 with no --top-p samples from all 2048 codes; set --top-k (default 250) or --top-p");
  const std::string ext = lower_ext(output);
  if (ext != ".wav" && ext != ".flac" && ext != ".ogg" && ext != ".mp3")
    return die("cannot tell the format of '" + output + "': use a .wav, .flac, .ogg or .mp3 name");
  std::filesystem::path parent = std::filesystem::path(output).parent_path();
  if (parent.empty()) parent = ".";
  if (!std::filesystem::is_directory(parent) || access(parent.c_str(), W_OK) != 0)
    return die("cannot write '" + output + "': folder '" + parent.string() + "' does not exist or is not writable");
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
  const bool show = !quiet && isatty(STDERR_FILENO);
  if (show) std::fprintf(stderr, "loading %s ...\n", model.c_str());
  if (musicgen_load(ctx, model.c_str()) != MUSICGEN_OK) {
    std::string e = musicgen_error(ctx);
    musicgen_free(ctx);
    return die(e);
  }
  if (duration > musicgen_max_duration(ctx) + 1e-6f) {
    musicgen_free(ctx);
    return die("--duration " + std::to_string(duration) + " is above the " + std::to_string(musicgen_max_duration(ctx)) +
               " s this model generates in one window");
  }

  musicgen_params p = musicgen_default_params();
  p.prompt = prompt.c_str();
  p.duration_s = duration;
  p.top_k = top_k;
  p.top_p = top_p;
  p.temperature = temperature;
  p.guidance_scale = cfg;
  p.greedy = greedy ? 1 : 0;
  p.seed = seed;
  p.normalize = normalize == "loudness" ? MUSICGEN_NORMALIZE_LOUDNESS
                : normalize == "clip"   ? MUSICGEN_NORMALIZE_CLIP
                : normalize == "none"   ? MUSICGEN_NORMALIZE_NONE
                                        : MUSICGEN_NORMALIZE_PEAK;
  Progress progress;
  progress.show = show;
  p.progress = on_progress;
  p.progress_user_data = &progress;
  if (show) std::fprintf(stderr, "generating %.1f s on %s\n", duration, musicgen_device_name(ctx));

  musicgen_audio audio;
  if (musicgen_generate(ctx, &p, &audio) != MUSICGEN_OK) {
    std::string e = musicgen_error(ctx);
    musicgen_free(ctx);
    return die(e);
  }
  const musicgen_status ws = musicgen_write_audio(ctx, &audio, output.c_str());
  const std::string werr = musicgen_error(ctx);
  const double secs = double(audio.n_samples) / audio.sample_rate;
  musicgen_audio_free(&audio);
  musicgen_free(ctx);
  if (ws != MUSICGEN_OK) return die(werr);
  if (!quiet) std::fprintf(stderr, "wrote %s (%.2f s)\n", output.c_str(), secs);
  return 0;
}
