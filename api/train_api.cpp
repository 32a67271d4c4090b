// musicgen_train.h: LoRA fine-tuning (train/trainer.h) behind the C API.
#include <filesystem>

#include "api/api_internal.h"
#include "lm/generate.h"
#include "musicgen_train.h"
#include "train/trainer.h"

extern "C" musicgen_train_params musicgen_train_default_params(void) {
  musicgen_train_params p{};
  p.rank = 16;
  p.alpha = 32.0f;
  p.lora_dropout = 0.0f;
  p.targets = "q,k,v,o,cross,ffn";
  p.lr = 1e-4f;
  p.weight_decay = 0.01f;
  p.steps = 2000;
  p.warmup = -1;
  p.batch = 4;
  p.accumulate = 1;
  p.segment_seconds = 10.0;
  p.val_fraction = 0.1;
  p.clip = 1.0;
  p.cond_dropout = 0.1;
  p.log_every = 10;
  p.val_every = 200;
  p.save_every = 200;
  return p;
}

namespace {

using mg::capi::ArgumentError;

mg::train::TrainOptions options_of(const musicgen_train_params& p) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ArgumentError("musicgen_train: " + what);
  };
  need(p.data && *p.data, "no data folder given");
  need(p.out && *p.out, "no output folder given");
  need(p.rank >= 1 && p.rank <= 1024, mg::strcat("rank ", p.rank, " is outside [1, 1024]"));
  need(p.alpha > 0.0f, mg::strcat("alpha ", p.alpha, " must be positive"));
  need(p.lora_dropout >= 0.0f && p.lora_dropout < 1.0f, mg::strcat("LoRA dropout ", p.lora_dropout, " is outside [0, 1)"));
  need(p.lr > 0.0f && p.lr < 1.0f, mg::strcat("learning rate ", p.lr, " is outside (0, 1)"));
  need(p.weight_decay >= 0.0f, mg::strcat("weight decay ", p.weight_decay, " is negative"));
  need(p.steps >= 1 && p.steps <= 10000000, mg::strcat("steps ", p.steps, " is outside [1, 10000000]"));
  need(p.batch >= 1 && p.batch <= 1024, mg::strcat("batch ", p.batch, " is outside [1, 1024]"));
  need(p.accumulate >= 1 && p.accumulate <= 1024, mg::strcat("accumulation ", p.accumulate, " is outside [1, 1024]"));
  need(p.segment_seconds > 0.0 && p.segment_seconds <= 30.0,
       mg::strcat("segment ", p.segment_seconds, " s is outside (0, 30]"));
  need(p.val_fraction >= 0.0 && p.val_fraction < 1.0, mg::strcat("validation share ", p.val_fraction, " is outside [0, 1)"));
  need(p.clip >= 0.0, mg::strcat("gradient clip ", p.clip, " is negative"));
  need(p.cond_dropout >= 0.0 && p.cond_dropout <= 1.0,
       mg::strcat("condition dropout ", p.cond_dropout, " is outside [0, 1]"));
  need(p.threads >= 0 && p.threads <= 1024, mg::strcat("threads ", p.threads, " is outside [0, 1024]"));
  mg::train::TrainOptions o;
  o.data = p.data;
  o.out = p.out;
  o.lora.r = p.rank;
  o.lora.lora_alpha = p.alpha;
  o.lora.lora_dropout = p.lora_dropout;
  o.lora.targets = mg::parse_lora_targets(p.targets ? p.targets : "q,k,v,o,cross,ffn");
  o.adamw.lr = p.lr;
  o.adamw.weight_decay = p.weight_decay;
  o.steps = p.steps;
  o.warmup = p.warmup;
  o.batch = p.batch;
  o.accumulate = p.accumulate;
  o.segment_seconds = p.segment_seconds;
  o.val_fraction = p.val_fraction;
  o.clip = p.clip;
  o.cond_dropout = p.cond_dropout;
  o.log_every = p.log_every > 0 ? p.log_every : 10;
  o.val_every = p.val_every;
  o.save_every = p.save_every;
  o.seed = p.seed;
  o.resume = p.resume != 0;
  o.threads = p.threads;
  return o;
}

}  // namespace

extern "C" musicgen_status musicgen_train(const musicgen_train_params* params) {
  return mg::capi::guard("musicgen_train", MUSICGEN_ERROR_IO, [&] {
    if (!params) return mg::capi::fail(MUSICGEN_ERROR_INVALID_ARGUMENT, "musicgen_train: params is NULL");
    if (!params->model_path || !std::filesystem::is_directory(params->model_path))
      return mg::capi::fail(MUSICGEN_ERROR_MODEL, std::string("musicgen_train: model folder not found: ") +
                                                      (params->model_path ? params->model_path : "(none)"));
    const mg::train::TrainOptions o = options_of(*params);
    auto be = mg::make_cpu_backend(params->threads);
    auto model = mg::MusicGen::load(*be, params->model_path);
    mg::train::run_training(*be, *model, params->model_path, o, [&](const std::string& line) {
      if (params->log) params->log(line.c_str(), params->log_user);
    });
    return MUSICGEN_OK;
  });
}
