/* libmusicgen: text-to-music with Meta's MusicGen, natively. The public C API.
 *
 * Usage (see examples/generate.c):
 *   musicgen_context_params cp = musicgen_context_default_params();
 *   musicgen_context *ctx = musicgen_init(&cp);
 *   if (musicgen_load(ctx, "weights/musicgen-small") != MUSICGEN_OK) { puts(musicgen_error(ctx)); ... }
 *   musicgen_params p = musicgen_default_params();
 *   p.prompt = "electro"; p.duration_s = 10;
 *   musicgen_audio audio;
 *   if (musicgen_generate(ctx, &p, &audio) == MUSICGEN_OK) {
 *     musicgen_write_audio(ctx, &audio, "out.wav");
 *     musicgen_audio_free(&audio);
 *   }
 *   musicgen_free(ctx);
 *
 * Every function catches its own failures: it returns a status and musicgen_error(ctx) says what
 * went wrong and where. Nothing here calls exit() or prints. A context is not thread-safe; use
 * one per thread. */
#ifndef LIBMUSICGEN_MUSICGEN_H
#define LIBMUSICGEN_MUSICGEN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  MUSICGEN_OK = 0,
  MUSICGEN_ERR_INVALID_ARGUMENT = 1, /* a parameter is out of range */
  MUSICGEN_ERR_MODEL = 2,            /* the model folder is missing, incomplete or of the wrong kind */
  MUSICGEN_ERR_IO = 3,               /* a file could not be read or written */
  MUSICGEN_ERR_ABORTED = 4,          /* the abort callback asked to stop */
  MUSICGEN_ERR_DEVICE = 5,           /* the requested device is not available */
  MUSICGEN_ERR_INTERNAL = 6
} musicgen_status;

typedef enum { MUSICGEN_DEVICE_AUTO = 0, MUSICGEN_DEVICE_CPU = 1, MUSICGEN_DEVICE_CUDA = 2 } musicgen_device;

typedef enum {
  MUSICGEN_NORMALIZE_PEAK = 0,     /* scale so the peak is at -1 dBFS (audiocraft's default) */
  MUSICGEN_NORMALIZE_LOUDNESS = 1, /* -14 LUFS (BS.1770-4), then clamp */
  MUSICGEN_NORMALIZE_CLIP = 2,     /* clamp at -1 dBFS */
  MUSICGEN_NORMALIZE_NONE = 3      /* as decoded (integer files clip at full scale) */
} musicgen_normalize;

typedef enum {
  MUSICGEN_WEIGHTS_F32 = 0,  /* as stored in the checkpoint (the parity reference) */
  MUSICGEN_WEIGHTS_F16 = 1,  /* decoder projections in half precision: half the bytes per step */
  MUSICGEN_WEIGHTS_BF16 = 2
} musicgen_weights;

typedef struct musicgen_context musicgen_context;

typedef struct {
  musicgen_device device; /* AUTO: CUDA when built with it and a GPU is present, else CPU */
  int n_threads;          /* CPU threads; <= 0: all cores */
  musicgen_weights weights; /* decoder weight precision (accumulation is always f32) */
} musicgen_context_params;

/* Progress: called after each decoder step with (done, total). Abort: return non-zero to stop;
 * musicgen_generate then returns MUSICGEN_ERR_ABORTED. Both may be NULL. */
typedef void (*musicgen_progress_callback)(int64_t done, int64_t total, void *user_data);
typedef int (*musicgen_abort_callback)(void *user_data);
/* Streaming: decoded audio of the first sequence while generation runs, in order, planar
 * (channel c at samples + c * n_samples). Streamed audio is NOT normalised (the peak is not known
 * yet); it is the raw decoder output. */
typedef void (*musicgen_stream_callback)(const float *samples, int64_t n_samples, int channels, void *user_data);

typedef struct {
  const char *prompt;       /* UTF-8 text; NULL or "" = unconditional generation */
  float duration_s;         /* seconds of audio, prompt included (default 10). Above the model's
                               window (30 s) audiocraft's sliding window continues the music. */
  float extend_stride_s;    /* long generation: each new window starts this much later (default 18) */
  int top_k;                /* default 250 (audiocraft); 0 = off */
  float top_p;              /* default 0 = off; when > 0 it replaces top-k */
  float temperature;        /* default 1.0 */
  float guidance_scale;     /* classifier-free guidance, default 3.0; 1.0 = off */
  int greedy;               /* non-zero: argmax decoding (deterministic, for tests) */
  uint64_t seed;            /* same seed, model, settings and device: the same audio */
  musicgen_normalize normalize;
  musicgen_progress_callback progress;
  void *progress_user_data;
  musicgen_abort_callback abort;
  void *abort_user_data;
  musicgen_stream_callback stream;
  void *stream_user_data;
  /* Continuation: audio to continue (planar float, any rate and channel count: converted as
   * audiocraft does). NULL: none. The output starts with it unless drop_prompt. */
  const float *prompt_audio;
  int64_t prompt_audio_samples; /* per channel */
  int prompt_audio_channels;
  int prompt_audio_rate;
  int drop_prompt;
  /* Melody models (musicgen-melody*): the tune to follow, either as audio (planar float, any rate
   * and channels; its chroma is taken as the reference does, and re-sliced per window for long
   * generation) or as a chroma matrix [frames][12] at 7.8125 frames/s (e.g. from
   * musicgen_chords_to_chroma). NULL for both: no melody. */
  const float *melody_audio;
  int64_t melody_samples; /* per channel */
  int melody_channels;
  int melody_rate;
  const float *chroma;
  int64_t chroma_frames;
} musicgen_params;

