/* The smallest complete libmusicgen program: a prompt in, a WAV out.
 *   examples/generate weights/musicgen-small "lo-fi hip hop" out.wav */
#include <stdio.h>

#include "musicgen.h"

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL_DIR PROMPT OUT.wav\n", argv[0]);
    return 2;
  }
  musicgen_context_params cp = musicgen_context_default_params();
  musicgen_context *ctx = musicgen_init(&cp);
  if (!ctx || musicgen_load(ctx, argv[1]) != MUSICGEN_OK) {
    fprintf(stderr, "error: %s\n", ctx ? musicgen_error(ctx) : "out of memory");
    musicgen_free(ctx);
    return 1;
  }
  musicgen_params p = musicgen_default_params();
  p.prompt = argv[2];
  p.duration_s = 5.0f;
  musicgen_audio audio;
  int rc = 0;
  if (musicgen_generate(ctx, &p, &audio) != MUSICGEN_OK || musicgen_write_audio(ctx, &audio, argv[3]) != MUSICGEN_OK) {
    fprintf(stderr, "error: %s\n", musicgen_error(ctx));
    rc = 1;
  }
  musicgen_audio_free(&audio);
  musicgen_free(ctx);
  return rc;
}
