/* libmusicgen: the EnCodec C API: audio files and buffers (read, write, convert), the EnCodec
 * model (24, 32 and 48 kHz: encode audio to codes, decode codes to audio) and .ecdc files
 * (compress / decompress, byte-compatible with Meta's encodec package). encodec-tool is built on
 * this header alone.
 *
 * Plain C, usable from any language with a C FFI. Conventions, for every function here:
 *   - Objects are opaque handles, created by a function that returns a status and fills an out
 *     pointer, and released by the matching *_free function (which accepts NULL).
 *   - Every function that can fail returns an encodec_status. On failure the out pointers are
 *     left as NULL and encodec_last_error() returns a message naming what failed and where (file,
 *     channel, frame). The message is per thread and stays valid until the next failing call on
 *     that thread.
 *   - No function prints, exits or aborts; exceptions never cross this boundary.
 *
 * Audio is float32, planar (one array per channel), at any sample rate and channel count. */
#ifndef LIBMUSICGEN_ENCODEC_H
#define LIBMUSICGEN_ENCODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define ENCODEC_API __declspec(dllexport)
#else
#define ENCODEC_API __attribute__((visibility("default")))
#endif

/* ---- status and errors ---- */

typedef enum encodec_status {
  ENCODEC_OK = 0,
  ENCODEC_ERROR_INVALID_ARGUMENT = 1, /* NULL pointer, bad rate/channel count, unknown option */
  ENCODEC_ERROR_IO = 2,               /* a file could not be read or written */
  ENCODEC_ERROR_FORMAT = 3,           /* a file or buffer holds data we cannot use (no samples, NaN) */
  ENCODEC_ERROR_OUT_OF_MEMORY = 4,
  ENCODEC_ERROR_INTERNAL = 5          /* a bug: please report it with the message */
} encodec_status;

/* A short constant name for a status ("ok", "invalid argument", ...). */
ENCODEC_API const char* encodec_status_string(encodec_status status);
/* The message of the last failed call on this thread ("" when none failed yet). */
ENCODEC_API const char* encodec_last_error(void);
/* The library version, "major.minor.patch". */
ENCODEC_API const char* encodec_version(void);
/* What the CPU and GPU backends will use on this machine, one line, e.g.
 * "AVX2 = 1 | AVX512 = 1 | BLAS = OpenBLAS 0.3.21 ... (SkylakeX, chosen by libmusicgen) | CUDA = 0"
 * (loads the BLAS if it is not loaded yet; valid until the next call on this thread). */
ENCODEC_API const char* encodec_system_info(void);

/* ---- audio buffers ---- */

typedef struct encodec_audio encodec_audio; /* opaque: sample rate + planar float32 channels */

/* How integer or float samples are stored when writing; lossy formats (.ogg, .mp3) ignore it. */
typedef enum encodec_subtype {
  ENCODEC_SUBTYPE_PCM16 = 0, /* the default: 16-bit integers, samples clipped to [-1, 1] */
  ENCODEC_SUBTYPE_PCM24 = 1, /* 24-bit integers, samples clipped to [-1, 1] */
  ENCODEC_SUBTYPE_FLOAT = 2  /* 32-bit float, stored unchanged (.wav only) */
} encodec_subtype;

/* A new buffer of `channels` silent channels of `frames` samples at `sample_rate` Hz. */
ENCODEC_API encodec_status encodec_audio_create(int sample_rate, int channels, int64_t frames,
                                                encodec_audio** out);
/* Reads a .wav/.flac/.ogg/.mp3 file. Fails on a missing or unreadable file, an empty one, or a
 * non-finite sample. */
ENCODEC_API encodec_status encodec_audio_read(const char* path, encodec_audio** out);
/* Writes `audio` to `path`; the format comes from the extension (.wav .flac .ogg .mp3). The file
 * appears complete or not at all: it is written under a temporary name and renamed at the end. */
ENCODEC_API encodec_status encodec_audio_write(const char* path, const encodec_audio* audio,
                                               encodec_subtype subtype);
/* A new buffer resampled to `sample_rate` (julius/audiocraft resampler) and then converted to
 * `channels` (mono = mean of the channels; mono -> N = copies; N -> M < N = first M channels),
 * as audiocraft's convert_audio. */
ENCODEC_API encodec_status encodec_audio_convert(const encodec_audio* in, int sample_rate, int channels,
                                                 encodec_audio** out);
ENCODEC_API void encodec_audio_free(encodec_audio* audio);

ENCODEC_API int encodec_audio_sample_rate(const encodec_audio* audio);
ENCODEC_API int encodec_audio_channels(const encodec_audio* audio);
ENCODEC_API int64_t encodec_audio_frames(const encodec_audio* audio);
/* The samples of one channel (`frames` floats), owned by the buffer; NULL for a bad channel. */
ENCODEC_API float* encodec_audio_channel_data(encodec_audio* audio, int channel);
ENCODEC_API const float* encodec_audio_channel_data_const(const encodec_audio* audio, int channel);

