/* libmusicgen: text-to-music with Meta's MusicGen, natively. The public C API.
 *
 * A musicgen_model (weights, tokenizer, codec) is loaded once, read-only; any number of
 * musicgen_sessions generate with it, each on its own thread (the rules: musicgen_common.h).
 *
 * Usage (see examples/generate.c):
 *   musicgen_model *model;
 *   musicgen_session *s;
 *   if (musicgen_model_load("weights/musicgen-small", NULL, &model) != MUSICGEN_OK) { puts(musicgen_last_error()); ... }
 *   musicgen_session_create(model, NULL, &s);
 *   musicgen_generate_params p = musicgen_generate_default_params();
 *   p.prompt = "electro"; p.duration_s = 10;
 *   musicgen_audio audio;
 *   if (musicgen_session_generate(s, &p, &audio) == MUSICGEN_OK) {
 *     musicgen_audio_write(&audio, "out.wav");
 *     musicgen_audio_free(&audio);
 *   }
 *   musicgen_session_free(s);
 *   musicgen_model_free(model);
 *
 * Every function returns a musicgen_status; musicgen_last_error() (per thread) says what went
 * wrong and where. Nothing here calls exit() or prints, but for one line on stderr when a model
 * load asked for MUSICGEN_DEVICE_AUTO cannot use the GPU and falls back to the CPU (it says why). */
#ifndef LIBMUSICGEN_MUSICGEN_H
#define LIBMUSICGEN_MUSICGEN_H

#include <stdint.h>

#include "encodec.h" /* encodec_codes, encodec_model: MusicGen's codec is EnCodec 32 kHz */
#include "musicgen_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum musicgen_normalize {
  MUSICGEN_NORMALIZE_PEAK = 0,     /* scale so the peak is at -1 dBFS (audiocraft's default) */
  MUSICGEN_NORMALIZE_LOUDNESS = 1, /* -14 LUFS (BS.1770-4), then clamp */
  MUSICGEN_NORMALIZE_CLIP = 2,     /* clamp at -1 dBFS */
  MUSICGEN_NORMALIZE_NONE = 3      /* as decoded (integer files clip at full scale) */
} musicgen_normalize;

typedef enum musicgen_weights {
  MUSICGEN_WEIGHTS_F32 = 0,  /* as stored in the checkpoint (the parity reference) */
  MUSICGEN_WEIGHTS_F16 = 1,  /* decoder projections in half precision: half the bytes per step */
  MUSICGEN_WEIGHTS_BF16 = 2,
  MUSICGEN_WEIGHTS_Q8 = 3,   /* q8_0 blocks (8.5 bits a weight): ~1/4 of f32's bytes per step */
  MUSICGEN_WEIGHTS_Q4 = 4    /* q4_0 blocks (4.5 bits a weight): ~1/7; coarser (docs/QUANTIZATION.md) */
} musicgen_weights;

typedef struct musicgen_model musicgen_model;     /* opaque: a loaded snapshot, shared by sessions */
typedef struct musicgen_session musicgen_session; /* opaque: one thread's generation state */

typedef struct musicgen_model_params {
  musicgen_device device;   /* default AUTO */
  musicgen_weights weights; /* decoder weight precision (accumulation is always f32) */
  int n_threads;            /* CPU threads used while loading; <= 0: all cores; at most 1024 */
  const char *lora_dir;     /* a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors)
                               merged into the decoder weights at load; NULL or "" = none (default) */
  float lora_scale;         /* multiplies the adapter's lora_alpha / r: default 1, 0 = the base model;
                               finite, |scale| at most MUSICGEN_MAX_SCALE */
} musicgen_model_params;

typedef struct musicgen_session_params {
  int n_threads; /* threads of the session's own CPU pool; <= 0: all cores; at most 1024 */
} musicgen_session_params;

/* Progress: called after each decoder step with (done, total). Abort: return non-zero to stop;
 * the call then returns MUSICGEN_ERROR_ABORTED. Both may be NULL. */
typedef void (*musicgen_progress_callback)(int64_t done, int64_t total, void *user_data);
typedef int (*musicgen_abort_callback)(void *user_data);
/* Streaming: decoded audio of the first sequence while generation runs, in order, planar
 * (channel c at samples + c * n_samples), in blocks of 0.5 s first, growing to 2 s; the first
 * block comes 33 frames (+ the delay pattern's steps) in. Streamed audio is NOT normalised (the
 * peak is not known yet); it is the raw decoder output: the samples a whole-file decode of the
 * same codes gives (MUSICGEN_NORMALIZE_NONE), up to float rounding. */
typedef void (*musicgen_stream_callback)(const float *samples, int64_t n_samples, int channels, void *user_data);

