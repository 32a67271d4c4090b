/* The public header compiles as plain C and the C API runs a whole generation with the tiny
 * model: load, generate (greedy, so the result is deterministic), write a WAV, stream, and the
 * error paths return statuses with messages instead of crashing. Prints "N passed, N failed". */
#include <stdio.h>
#include <string.h>

#include "encodec.h"
#include "musicgen.h"

static int passed = 0, failed = 0;
#define CHECK(cond, what)                                        \
  do {                                                           \
    if (cond) {                                                  \
      ++passed;                                                  \
    } else {                                                     \
      ++failed;                                                  \
      fprintf(stderr, "FAILED: %s (%s:%d)\n", what, __FILE__, __LINE__); \
    }                                                            \
  } while (0)

static int steps_seen = 0;
static void progress(int64_t done, int64_t total, void *user) {
  (void)total;
  (void)user;
  steps_seen = (int)done;
}
static int abort_now(void *user) { return *(int *)user; }

/* Streaming: the samples as they come (mono), and the step at which the first ones came. */
static float streamed[100 * 640];
static int64_t streamed_n = 0;
static int first_stream_step = -1;
static void on_stream(const float *samples, int64_t n, int channels, void *user) {
  (void)user;
  if (first_stream_step < 0) first_stream_step = steps_seen;
  if (channels != 1 || streamed_n + n > (int64_t)(sizeof streamed / sizeof streamed[0])) {
    streamed_n = -1000000; /* fails the length check below */
    return;
  }
  memcpy(streamed + streamed_n, samples, sizeof(float) * (size_t)n);
  streamed_n += n;
}

