/* libmusicgen: the EnCodec C API: audio files and buffers (read, write, convert), the EnCodec
 * model (24, 32 and 48 kHz: encode audio to codes, decode codes to audio) and .ecdc files
 * (compress / decompress, byte-compatible with Meta's encodec package). encodec-tool is built on
 * this header alone.
 *
 * Plain C, usable from any language with a C FFI. The conventions (names, handles, statuses, the
 * per-thread error message) and the thread-safety rules are those of musicgen_common.h: a loaded
 * encodec_model is shared read-only by any number of encodec_sessions, one per thread.
 *
 * Audio is float32, planar (one array per channel), at any sample rate and channel count. */
#ifndef LIBMUSICGEN_ENCODEC_H
#define LIBMUSICGEN_ENCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "musicgen_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One-line aliases kept for EnCodec users: musicgen_version(), musicgen_status_string(),
 * musicgen_last_error() (the same strings, the same per-thread slot). */
MUSICGEN_API const char* encodec_version(void);
MUSICGEN_API const char* encodec_status_string(musicgen_status status);
MUSICGEN_API const char* encodec_last_error(void);

/* ---- audio buffers ---- */

typedef struct encodec_audio encodec_audio; /* opaque: sample rate + planar float32 channels */

/* How integer or float samples are stored when writing; lossy formats (.ogg, .mp3) ignore it. */
typedef enum encodec_subtype {
  ENCODEC_SUBTYPE_PCM16 = 0, /* the default: 16-bit integers, samples clipped to [-1, 1] */
  ENCODEC_SUBTYPE_PCM24 = 1, /* 24-bit integers, samples clipped to [-1, 1] */
  ENCODEC_SUBTYPE_FLOAT = 2  /* 32-bit float, stored unchanged (.wav only) */
} encodec_subtype;

/* A new buffer of `channels` silent channels of `frames` samples at `sample_rate` Hz. */
MUSICGEN_API musicgen_status encodec_audio_create(int sample_rate, int channels, int64_t frames,
                                                encodec_audio** out);
/* Reads a .wav/.flac/.ogg/.mp3 file. Fails on a missing or unreadable file, an empty one, or a
 * non-finite sample. */
MUSICGEN_API musicgen_status encodec_audio_read(const char* path, encodec_audio** out);
/* Writes `audio` to `path`; the format comes from the extension (.wav .flac .ogg .mp3). The file
 * appears complete or not at all: it is written under a temporary name and renamed at the end. */
MUSICGEN_API musicgen_status encodec_audio_write(const char* path, const encodec_audio* audio,
                                               encodec_subtype subtype);
/* A new buffer resampled to `sample_rate` (julius/audiocraft resampler) and then converted to
 * `channels` (mono = mean of the channels; mono -> N = copies; N -> M < N = first M channels),
 * as audiocraft's convert_audio. */
MUSICGEN_API musicgen_status encodec_audio_convert(const encodec_audio* in, int sample_rate, int channels,
                                                 encodec_audio** out);
/* encodec_audio_read + encodec_audio_convert + encodec_audio_write of a file of any length, block by
 * block: the same samples, in memory that does not grow with the file (encodec-tool convert). */
MUSICGEN_API musicgen_status encodec_audio_convert_file(const char* in_path, const char* out_path, int sample_rate,
                                                      int channels, encodec_subtype subtype);
MUSICGEN_API void encodec_audio_free(encodec_audio* audio);

MUSICGEN_API int encodec_audio_sample_rate(const encodec_audio* audio);
MUSICGEN_API int encodec_audio_channels(const encodec_audio* audio);
MUSICGEN_API int64_t encodec_audio_frames(const encodec_audio* audio);
/* The samples of one channel (`frames` floats), owned by the buffer; NULL for a bad channel. */
MUSICGEN_API float* encodec_audio_channel_data(encodec_audio* audio, int channel);
MUSICGEN_API const float* encodec_audio_channel_data_const(const encodec_audio* audio, int channel);