typedef struct musicgen_generate_params {
  const char *prompt;       /* UTF-8 text; NULL or "" = unconditional generation */
  float duration_s;         /* seconds of audio, prompt included (default 10, at most 3600). Above
                               the model's window (30 s) audiocraft's sliding window continues the
                               music. */
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
} musicgen_generate_params;

/* PCM produced by a session: planar float, channel c at samples + c * n_samples.
 * Owned by the caller: release with musicgen_audio_free. */
typedef struct musicgen_audio {
  float *samples;
  int64_t n_samples; /* per channel */
  int channels;
  int sample_rate;
} musicgen_audio;

MUSICGEN_API musicgen_model_params musicgen_model_default_params(void);
MUSICGEN_API musicgen_session_params musicgen_session_default_params(void);
MUSICGEN_API musicgen_generate_params musicgen_generate_default_params(void);

/* ---- the model ---- */

/* Loads a Hugging Face MusicGen snapshot folder (config.json, model.safetensors or sharded,
 * spiece.model). `params` may be NULL. MUSICGEN_ERROR_MODEL for a missing or unusable folder,
 * MUSICGEN_ERROR_DEVICE when CUDA was asked for and there is none. */
MUSICGEN_API musicgen_status musicgen_model_load(const char *model_dir, const musicgen_model_params *params,
                                                 musicgen_model **out);
/* After every session of the model has been freed. */
MUSICGEN_API void musicgen_model_free(musicgen_model *model);

/* Writes a quantized snapshot: the snapshot folder src_dir with its decoder projections and LM
 * heads stored as q8_0 (MUSICGEN_WEIGHTS_Q8) or q4_0 (MUSICGEN_WEIGHTS_Q4) blocks, everything else
 * unchanged, to the new folder dst_dir (written into a temporary folder, then renamed: it appears
 * complete or not at all; it must not exist yet). Load it with the same weights value: no
 * conversion at load, and any other value is MUSICGEN_ERROR_MODEL. */
MUSICGEN_API musicgen_status musicgen_quantize_snapshot(const char *src_dir, const char *dst_dir,
                                                        musicgen_weights scheme);

/* Model facts (0 / "none" for NULL). max_window: seconds one decoder window covers (30); longer
 * durations are generated window by window. frame_rate: code frames per second (50). */
MUSICGEN_API int musicgen_model_sample_rate(const musicgen_model *model);
MUSICGEN_API int musicgen_model_channels(const musicgen_model *model);
MUSICGEN_API int musicgen_model_num_codebooks(const musicgen_model *model);
MUSICGEN_API int musicgen_model_frame_rate(const musicgen_model *model);
MUSICGEN_API float musicgen_model_max_window(const musicgen_model *model);
MUSICGEN_API const char *musicgen_model_device_name(const musicgen_model *model); /* "cpu" or "cuda" */
/* Non-zero when the model follows a melody (musicgen-melody*). */
MUSICGEN_API int musicgen_model_is_melody(const musicgen_model *model);
/* The model's EnCodec (32 kHz), owned by the model (encodec_model_free ignores it; it lives as long
 * as the model): for encodec_codes_write_ecdc / encodec_codes_read_ecdc, or encodec sessions. */
MUSICGEN_API const encodec_model *musicgen_model_codec(const musicgen_model *model);

/* ---- sessions ---- */

/* `params` may be NULL. The model must outlive the session. */
MUSICGEN_API musicgen_status musicgen_session_create(const musicgen_model *model, const musicgen_session_params *params,
                                                     musicgen_session **out);
MUSICGEN_API void musicgen_session_free(musicgen_session *session);

MUSICGEN_API musicgen_status musicgen_session_generate(musicgen_session *session, const musicgen_generate_params *params,
                                                       musicgen_audio *out);
/* Several takes of several prompts as ONE batch (the rows share every weight read): out must hold
 * n_prompts * takes entries, filled prompt-major (prompt 0 take 0, prompt 0 take 1, ...). Take i of
 * the batch uses seed params->seed + i. params->prompt is ignored. */
MUSICGEN_API musicgen_status musicgen_session_generate_batch(musicgen_session *session,
                                                             const musicgen_generate_params *params,
                                                             const char *const *prompts, int n_prompts, int takes,
                                                             musicgen_audio *out);
/* The codes musicgen_session_generate decodes (same params, same codes), not decoded: one segment
 * of musicgen_model_num_codebooks codebooks (stereo models interleave left/right: L0 R0 L1 R1 ..),
 * audio length frames * 640. params->normalize is ignored. Free with encodec_codes_free. */
MUSICGEN_API musicgen_status musicgen_session_generate_codes(musicgen_session *session,
                                                             const musicgen_generate_params *params,
                                                             encodec_codes **out);
