/* libmusicgen: what musicgen.h and encodec.h share: the export macro, the API version, the one
 * status enum, the device enum, the per-thread error message and the library facts.
 *
 * Conventions of both headers:
 *   - Names read <lib>_<object>_<verb> (musicgen_model_load, encodec_session_encode).
 *   - Objects are opaque handles made by a function that returns a musicgen_status and fills an
 *     out pointer, and released by the matching *_free (which accepts NULL). A params struct comes
 *     from its *_default_params() and may be passed as NULL for the defaults.
 *   - On failure a function returns a status other than MUSICGEN_OK, leaves its out pointers NULL,
 *     and musicgen_last_error() says what failed and where. Nothing prints, exits or aborts, and
 *     no exception crosses the boundary.
 *
 * Thread safety (both headers):
 *   - A model (musicgen_model, encodec_model) is read-only once loaded: any number of sessions
 *     may use it at the same time from different threads. Free it after all of its sessions.
 *   - A session (musicgen_session, encodec_session) holds the state of one computation at a time
 *     (its own CPU thread pool, KV caches, buffers): one thread uses it at a time; different
 *     sessions run concurrently. Callbacks run on the thread that called the session.
 *   - On CUDA, the sessions of a model share the model's GPU backend (its stream and memory): a
 *     mutex in the model runs their GPU work one session at a time. It is safe, not parallel.
 *   - Audio and code objects may be read from several threads; free each one once.
 *   - Everything else (musicgen_version, the audio and chroma helpers) is safe from any thread. */
#ifndef LIBMUSICGEN_MUSICGEN_COMMON_H
#define LIBMUSICGEN_MUSICGEN_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library's build defines MUSICGEN_BUILDING_LIBRARY; users of a static build on Windows define
 * MUSICGEN_STATIC. Elsewhere the library is compiled with hidden visibility and these functions
 * are all it exports. */
#if defined(_WIN32)
#if defined(MUSICGEN_BUILDING_LIBRARY)
#define MUSICGEN_API __declspec(dllexport)
#elif defined(MUSICGEN_STATIC)
#define MUSICGEN_API
#else
#define MUSICGEN_API __declspec(dllimport)
#endif
#else
#define MUSICGEN_API __attribute__((visibility("default")))
#endif

/* Bumped whenever a declaration in musicgen_common.h, musicgen.h or encodec.h changes. */
#define MUSICGEN_API_VERSION 3  /* 3: musicgen_model_params.lora_dir/lora_scale, q8/q4 weights, musicgen_train.h */

/* Bounds every front end refuses beyond (MUSICGEN_ERROR_INVALID_ARGUMENT): CPU threads of a model
 * or session, seconds of one generation, and temperature / guidance scale. */
#define MUSICGEN_MAX_THREADS 1024
#define MUSICGEN_MAX_DURATION_S 3600
#define MUSICGEN_MAX_SCALE 100

typedef enum musicgen_status {
  MUSICGEN_OK = 0,
  MUSICGEN_ERROR_INVALID_ARGUMENT = 1, /* NULL pointer, value out of range, unknown option */
  MUSICGEN_ERROR_IO = 2,               /* a file or folder could not be read or written */
  MUSICGEN_ERROR_FORMAT = 3,           /* a file or buffer holds data we cannot use (no samples, NaN) */
  MUSICGEN_ERROR_MODEL = 4,            /* a model folder is incomplete, inconsistent or of another kind */
  MUSICGEN_ERROR_DEVICE = 5,           /* the requested device is not available */
  MUSICGEN_ERROR_ABORTED = 6,          /* the abort callback asked to stop */
  MUSICGEN_ERROR_OUT_OF_MEMORY = 7,
  MUSICGEN_ERROR_INTERNAL = 8          /* a bug: please report it with the message */
} musicgen_status;

/* Where a model's weights live and its sessions compute. AUTO: CUDA when the library was built with
 * it and a GPU is present, else the CPU. */
typedef enum musicgen_device { MUSICGEN_DEVICE_AUTO = 0, MUSICGEN_DEVICE_CPU = 1, MUSICGEN_DEVICE_CUDA = 2 } musicgen_device;

/* MUSICGEN_API_VERSION of the library actually loaded (compare with the header's). */
MUSICGEN_API int musicgen_api_version(void);
/* The library version, "major.minor.patch". */
MUSICGEN_API const char *musicgen_version(void);
/* A short constant name for a status ("ok", "invalid argument", ...). */
MUSICGEN_API const char *musicgen_status_string(musicgen_status status);
/* The message of the last failed call on this thread ("" when none failed yet); valid until the
 * next failing call on this thread. */
MUSICGEN_API const char *musicgen_last_error(void);
/* What the CPU and GPU backends use on this machine, one line, e.g.
 * "AVX2 = 1 | AVX512 = 1 | BLAS = OpenBLAS 0.3.21 ... (SkylakeX, chosen by libmusicgen) | CUDA = 0"
 * (loads the BLAS if it is not loaded yet; valid until the next call on this thread). */
MUSICGEN_API const char *musicgen_system_info(void);

#ifdef __cplusplus
}
#endif

#endif /* LIBMUSICGEN_MUSICGEN_COMMON_H */