/* ---- the EnCodec model and its sessions ----
 *
 * A model holds one loaded EnCodec (encodec_24khz, encodec_32khz, encodec_48khz, or the codec
 * inside a MusicGen snapshot), read-only. A session computes with it: its own CPU thread pool and
 * buffers (on CUDA: the model's GPU, one session at a time). Long audio is processed in windows, so
 * memory stays bounded (see docs/ARCHITECTURE.md and codec/encodec.cpp for where windowed results
 * can differ in the last float bits from a whole-file pass).
 *
 *   encodec_model *model;
 *   encodec_session *s;
 *   if (encodec_model_load("weights/encodec_24khz", NULL, &model) != MUSICGEN_OK) puts(musicgen_last_error());
 *   encodec_session_create(model, NULL, &s);
 *   encodec_session_compress_file(s, "song.mp3", "song.ecdc", 6.0);
 *   encodec_session_decompress_file(s, "song.ecdc", "song.wav", ENCODEC_SUBTYPE_PCM16);
 *   encodec_session_free(s);
 *   encodec_model_free(model);
 */

typedef struct encodec_model encodec_model;     /* opaque: a loaded model, shared by sessions */
typedef struct encodec_session encodec_session; /* opaque: one thread's computation state */
typedef struct encodec_codes encodec_codes;     /* opaque: the codes of one encoded clip */

typedef struct encodec_model_params {
  musicgen_device device; /* default AUTO */
  int n_threads;          /* CPU threads used while loading; <= 0: all hardware threads; at most 1024 */
} encodec_model_params;

typedef struct encodec_session_params {
  int n_threads; /* threads of the session's own CPU pool; <= 0: all hardware threads; at most 1024 */
} encodec_session_params;

MUSICGEN_API encodec_model_params encodec_model_default_params(void);
MUSICGEN_API encodec_session_params encodec_session_default_params(void);

/* Loads a Hugging Face snapshot folder: an EnCodec one (config.json + model.safetensors), or a
 * MusicGen one, whose codec is its "audio_encoder". `params` may be NULL (defaults). Fails with
 * MUSICGEN_ERROR_IO for a missing folder or file, MUSICGEN_ERROR_FORMAT for a folder that holds
 * something else (e.g. a non-EnCodec config) or broken weights, MUSICGEN_ERROR_DEVICE when CUDA
 * was asked for and there is none. */
MUSICGEN_API musicgen_status encodec_model_load(const char* model_path, const encodec_model_params* params,
                                                encodec_model** out);
MUSICGEN_API void encodec_model_free(encodec_model* model);

MUSICGEN_API int encodec_model_sample_rate(const encodec_model* model);
MUSICGEN_API int encodec_model_channels(const encodec_model* model);
/* The name written into .ecdc files ("encodec_24khz", "encodec_32khz", "encodec_48khz"), or ""
 * for a non-standard model (which encodes and decodes, but has no .ecdc name). */
MUSICGEN_API const char* encodec_model_name(const encodec_model* model);
/* The bandwidths (kbps) the model supports, ascending; i in [0, count). */
MUSICGEN_API int encodec_model_num_bandwidths(const encodec_model* model);
MUSICGEN_API double encodec_model_bandwidth(const encodec_model* model, int i);
/* Codebooks used at `kbps` (<= 0: the highest bandwidth; 0 when the model does not support it). */
MUSICGEN_API int encodec_model_num_codebooks(const encodec_model* model, double kbps);

/* `params` may be NULL (defaults). */
MUSICGEN_API musicgen_status encodec_session_create(const encodec_model* model, const encodec_session_params* params,
                                                    encodec_session** out);
MUSICGEN_API void encodec_session_free(encodec_session* session);

/* Audio -> codes at `kbps` (one of the model's bandwidths; <= 0: the highest). Audio at another
 * rate or channel count is first converted as audiocraft's convert_audio does. */
MUSICGEN_API musicgen_status encodec_session_encode(encodec_session* session, const encodec_audio* audio, double kbps,
                                                    encodec_codes** out);
/* Codes -> audio at the model's rate and channels, trimmed to the codes' audio length. */
MUSICGEN_API musicgen_status encodec_session_decode(encodec_session* session, const encodec_codes* codes,
                                                    encodec_audio** out);

/* ---- codes ---- */

/* Codes of one segment made by the caller: data[k * frames + t] for k < num_codebooks, t < frames;
 * audio_length: samples per channel they decode to (<= 0: frames * the model's hop length). */