/* Codes (from musicgen_session_generate_codes or an .ecdc of this model) -> audio, normalised as
 * asked: musicgen_session_generate gives the same audio for the same request. */
MUSICGEN_API musicgen_status musicgen_session_decode_codes(musicgen_session *session, const encodec_codes *codes,
                                                           musicgen_normalize normalize, musicgen_audio *out);

/* ---- audio and melody helpers (no model needed, any thread) ---- */

MUSICGEN_API void musicgen_audio_free(musicgen_audio *audio);
/* Writes audio to a file; the format comes from the extension (.wav .flac .ogg .mp3). WAV is
 * 16-bit PCM. Written to a temporary name and renamed: an error never leaves half a file. */
MUSICGEN_API musicgen_status musicgen_audio_write(const musicgen_audio *audio, const char *path);
/* Reads an audio file (wav, flac, ogg, mp3; any rate and channel count) into out, e.g. for
 * prompt_audio. Free with musicgen_audio_free. */
MUSICGEN_API musicgen_status musicgen_audio_read(const char *path, musicgen_audio *out);
/* musicgen_audio_read of what a caller can use (0 < max_seconds <= MUSICGEN_MAX_DURATION_S):
 * cut = 0: a longer file is refused (MUSICGEN_ERROR_FORMAT), from its header before a sample is
 * read when the header says so (e.g. a continuation longer than the generation); cut != 0: only
 * the first max_seconds are decoded (e.g. the melody of a generation that long). */
MUSICGEN_API musicgen_status musicgen_audio_read_limited(const char *path, float max_seconds, int cut,
                                                        musicgen_audio *out);

/* Chroma conditions for melody models, written into out[frames * 12] (frames = 235: the 30 s the
 * model reads; the line loops to fill them). chords: "C G Am F7 | Dm7/C ..." at bpm (20..400) with
 * beats_per_chord (4 = a 4/4 bar); notes: "C4:1 E4:0.5 r:1 60:2" (durations in beats). A MIDI file
 * (type 0/1) takes its top voice. Errors name the token and its position. */
#define MUSICGEN_CHROMA_FRAMES 235
MUSICGEN_API musicgen_status musicgen_chroma_from_chords(const char *chords, float bpm, float beats_per_chord,
                                                         float *out);
MUSICGEN_API musicgen_status musicgen_chroma_from_notes(const char *notes, float bpm, float *out);
MUSICGEN_API musicgen_status musicgen_chroma_from_midi(const char *midi_path, float *out);
/* The chroma of a recording, fitted to MUSICGEN_CHROMA_FRAMES as the model reads it. */
MUSICGEN_API musicgen_status musicgen_chroma_from_audio(const musicgen_audio *audio, float *out);
/* A picture of a chroma condition (12 rows C..B, time across) as a PNG. */
MUSICGEN_API musicgen_status musicgen_chroma_write_png(const float *chroma, int64_t frames, const char *path);

/* ---- music analysis: key, tempo and chords of a recording (no model needed, any thread) ----
 * Key: Krumhansl-Schmuckler on the time-averaged chroma; tempo: onset autocorrelation with a
 * 120 bpm prior; chords: major/minor triads between beats, "N" for none. docs/analysis.md. */
typedef struct musicgen_analysis musicgen_analysis; /* opaque; free with musicgen_analysis_free */
/* Any file musicgen_audio_read reads. */
MUSICGEN_API musicgen_status musicgen_analyze_file(const char *path, musicgen_analysis **out);
/* Planar float (channel c at planar + c * frames), any rate and channel count. */
MUSICGEN_API musicgen_status musicgen_analyze_audio(const float *planar, int64_t frames, int channels, int rate,
                                                    musicgen_analysis **out);
MUSICGEN_API void musicgen_analysis_free(musicgen_analysis *a);
/* Key: tonic "C".."B" ("" when the audio has no pitch content), mode "major"/"minor" (or ""),
 * confidence 0..1 (best correlation scaled by its lead over the runner-up). */
MUSICGEN_API const char *musicgen_analysis_key(const musicgen_analysis *a);
MUSICGEN_API const char *musicgen_analysis_mode(const musicgen_analysis *a);
MUSICGEN_API float musicgen_analysis_key_confidence(const musicgen_analysis *a);
/* Tempo in bpm (0: no beat found); non-zero octave_ambiguous when half or double tempo scored
 * nearly as well (then alternative_bpm is that tempo). */
