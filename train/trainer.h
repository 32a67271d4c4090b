// LoRA fine-tuning of a MusicGen snapshot on a folder of music (what `musicgen-cli train` runs):
// the dataset (train/dataset.h: cut, EnCodec-encoded once, cached), the text conditions computed
// once per track by the frozen T5, the training model (train/lora_decoder.h), AdamW with warmup +
// cosine schedule, gradient clipping and accumulation (train/adamw.h), validation loss, and
// checkpoints that resume bit-exactly on the same machine.
//
// Out folder:
//   adapter_config.json, adapter_model.safetensors   the adapter (PEFT's format), loads with --lora
//   checkpoint/                                      the same adapter + trainer_state.bin: the
//                                                    step, the AdamW moments and the random state
//
// Randomness (one generator seeded by `seed`, saved in checkpoints): which segments form each
// micro-batch (uniform, with replacement), condition dropout (audiocraft's
// ClassifierFreeGuidanceDropout: with probability cond_dropout a whole micro-batch trains the null
// condition) and the LoRA dropout masks.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "lm/generate.h"
#include "lm/lora.h"
#include "train/adamw.h"
#include "train/dataset.h"
#include "train/lora_decoder.h"

namespace mg::train {

struct TrainOptions {
  std::string data;                  // folder or .jsonl manifest (train/dataset.h)
  std::string out;                   // the output folder (created)
  LoraConfig lora;                   // rank, alpha, dropout, targets
  AdamWConfig adamw;
  int64_t steps = 2000;              // optimizer steps
  int64_t warmup = -1;               // -1: 5% of steps
  int batch = 4;                     // segments per micro-batch
  int accumulate = 1;                // micro-batches per optimizer step
  double segment_seconds = 10.0;
  double val_fraction = 0.1;
  double clip = 1.0;                 // global gradient norm; 0: no clipping
  double cond_dropout = 0.1;         // audiocraft's classifier-free-guidance training dropout
  int64_t log_every = 10;            // steps between progress lines
  int64_t val_every = 200;           // steps between validation losses (0: only at the end)
  int64_t save_every = 200;          // steps between checkpoints (0: only at the end)
  uint64_t seed = 0;
  bool resume = false;               // continue from out/checkpoint
  std::string cache_dir;             // "" = out/codes-cache
  int threads = 0;                   // 0: every core
};

// The training state a checkpoint holds.
struct TrainState {
  LoraAdapter params;
  AdamWState opt;
  int64_t step = 0;
  std::mt19937_64 rng;
};

// The samples training reads: codes and the projected text of each segment (texts shared per track).
struct TrainData {
  std::vector<TrainSample> train, validation;
};

// Turns a prepared dataset into samples, running the frozen T5 once per distinct text.
TrainData make_train_data(Backend& be, const MusicGen& model, const Dataset& ds);

// One optimizer step (accumulate micro-batches, clip, AdamW at the scheduled rate); returns the mean
// loss and sets *grad_norm (before clipping).
double train_step(const cpu::Exec& ex, const LoraTrainingModel& tm, const TrainOptions& o, const TrainData& data,
                  TrainState& st, double* grad_norm = nullptr);

// Mean loss over the validation samples (batches of o.batch, conditions kept, no dropout); NaN when
// there are none.
double validation_loss(const cpu::Exec& ex, const LoraTrainingModel& tm, const TrainOptions& o,
                       const std::vector<TrainSample>& val, const LoraAdapter& params);

// Checkpoint folder: the adapter (PEFT files) + trainer_state.bin. Written so a crash mid-save
// leaves the previous checkpoint readable (each file is replaced atomically).
void save_checkpoint(const std::string& dir, const TrainState& st);
TrainState load_checkpoint(const std::string& dir);

// The whole run (see the top of this file). `log` gets the progress lines.
void run_training(Backend& be, const MusicGen& model, const std::string& model_path, const TrainOptions& o,
                  const std::function<void(const std::string&)>& log);

}  // namespace mg::train