MUSICGEN_API musicgen_status encodec_codes_create(int num_codebooks, int64_t frames, const int64_t* data,
                                                  int64_t audio_length, encodec_codes** out);
MUSICGEN_API void encodec_codes_free(encodec_codes* codes);
MUSICGEN_API int encodec_codes_num_codebooks(const encodec_codes* codes);
MUSICGEN_API int64_t encodec_codes_audio_length(const encodec_codes* codes); /* samples per channel */
/* Segments: 1, except for models that encode 1 s segments (encodec_48khz). */
MUSICGEN_API int encodec_codes_num_segments(const encodec_codes* codes);
MUSICGEN_API int64_t encodec_codes_num_frames(const encodec_codes* codes, int segment);
/* Segment `segment`'s codes, codebook-major: data[k * frames + t]; NULL for a bad segment. */
MUSICGEN_API const int64_t* encodec_codes_data(const encodec_codes* codes, int segment);
/* The segment's renormalisation scale (encodec_48khz), or 1.0 for models that do not normalise. */
MUSICGEN_API float encodec_codes_scale(const encodec_codes* codes, int segment);

/* ---- .ecdc files (the container of facebookresearch/encodec, without the entropy-coding LM) ---- */

/* Codes -> .ecdc file for `model` (written under a temporary name, renamed at the end). Refused
 * (MUSICGEN_ERROR_INVALID_ARGUMENT) for a model without an .ecdc name (encodec_model_name ""). */
MUSICGEN_API musicgen_status encodec_codes_write_ecdc(const encodec_model* model, const encodec_codes* codes,
                                                      const char* ecdc_path);
/* .ecdc file -> codes; the file's model must be `model` (MUSICGEN_ERROR_INVALID_ARGUMENT
 * otherwise); a corrupt or entropy-coded ("lm": true) file is MUSICGEN_ERROR_FORMAT. */
MUSICGEN_API musicgen_status encodec_codes_read_ecdc(const encodec_model* model, const char* ecdc_path,
                                                     encodec_codes** out);

/* Audio -> .ecdc bytes; free *data with encodec_bytes_free. */
MUSICGEN_API musicgen_status encodec_session_compress(encodec_session* session, const encodec_audio* audio,
                                                      double kbps, uint8_t** data, size_t* size);
/* .ecdc bytes -> audio. Errors as encodec_codes_read_ecdc. */
MUSICGEN_API musicgen_status encodec_session_decompress(encodec_session* session, const uint8_t* data, size_t size,
                                                        encodec_audio** out);
MUSICGEN_API void encodec_bytes_free(uint8_t* data);

/* Audio file (any rate/channels) -> .ecdc file; and back. The output file appears complete or not
 * at all (written under a temporary name, renamed at the end). Both stream their files block by
 * block: any length, in memory that does not grow with it; the results are those of the in-memory
 * calls (the same .ecdc bytes; audio within float rounding). */
MUSICGEN_API musicgen_status encodec_session_compress_file(encodec_session* session, const char* audio_path,
                                                           const char* ecdc_path, double kbps);
MUSICGEN_API musicgen_status encodec_session_decompress_file(encodec_session* session, const char* ecdc_path,
                                                             const char* audio_path, encodec_subtype subtype);

/* What an .ecdc header says (no model needed). */
typedef struct encodec_ecdc_info {
  char model[64];       /* "encodec_24khz", ... (NUL-terminated, truncated if longer) */
  int64_t audio_length; /* samples per channel */
  int num_codebooks;
  int lm;               /* 1: entropy-coded with the LM (not decodable here) */
  int64_t file_size;    /* bytes */
  int64_t header_size;  /* bytes up to the end of the JSON metadata */
  /* From the model name (0 when the name is unknown): */
  int sample_rate;
  int channels;
  int num_segments;     /* 1 s segments of encodec_48khz; 1 otherwise */
  double bandwidth_kbps;
} encodec_ecdc_info;

MUSICGEN_API musicgen_status encodec_ecdc_read_info(const char* ecdc_path, encodec_ecdc_info* out);

#ifdef __cplusplus
}
#endif

#endif /* LIBMUSICGEN_ENCODEC_H */
