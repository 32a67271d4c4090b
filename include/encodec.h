/* libmusicgen: the EnCodec C API.
 *
 * Plain C, usable from any language with a C FFI. Conventions, for every function here and the
 * ones to come (the EnCodec model, compress/decompress, .ecdc files):
 *   - Objects are opaque handles, created by a function that returns a status and fills an out
 *     pointer, and released by the matching *_free function (which accepts NULL).
 *   - Every function that can fail returns an encodec_status. On failure the out pointers are
 *     left as NULL and encodec_last_error() returns a message naming what failed and where (file,
 *     channel, frame). The message is per thread and stays valid until the next failing call on
 *     that thread.
 *   - No function prints, exits or aborts; exceptions never cross this boundary.
 *
 * Audio is float32, planar (one array per channel), at any sample rate and channel count.
 */
#ifndef LIBMUSICGEN_ENCODEC_H
#define LIBMUSICGEN_ENCODEC_H

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

/* ---- to come: the EnCodec model (encodec_context: load, encode, decode, .ecdc files) ---- */

#ifdef __cplusplus
}
#endif

#endif /* LIBMUSICGEN_ENCODEC_H */