int main(int argc, char **argv) {
  const char *model_dir = argc > 1 ? argv[1] : "tests/data/models/musicgen_tiny";
  const char *out_path = argc > 2 ? argv[2] : "/tmp/c_api_test_out.wav";
  musicgen_model_params mp = musicgen_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  musicgen_session_params sp = musicgen_session_default_params();
  sp.n_threads = 1;
  musicgen_model *model = NULL;
  musicgen_session *session = NULL;
  CHECK(musicgen_api_version() == MUSICGEN_API_VERSION, "header and library agree on the API version");
  CHECK(strcmp(musicgen_version(), encodec_version()) == 0, "encodec_version is an alias");
  CHECK(strstr(musicgen_system_info(), "BLAS = OpenBLAS") != NULL, "system info names the BLAS");
  CHECK(strcmp(musicgen_status_string(MUSICGEN_ERROR_MODEL), "unusable model") == 0, "status strings");

  CHECK(musicgen_model_load("/nonexistent/model", &mp, &model) == MUSICGEN_ERROR_MODEL,
        "missing model is MUSICGEN_ERROR_MODEL");
  CHECK(model == NULL, "a failed load leaves out NULL");
  CHECK(strstr(musicgen_last_error(), "not found") != NULL, "missing model message says not found");
  CHECK(strcmp(encodec_last_error(), musicgen_last_error()) == 0, "encodec_last_error is an alias");

  CHECK(musicgen_model_load(model_dir, &mp, &model) == MUSICGEN_OK, "load tiny model");
  if (failed) fprintf(stderr, "load error: %s\n", musicgen_last_error());
  CHECK(musicgen_session_create(model, &sp, &session) == MUSICGEN_OK, "create a session");
  CHECK(musicgen_model_sample_rate(model) == 32000, "sample rate 32000");
  CHECK(musicgen_model_channels(model) == 1, "mono");
  CHECK(strcmp(encodec_model_name(musicgen_model_codec(model)), "encodec_32khz") == 0, "the codec is EnCodec 32 kHz");

  musicgen_generate_params p = musicgen_generate_default_params();
  CHECK(p.top_k == 250 && p.guidance_scale == 3.0f && p.duration_s == 10.0f, "defaults as audiocraft");
  p.prompt = "80s pop track with bassy drums and synth";
  p.duration_s = 0.5f;
  p.greedy = 1;
  p.progress = progress;
  musicgen_audio audio;
  CHECK(musicgen_session_generate(session, &p, &audio) == MUSICGEN_OK, "generate");
  CHECK(audio.channels == 1 && audio.sample_rate == 32000, "audio format");
  CHECK(audio.n_samples == 25 * 640, "0.5 s = 25 frames of 640 samples");
  CHECK(steps_seen == 25 + 3, "progress reached frames + 3 steps");
  CHECK(musicgen_audio_write(&audio, out_path) == MUSICGEN_OK, "write wav");

  /* The codes of the same request decode to the same audio. */
  encodec_codes *codes = NULL;
  musicgen_audio again;
  CHECK(musicgen_session_generate_codes(session, &p, &codes) == MUSICGEN_OK, "generate codes");
  CHECK(encodec_codes_num_codebooks(codes) == 4 && encodec_codes_num_frames(codes, 0) == 25, "4 codebooks x 25 frames");
  CHECK(musicgen_session_decode_codes(session, codes, p.normalize, &again) == MUSICGEN_OK, "decode codes");
  CHECK(again.n_samples == audio.n_samples &&
            memcmp(again.samples, audio.samples, sizeof(float) * (size_t)audio.n_samples) == 0,
        "decoded codes give the generated audio");
  musicgen_audio_free(&again);
  {
    /* The same codes made by the caller, length left open, decoded by an EnCodec session on the
     * model's codec: frames * 640 samples. */
    encodec_session *es = NULL;
    encodec_codes *mine = NULL;
    encodec_audio *dec = NULL;
    CHECK(encodec_session_create(musicgen_model_codec(model), NULL, &es) == MUSICGEN_OK, "codec session");
    CHECK(encodec_codes_create(4, 25, encodec_codes_data(codes, 0), 0, &mine) == MUSICGEN_OK, "codes from data");
    CHECK(encodec_session_decode(es, mine, &dec) == MUSICGEN_OK && encodec_audio_frames(dec) == 25 * 640,
          "caller-made codes decode to frames * hop samples");
    encodec_audio_free(dec);
    encodec_codes_free(mine);
    encodec_session_free(es);
  }
  encodec_codes_free(codes);
  musicgen_audio_free(&audio);
  CHECK(audio.samples == NULL, "free clears the pointer");

  {
    /* Streamed audio (2 s = 100 frames) starts long before the end and is the returned audio's
     * samples (not normalised, as asked), up to float rounding. */
    musicgen_generate_params sp2 = p;
    sp2.duration_s = 2.0f;
    sp2.normalize = MUSICGEN_NORMALIZE_NONE;
    sp2.stream = on_stream;
    musicgen_audio whole;
    CHECK(musicgen_session_generate(session, &sp2, &whole) == MUSICGEN_OK, "generate while streaming");
    CHECK(streamed_n == 100 * 640 && whole.n_samples == 100 * 640, "streamed every sample");
    CHECK(first_stream_step > 0 && first_stream_step < 50, "the first audio came within the first 50 steps of 103");
    float worst = 0.0f;
    for (int64_t i = 0; i < whole.n_samples && streamed_n == whole.n_samples; ++i) {
      const float d = streamed[i] > whole.samples[i] ? streamed[i] - whole.samples[i] : whole.samples[i] - streamed[i];
      if (d > worst) worst = d;
    }
    CHECK(worst <= 1e-5f, "streamed samples equal the whole-file decode");
    musicgen_audio_free(&whole);
  }

  p.duration_s = -1.0f;
  CHECK(musicgen_session_generate(session, &p, &audio) == MUSICGEN_ERROR_INVALID_ARGUMENT, "negative duration rejected");
  p.duration_s = 0.5f;
  p.greedy = 0;
  p.top_k = 0;
  CHECK(musicgen_session_generate(session, &p, &audio) == MUSICGEN_ERROR_INVALID_ARGUMENT,
        "top_k 0 without top_p rejected");
  p.top_k = 250;
  int stop = 1;
  p.abort = abort_now;
  p.abort_user_data = &stop;
  CHECK(musicgen_session_generate(session, &p, &audio) == MUSICGEN_ERROR_ABORTED, "abort callback stops generation");
  CHECK(musicgen_session_generate(NULL, &p, &audio) == MUSICGEN_ERROR_INVALID_ARGUMENT, "NULL session rejected");

  musicgen_session_free(session);
  musicgen_model_free(model);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
