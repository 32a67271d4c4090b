#include "train_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "musicgen_train.h"

namespace mgcli {

int train_main(int argc, char** argv) {
  CLI::App app("Fine-tune a MusicGen model with LoRA on a folder of music (audio files with optional "
               "audiocraft .json sidecars holding a \"description\", or a .jsonl manifest). Writes a PEFT "
               "adapter folder that 'musicgen-cli --lora DIR' loads. See docs/TRAINING.md.",
               "musicgen-cli train");
  musicgen_train_params p = musicgen_train_default_params();
  std::string model, data, out, targets = p.targets;
  app.add_option("--model", model, "MusicGen snapshot folder (f32 weights)")->required();
  app.add_option("--data", data, "Folder of audio files, or a .jsonl manifest")->required();
  app.add_option("--out", out, "Output folder: the adapter, checkpoint/ and the codes cache")->required();
  app.add_option("--rank", p.rank, "LoRA rank")->capture_default_str();
  app.add_option("--alpha", p.alpha, "LoRA alpha (scale = alpha / rank)")->capture_default_str();
  app.add_option("--lora-dropout", p.lora_dropout, "Dropout on the LoRA branch's input")->capture_default_str();
  app.add_option("--targets", targets, "Adapted layers: q,k,v,o (self-attention), cross, ffn, all")
      ->capture_default_str();
  app.add_option("--lr", p.lr, "Peak learning rate (AdamW)")->capture_default_str();
  app.add_option("--weight-decay", p.weight_decay, "AdamW weight decay")->capture_default_str();
  app.add_option("--steps", p.steps, "Optimizer steps")->capture_default_str();
  app.add_option("--warmup", p.warmup, "Warmup steps (-1: 5% of the steps)")->capture_default_str();
  app.add_option("--batch", p.batch, "Segments per micro-batch")->capture_default_str();
  app.add_option("--accumulate", p.accumulate, "Micro-batches per optimizer step")->capture_default_str();
  app.add_option("--segment", p.segment_seconds, "Segment length in seconds")->capture_default_str();
  app.add_option("--val", p.val_fraction, "Share of files held out for the validation loss")->capture_default_str();
  app.add_option("--clip", p.clip, "Gradient clipping (global norm, 0: none)")->capture_default_str();
  app.add_option("--cond-dropout", p.cond_dropout, "Probability a batch trains without text (CFG)")
      ->capture_default_str();
  app.add_option("--log-every", p.log_every, "Steps between progress lines")->capture_default_str();
  app.add_option("--val-every", p.val_every, "Steps between validation losses (0: at the end)")->capture_default_str();
  app.add_option("--save-every", p.save_every, "Steps between checkpoints (0: at the end)")->capture_default_str();
  app.add_option("--seed", p.seed, "Seed of the adapter init, segment choice and dropouts")->capture_default_str();
  app.add_option("--threads", p.threads, "CPU threads (0: every core)")->capture_default_str();
  bool resume = false;
  app.add_flag("--resume", resume, "Continue from OUT/checkpoint");
  CLI11_PARSE(app, argc, argv);
  p.model_path = model.c_str();
  p.data = data.c_str();
  p.out = out.c_str();
  p.targets = targets.c_str();
  p.resume = resume ? 1 : 0;
  p.log = [](const char* line, void*) {
    std::fprintf(stderr, "%s\n", line);
    std::fflush(stderr);
  };
  if (musicgen_train(&p) != MUSICGEN_OK) {
    std::fprintf(stderr, "error: %s\n", musicgen_last_error());
    return 1;
  }
  return 0;
}

}  // namespace mgcli
