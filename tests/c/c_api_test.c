/* The public header compiles as plain C and the C API runs a whole generation with the tiny
 * model: load, generate (greedy, so the result is deterministic), write a WAV, and the error
 * paths return statuses with messages instead of crashing. Prints "N passed, N failed". */
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

int main(int argc, char **argv) {
  const char *model = argc > 1 ? argv[1] : "tests/data/models/musicgen_tiny";
  const char *out_path = argc > 2 ? argv[2] : "/tmp/c_api_test_out.wav";
  musicgen_context_params cp = musicgen_context_default_params();
  cp.device = MUSICGEN_DEVICE_CPU;
  cp.n_threads = 1;
  musicgen_context *ctx = musicgen_init(&cp);
  CHECK(ctx != NULL, "init");
  CHECK(strstr(encodec_system_info(), "BLAS = OpenBLAS") != NULL, "system info names the BLAS");

  CHECK(musicgen_load(ctx, "/nonexistent/model") == MUSICGEN_ERR_MODEL, "missing model is MUSICGEN_ERR_MODEL");
  CHECK(strstr(musicgen_error(ctx), "not found") != NULL, "missing model message says not found");

  CHECK(musicgen_load(ctx, model) == MUSICGEN_OK, "load tiny model");
  if (failed) fprintf(stderr, "load error: %s\n", musicgen_error(ctx));
  CHECK(musicgen_sample_rate(ctx) == 32000, "sample rate 32000");
  CHECK(musicgen_channels(ctx) == 1, "mono");

  musicgen_params p = musicgen_default_params();
  CHECK(p.top_k == 250 && p.guidance_scale == 3.0f && p.duration_s == 10.0f, "defaults as audiocraft");
  p.prompt = "80s pop track with bassy drums and synth";
  p.duration_s = 0.5f;
  p.greedy = 1;
  p.progress = progress;
  musicgen_audio audio;
  CHECK(musicgen_generate(ctx, &p, &audio) == MUSICGEN_OK, "generate");
  CHECK(audio.channels == 1 && audio.sample_rate == 32000, "audio format");
  CHECK(audio.n_samples == 25 * 640, "0.5 s = 25 frames of 640 samples");
  CHECK(steps_seen == 25 + 3, "progress reached frames + 3 steps");
  CHECK(musicgen_write_audio(ctx, &audio, out_path) == MUSICGEN_OK, "write wav");
  musicgen_audio_free(&audio);
  CHECK(audio.samples == NULL, "free clears the pointer");

  p.duration_s = -1.0f;
  CHECK(musicgen_generate(ctx, &p, &audio) == MUSICGEN_ERR_INVALID_ARGUMENT, "negative duration rejected");
  p.duration_s = 0.5f;
  p.greedy = 0;
  p.top_k = 0;
  CHECK(musicgen_generate(ctx, &p, &audio) == MUSICGEN_ERR_INVALID_ARGUMENT, "top_k 0 without top_p rejected");
  p.top_k = 250;
  int stop = 1;
  p.abort = abort_now;
  p.abort_user_data = &stop;
  CHECK(musicgen_generate(ctx, &p, &audio) == MUSICGEN_ERR_ABORTED, "abort callback stops generation");

  musicgen_free(ctx);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