/* ---- the EnCodec model ----
 *
 * A context holds one loaded EnCodec model (encodec_24khz, encodec_32khz, encodec_48khz, or the
 * codec inside a MusicGen snapshot) and the backend it runs on. A context is not thread-safe: use
 * one per thread. Long audio is processed in windows, so memory stays bounded (see
 * docs/ARCHITECTURE.md and codec/encodec.cpp for where windowed results can differ in the last
 * float bits from a whole-file pass).
 *
 *   encodec_context *ctx;
 *   if (encodec_context_load("weights/encodec_24khz", NULL, &ctx) != ENCODEC_OK) puts(encodec_last_error());
 *   encodec_compress_file(ctx, "song.mp3", "song.ecdc", 6.0);
 *   encodec_decompress_file(ctx, "song.ecdc", "song.wav", ENCODEC_SUBTYPE_PCM16);
 *   encodec_context_free(ctx);
 */

typedef struct encodec_context encodec_context; /* opaque: a loaded model */
typedef struct encodec_codes encodec_codes;     /* opaque: the codes of one encoded clip */

typedef struct encodec_context_params {
  int n_threads; /* CPU threads; <= 0: all hardware threads */
  int use_cuda;  /* 1: run on the CUDA backend (fails when there is none); 0: CPU */
} encodec_context_params;

ENCODEC_API encodec_context_params encodec_context_default_params(void);

/* Loads a Hugging Face snapshot folder: an EnCodec one (config.json + model.safetensors), or a
 * MusicGen one, whose codec is its "audio_encoder". `params` may be NULL (defaults). Fails with
 * ENCODEC_ERROR_IO for a missing folder or file, ENCODEC_ERROR_FORMAT for a folder that holds
 * something else (e.g. a non-EnCodec config) or broken weights. */
ENCODEC_API encodec_status encodec_context_load(const char* model_path, const encodec_context_params* params,
                                                encodec_context** out);
ENCODEC_API void encodec_context_free(encodec_context* ctx);

ENCODEC_API int encodec_context_sample_rate(const encodec_context* ctx);
ENCODEC_API int encodec_context_channels(const encodec_context* ctx);
/* The name written into .ecdc files ("encodec_24khz", "encodec_32khz", "encodec_48khz"). */
ENCODEC_API const char* encodec_context_model_name(const encodec_context* ctx);
/* The bandwidths (kbps) the model supports, ascending; i in [0, count). */
ENCODEC_API int encodec_context_num_bandwidths(const encodec_context* ctx);
ENCODEC_API double encodec_context_bandwidth(const encodec_context* ctx, int i);
/* Codebooks used at `kbps` (0 when the model does not support that bandwidth). */
ENCODEC_API int encodec_context_num_codebooks(const encodec_context* ctx, double kbps);

/* Audio -> codes at `kbps` (one of the model's bandwidths; <= 0: the highest). Audio at another
 * rate or channel count is first converted as audiocraft's convert_audio does. */
ENCODEC_API encodec_status encodec_encode(encodec_context* ctx, const encodec_audio* audio, double kbps,
                                          encodec_codes** out);
/* Codes -> audio at the model's rate and channels, trimmed to the encoded length. */
ENCODEC_API encodec_status encodec_decode(encodec_context* ctx, const encodec_codes* codes, encodec_audio** out);

ENCODEC_API void encodec_codes_free(encodec_codes* codes);
ENCODEC_API int encodec_codes_num_codebooks(const encodec_codes* codes);
ENCODEC_API int64_t encodec_codes_audio_length(const encodec_codes* codes); /* samples per channel */
/* Segments: 1, except for models that encode 1 s segments (encodec_48khz). */
ENCODEC_API int encodec_codes_num_segments(const encodec_codes* codes);
ENCODEC_API int64_t encodec_codes_num_frames(const encodec_codes* codes, int segment);
/* Segment `segment`'s codes, codebook-major: data[k * frames + t]; NULL for a bad segment. */
ENCODEC_API const int64_t* encodec_codes_data(const encodec_codes* codes, int segment);
/* The segment's renormalisation scale (encodec_48khz), or 1.0 for models that do not normalise. */
ENCODEC_API float encodec_codes_scale(const encodec_codes* codes, int segment);

/* ---- .ecdc files (the container of facebookresearch/encodec, without the entropy-coding LM) ---- */

/* Audio -> .ecdc bytes; free *data with encodec_bytes_free. */
ENCODEC_API encodec_status encodec_compress(encodec_context* ctx, const encodec_audio* audio, double kbps,
                                            uint8_t** data, size_t* size);
/* .ecdc bytes -> audio. The file's model must be the loaded one (ENCODEC_ERROR_INVALID_ARGUMENT
 * otherwise); a corrupt or entropy-coded ("lm": true) file is ENCODEC_ERROR_FORMAT. */
ENCODEC_API encodec_status encodec_decompress(encodec_context* ctx, const uint8_t* data, size_t size,
                                              encodec_audio** out);
ENCODEC_API void encodec_bytes_free(uint8_t* data);

/* Audio file (any rate/channels) -> .ecdc file; and back. The output file appears complete or not
 * at all (written under a temporary name, renamed at the end). */
ENCODEC_API encodec_status encodec_compress_file(encodec_context* ctx, const char* audio_path, const char* ecdc_path,
                                                 double kbps);
ENCODEC_API encodec_status encodec_decompress_file(encodec_context* ctx, const char* ecdc_path,
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

ENCODEC_API encodec_status encodec_ecdc_read_info(const char* ecdc_path, encodec_ecdc_info* out);

#ifdef __cplusplus
}
#endif

#endif /* LIBMUSICGEN_ENCODEC_H */