/* PCM produced by musicgen_generate: planar float, channel c at samples + c * n_samples.
 * Owned by the caller: release with musicgen_audio_free. */
typedef struct {
  float *samples;
  int64_t n_samples; /* per channel */
  int channels;
  int sample_rate;
} musicgen_audio;

musicgen_context_params musicgen_context_default_params(void);
musicgen_params musicgen_default_params(void);

/* NULL only when memory is exhausted. */
musicgen_context *musicgen_init(const musicgen_context_params *params);
void musicgen_free(musicgen_context *ctx);

/* Loads a Hugging Face MusicGen snapshot folder (config.json, model.safetensors or sharded,
 * spiece.model). */
musicgen_status musicgen_load(musicgen_context *ctx, const char *model_dir);

/* Model facts (0 before a successful load). max_window: seconds one decoder window covers (30);
 * longer durations are generated window by window. */
int musicgen_sample_rate(const musicgen_context *ctx);
int musicgen_channels(const musicgen_context *ctx);
float musicgen_max_window(const musicgen_context *ctx);
const char *musicgen_device_name(const musicgen_context *ctx); /* "cpu" or "cuda" */

musicgen_status musicgen_generate(musicgen_context *ctx, const musicgen_params *params, musicgen_audio *out);

/* Several takes of several prompts as ONE batch (the rows share every weight read): out must hold
 * n_prompts * takes entries, filled prompt-major (prompt 0 take 0, prompt 0 take 1, ...). Take i of
 * the batch uses seed params->seed + i. params->prompt is ignored. */
musicgen_status musicgen_generate_batch(musicgen_context *ctx, const musicgen_params *params, const char *const *prompts,
                                        int n_prompts, int takes, musicgen_audio *out);
void musicgen_audio_free(musicgen_audio *audio);

/* Writes audio to a file; the format comes from the extension (.wav .flac .ogg .mp3). WAV is
 * 16-bit PCM. Written to a temporary name and renamed: an error never leaves half a file. */
musicgen_status musicgen_write_audio(musicgen_context *ctx, const musicgen_audio *audio, const char *path);

/* Chroma conditions for melody models, written into out[frames * 12] (frames = 235: the 30 s the
 * model reads; the line loops to fill them). chords: "C G Am F7 | Dm7/C ..." at bpm (20..400) with
 * beats_per_chord (4 = a 4/4 bar); notes: "C4:1 E4:0.5 r:1 60:2" (durations in beats). A MIDI file
 * (type 0/1) takes its top voice. Errors name the token and its position. */
#define MUSICGEN_CHROMA_FRAMES 235
musicgen_status musicgen_chords_to_chroma(musicgen_context *ctx, const char *chords, float bpm, float beats_per_chord,
                                          float *out);
musicgen_status musicgen_notes_to_chroma(musicgen_context *ctx, const char *notes, float bpm, float *out);
musicgen_status musicgen_midi_to_chroma(musicgen_context *ctx, const char *midi_path, float *out);
/* The chroma of a recording, fitted to MUSICGEN_CHROMA_FRAMES as the model reads it. */
musicgen_status musicgen_audio_to_chroma(musicgen_context *ctx, const musicgen_audio *audio, float *out);
/* A picture of a chroma condition (12 rows C..B, time across) as a PNG. */
musicgen_status musicgen_write_chroma_png(musicgen_context *ctx, const float *chroma, int64_t frames, const char *path);
/* Non-zero when the loaded model follows a melody. */
int musicgen_is_melody_model(const musicgen_context *ctx);

/* Reads an audio file (wav, flac, ogg, mp3; any rate and channel count) into out, e.g. for
 * prompt_audio. Free with musicgen_audio_free. */
musicgen_status musicgen_read_audio(musicgen_context *ctx, const char *path, musicgen_audio *out);

/* The last error of this context ("" when none). Valid until the next call on ctx. */
const char *musicgen_error(const musicgen_context *ctx);

#ifdef __cplusplus
}
#endif

#endif /* LIBMUSICGEN_MUSICGEN_H */