MUSICGEN_API float musicgen_analysis_bpm(const musicgen_analysis *a);
MUSICGEN_API int musicgen_analysis_octave_ambiguous(const musicgen_analysis *a);
MUSICGEN_API float musicgen_analysis_alternative_bpm(const musicgen_analysis *a);
/* Chords: count, then label ("C", "F#m", "N") and [start, end) in seconds of chord i. */
MUSICGEN_API int musicgen_analysis_chord_count(const musicgen_analysis *a);
MUSICGEN_API const char *musicgen_analysis_chord_label(const musicgen_analysis *a, int i);
MUSICGEN_API float musicgen_analysis_chord_start(const musicgen_analysis *a, int i);
MUSICGEN_API float musicgen_analysis_chord_end(const musicgen_analysis *a, int i);
/* Everything as JSON; owned by `a`, valid until musicgen_analysis_free. NULL for NULL. */
MUSICGEN_API const char *musicgen_analysis_to_json(const musicgen_analysis *a);
/* The analysis chroma (12 rows C..B, time across; 21.5 frames per second) as a PNG. */
MUSICGEN_API musicgen_status musicgen_analysis_write_chroma_png(const musicgen_analysis *a, const char *path);

/* ---- the melody composer (no model needed, any thread; docs/chroma.md, "Composer") ----
 * A description "A minor; i VI III VII; 8 bars; 90 bpm; ornaments 0.2" (key first, then any of: a
 * progression of roman numerals or chord names, a metre 2/4 3/4 4/4 2/2 6/8 9/8 12/8, "N bars",
 * "N bpm", "ornaments X" in [0, 1]) and a seed -> a melody; the same seed gives the same notes.
 * Errors name the field and token with their positions. */
typedef struct musicgen_composition musicgen_composition;
#define MUSICGEN_NOTE_CHORD_TONE 1u
#define MUSICGEN_NOTE_PASSING 2u
#define MUSICGEN_NOTE_NEIGHBOUR 4u
#define MUSICGEN_NOTE_ORNAMENT 8u
#define MUSICGEN_NOTE_CHROMATIC 16u  /* outside the key's scale */
#define MUSICGEN_NOTE_SUSPENSION 32u /* held over a strong beat (also ORNAMENT) */
typedef struct musicgen_composed_note {
  int pitch;             /* MIDI */
  double start_beat;     /* quarter notes from the start */
  double duration_beats;
  uint32_t flags;        /* MUSICGEN_NOTE_* bits */
} musicgen_composed_note;
MUSICGEN_API musicgen_status musicgen_compose(const char *description, uint64_t seed, musicgen_composition **out);
MUSICGEN_API void musicgen_composition_free(musicgen_composition *c);
MUSICGEN_API int musicgen_composition_note_count(const musicgen_composition *c); /* 0 for NULL */
MUSICGEN_API musicgen_status musicgen_composition_note(const musicgen_composition *c, int i, musicgen_composed_note *out);
MUSICGEN_API float musicgen_composition_bpm(const musicgen_composition *c);
/* The notes in the --notes syntax ("57:0.5 59:1 ..."); owned by c. NULL for NULL. */
MUSICGEN_API const char *musicgen_composition_notes_text(const musicgen_composition *c);
/* The melody condition, out[MUSICGEN_CHROMA_FRAMES * 12]: musicgen_chroma_from_notes of the notes text. */
MUSICGEN_API musicgen_status musicgen_composition_to_chroma(const musicgen_composition *c, float *out);
/* A Standard MIDI File (format 1: tempo, time and key signature, one melody track), written to a
 * temporary name and renamed. */
MUSICGEN_API musicgen_status musicgen_composition_write_midi(const musicgen_composition *c, const char *path);

/* ---- key check and transposition of --chords / --notes text (docs/chroma.md) ----
 * Keys as in the composer's descriptions ("A minor", "D dorian", "F#m"). key_check writes one line
 * per chord / note outside the key's scale ("chord 3 of 4 'Bb' is outside A minor (Bb not in the
 * scale)\n"), "" when all fit. transpose moves roots and slash basses (or notes) by the shortest
 * shift from from_key's tonic to to_key's (-5..+6), spelled in to_key's sharps or flats; the modes
 * must be the same. out receives NUL-terminated text; MUSICGEN_ERROR_INVALID_ARGUMENT when out_size
 * is too small (the message says how much is needed), or for malformed text or keys. */
MUSICGEN_API musicgen_status musicgen_key_check_chords(const char *chords, const char *key, char *out, size_t out_size);
MUSICGEN_API musicgen_status musicgen_key_check_notes(const char *notes, const char *key, char *out, size_t out_size);
MUSICGEN_API musicgen_status musicgen_transpose_chords(const char *chords, const char *from_key, const char *to_key,
                                                       char *out, size_t out_size);
MUSICGEN_API musicgen_status musicgen_transpose_notes(const char *notes, const char *from_key, const char *to_key,
                                                      char *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif /* LIBMUSICGEN_MUSICGEN_H */
