/* The smallest complete libmusicgen program: a prompt in, a WAV out.
 *   examples/generate weights/musicgen-small "lo-fi hip hop" out.wav
 * A model is loaded once; a session generates with it (one per thread for parallel requests). */
#include <stdio.h>

#include "musicgen.h"

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL_DIR PROMPT OUT.wav\n", argv[0]);
    return 2;
  }
  musicgen_model *model = NULL;
  musicgen_session *session = NULL;
  if (musicgen_model_load(argv[1], NULL, &model) != MUSICGEN_OK ||
      musicgen_session_create(model, NULL, &session) != MUSICGEN_OK) {
    fprintf(stderr, "error: %s\n", musicgen_last_error());
    musicgen_model_free(model);
    return 1;
  }
  musicgen_generate_params p = musicgen_generate_default_params();
  p.prompt = argv[2];
  p.duration_s = 5.0f;
  musicgen_audio audio;
  int rc = 0;
  if (musicgen_session_generate(session, &p, &audio) != MUSICGEN_OK || musicgen_audio_write(&audio, argv[3]) != MUSICGEN_OK) {
    fprintf(stderr, "error: %s\n", musicgen_last_error());
    rc = 1;
  }
  musicgen_audio_free(&audio);
  musicgen_session_free(session);
  musicgen_model_free(model);
  return rc;
}
