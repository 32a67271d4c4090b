/* libmusicgen: LoRA fine-tuning of a MusicGen snapshot's decoder on a folder of music.
 *
 * The data: a folder of audio files (searched recursively) with optional audiocraft-style sidecar
 * .json files ("description", genre, moods, ...), or a .jsonl manifest; each file is cut into
 * segments, EnCodec-encoded once and cached (docs/TRAINING.md). The T5 text encoder and EnCodec stay
 * frozen; only the LoRA matrices of the decoder's targeted linear layers train, with audiocraft's
 * loss, AdamW and a warmup + cosine schedule. The result is a PEFT adapter folder that
 * musicgen_model_load (and PEFT) loads. Training runs on the CPU. */
#ifndef LIBMUSICGEN_MUSICGEN_TRAIN_H
#define LIBMUSICGEN_MUSICGEN_TRAIN_H

#include <stdint.h>

#include "musicgen_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct musicgen_train_params {
  const char* model_path;      /* MusicGen snapshot folder (f32 weights) */
  const char* data;            /* folder of audio files or .jsonl manifest */
  const char* out;             /* output folder: the adapter, checkpoint/ and codes-cache/ */
  int rank;                    /* LoRA rank r (16) */
  float alpha;                 /* LoRA alpha: scale = alpha / r (32) */
  float lora_dropout;          /* dropout on the LoRA branch's input (0) */
  const char* targets;         /* comma list of q,k,v,o,cross,ffn,all ("q,k,v,o,cross,ffn") */
  float lr;                    /* peak learning rate (1e-4) */
  float weight_decay;          /* AdamW's decoupled weight decay (0.01) */
  int64_t steps;               /* optimizer steps (2000) */
  int64_t warmup;              /* warmup steps; -1: 5% of steps (-1) */
  int batch;                   /* segments per micro-batch (4) */
  int accumulate;              /* micro-batches per optimizer step (1) */
  double segment_seconds;      /* segment length (10) */
  double val_fraction;         /* share of files held out for the validation loss (0.1) */
  double clip;                 /* global gradient-norm clip, 0: none (1) */
  double cond_dropout;         /* probability a micro-batch trains the null text (0.1, as audiocraft) */
  int64_t log_every;           /* steps between progress lines (10) */
  int64_t val_every;           /* steps between validation losses, 0: at the end only (200) */
  int64_t save_every;          /* steps between checkpoints, 0: at the end only (200) */
  uint64_t seed;               /* adapter init, segment choice, dropouts (0) */
  int resume;                  /* non-zero: continue from out/checkpoint */
  int threads;                 /* CPU threads, 0: every core (0) */
  /* Progress lines ("step 10/2000  loss 7.12 ..."), dataset lines; NULL: none. */
  void (*log)(const char* line, void* user);
  void* log_user;
} musicgen_train_params;

MUSICGEN_API musicgen_train_params musicgen_train_default_params(void);

/* Trains and writes the adapter to params->out. Errors: a missing or empty data folder, an unreadable
 * audio file, bad numbers (each named), a checkpoint that does not match (resume). */
MUSICGEN_API musicgen_status musicgen_train(const musicgen_train_params* params);

#ifdef __cplusplus
}
#endif

#endif
