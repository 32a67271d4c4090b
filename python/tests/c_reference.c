/* The C API's own answer, for the Python tests to compare with byte for byte. Built by
 * python/tests/conftest.py against the project's libmusicgen.so (public headers only).
 *
 *   c_reference generate MODEL OUT PROMPT DURATION SEED TOP_K TOP_P TEMPERATURE CFG GREEDY NORMALIZE
 *   c_reference codec MODEL OUT AUDIO_FILE KBPS
 *
 * OUT (raw, little-endian): generate: int64 channels, int64 samples, int64 rate, then the float32
 * planar samples. codec: int64 codebooks, int64 frames, the int64 codes (one segment), then the
 * decoded audio as for generate. Exit 0 on success; the library's message on stderr otherwise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "encodec.h"
#include "musicgen.h"

static int fail(const char *what) {
  fprintf(stderr, "%s: %s\n", what, musicgen_last_error());
  return 1;
}

static void put_i64(FILE *f, int64_t v) { fwrite(&v, sizeof v, 1, f); }

static int generate(char **a) {
  musicgen_model_params mp = musicgen_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  mp.n_threads = 1;
  musicgen_model *model = NULL;
  if (musicgen_model_load(a[0], &mp, &model) != MUSICGEN_OK) return fail("load");
  musicgen_session_params sp = musicgen_session_default_params();
  sp.n_threads = 1;
  musicgen_session *s = NULL;
  if (musicgen_session_create(model, &sp, &s) != MUSICGEN_OK) return fail("session");
  musicgen_generate_params p = musicgen_generate_default_params();
  p.prompt = a[2];
  p.duration_s = (float)atof(a[3]);
  p.seed = strtoull(a[4], NULL, 10);
  p.top_k = atoi(a[5]);
  p.top_p = (float)atof(a[6]);
  p.temperature = (float)atof(a[7]);
  p.guidance_scale = (float)atof(a[8]);
  p.greedy = atoi(a[9]);
  p.normalize = (musicgen_normalize)atoi(a[10]);
  musicgen_audio audio;
  if (musicgen_session_generate(s, &p, &audio) != MUSICGEN_OK) return fail("generate");
  FILE *f = fopen(a[1], "wb");
  if (!f) return 1;
  put_i64(f, audio.channels);
  put_i64(f, audio.n_samples);
  put_i64(f, audio.sample_rate);
  fwrite(audio.samples, sizeof(float), (size_t)(audio.n_samples * audio.channels), f);
  fclose(f);
  musicgen_audio_free(&audio);
  musicgen_session_free(s);
  musicgen_model_free(model);
  return 0;
}

static int codec(char **a) {
  encodec_model_params mp = encodec_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  mp.n_threads = 1;
  encodec_model *model = NULL;
  if (encodec_model_load(a[0], &mp, &model) != MUSICGEN_OK) return fail("load");
  encodec_session_params sp = encodec_session_default_params();
  sp.n_threads = 1;
  encodec_session *s = NULL;
  if (encodec_session_create(model, &sp, &s) != MUSICGEN_OK) return fail("session");
  encodec_audio *in = NULL, *out = NULL;
  if (encodec_audio_read(a[2], &in) != MUSICGEN_OK) return fail("read");
  encodec_codes *codes = NULL;
  if (encodec_session_encode(s, in, atof(a[3]), &codes) != MUSICGEN_OK) return fail("encode");
  if (encodec_session_decode(s, codes, &out) != MUSICGEN_OK) return fail("decode");
  FILE *f = fopen(a[1], "wb");
  if (!f) return 1;
  const int64_t k = encodec_codes_num_codebooks(codes), t = encodec_codes_num_frames(codes, 0);
  put_i64(f, k);
  put_i64(f, t);
  fwrite(encodec_codes_data(codes, 0), sizeof(int64_t), (size_t)(k * t), f);
  const int channels = encodec_audio_channels(out);
  const int64_t n = encodec_audio_frames(out);
  put_i64(f, channels);
  put_i64(f, n);
  put_i64(f, encodec_audio_sample_rate(out));
  for (int c = 0; c < channels; ++c) fwrite(encodec_audio_channel_data_const(out, c), sizeof(float), (size_t)n, f);
  fclose(f);
  encodec_audio_free(in);
  encodec_audio_free(out);
  encodec_codes_free(codes);
  encodec_session_free(s);
  encodec_model_free(model);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 13 && argv[1][0] == 'g') return generate(argv + 2);
  if (argc == 6 && argv[1][0] == 'c') return codec(argv + 2);
  fprintf(stderr, "usage: see the head of c_reference.c\n");
  return 2;
}
