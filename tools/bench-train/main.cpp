// bench-train: optimizer steps per second of LoRA training (train/trainer.h) on a snapshot, with
// random codes of --segment seconds and one text, and the process's peak RSS. Prints one line:
//   bench-train model=<dir> batch=<b> segment=<s> frames=<T> steps=<n> threads=<t> steps_per_s=<x> peak_rss_mb=<m>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <random>

#include "kernels/cpu/threadpool.h"
#include "lm/generate.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  CLI::App app("LoRA training speed: optimizer steps/s on random codes (rank 16, alpha 32, all targets)");
  std::string model_dir;
  int batch = 1, steps = 3, threads = 0, rank = 16;
  double segment = 10.0;
  app.add_option("--model", model_dir, "MusicGen snapshot folder")->required();
  app.add_option("--batch", batch, "Segments per step")->capture_default_str();
  app.add_option("--segment", segment, "Seconds per segment")->capture_default_str();
  app.add_option("--steps", steps, "Timed steps (after one untimed warm-up step)")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (0: every core)")->capture_default_str();
  app.add_option("--rank", rank, "LoRA rank")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    auto be = mg::make_cpu_backend(threads);
    auto model = mg::MusicGen::load(*be, model_dir);
    const auto& cfg = model->config();
    const int64_t T = int64_t(segment * cfg.frame_rate());
    mg::Tensor text = be->download(
        model->project_text(*be, model->text_hidden_states(*be, model->tokenize("an upbeat electronic track"))));
    std::mt19937 rng(0);
    mg::train::TrainData data;
    for (int i = 0; i < 8; ++i) {
      mg::train::TrainSample s;
      s.codes.assign(cfg.decoder.num_codebooks, std::vector<int>(T));
      for (auto& row : s.codes)
        for (int& c : row) c = int(rng() % uint32_t(cfg.decoder.vocab_size));
      s.text = text;
      data.train.push_back(std::move(s));
    }
    mg::train::TrainOptions o;
    o.lora.r = rank;
    o.lora.lora_alpha = 2.0f * rank;
    o.lora.targets = mg::all_lora_modules();
    o.batch = batch;
    o.steps = steps + 1;
    o.warmup = 0;
    o.cond_dropout = 0.0;
    mg::cpu::ThreadPool pool(threads);
    mg::cpu::Exec ex;
    ex.pool = &pool;
    const mg::train::LoraTrainingModel tm(model->decoder(), cfg.delays());
    mg::train::TrainState st;
    st.params = mg::init_lora_adapter(o.lora, cfg.decoder, true, 0);
    mg::train::train_step(ex, tm, o, data, st);  // warm-up: first-touch allocations
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) mg::train::train_step(ex, tm, o, data, st);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("bench-train model=%s batch=%d segment=%g frames=%lld steps=%d threads=%d steps_per_s=%.4f "
                "peak_rss_mb=%.0f\n",
                model_dir.c_str(), batch, segment, (long long)T, steps, pool.size(), steps / secs,
                ru.ru_maxrss / 1024.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
