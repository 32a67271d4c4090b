// bench-codec: times EnCodec encode and decode of N seconds of music through include/encodec.h.
//   bench-codec MODEL_DIR AUDIO_FILE [SECONDS=30] [THREADS=2] [REPEATS=2]
// The audio is converted to the model's rate and channels first (not timed), cut to SECONDS, then
// encoded at the model's highest bandwidth and decoded; the best of REPEATS runs is reported as
//   RESULT ours <model> encode <s> decode <s>
// which tools/bench-codec/run.sh compares with bench_reference.py's line for transformers.
#include <encodec.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int fail(const char* what) {
  std::fprintf(stderr, "bench-codec: %s: %s\n", what, encodec_last_error());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench-codec MODEL_DIR AUDIO_FILE [SECONDS=30] [THREADS=2] [REPEATS=2]\n");
    return 2;
  }
  const std::string model = argv[1], audio_path = argv[2];
  const double seconds = argc > 3 ? std::atof(argv[3]) : 30.0;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const int repeats = argc > 5 ? std::atoi(argv[5]) : 2;

  encodec_context_params p = encodec_context_default_params();
  p.n_threads = threads;
  encodec_context* ctx = nullptr;
  if (encodec_context_load(model.c_str(), &p, &ctx) != ENCODEC_OK) return fail("load");
  const int sr = encodec_context_sample_rate(ctx), ch = encodec_context_channels(ctx);

  encodec_audio* in = nullptr;
  encodec_audio* conv = nullptr;
  if (encodec_audio_read(audio_path.c_str(), &in) != ENCODEC_OK) return fail("read");
  if (encodec_audio_convert(in, sr, ch, &conv) != ENCODEC_OK) return fail("convert");
  encodec_audio_free(in);
  // Cut (or loop) to exactly `seconds`.
  const int64_t n = int64_t(seconds * sr), have = encodec_audio_frames(conv);
  encodec_audio* clip = nullptr;
  if (encodec_audio_create(sr, ch, n, &clip) != ENCODEC_OK) return fail("create");
  for (int c = 0; c < ch; ++c) {
    const float* src = encodec_audio_channel_data_const(conv, c);
    float* dst = encodec_audio_channel_data(clip, c);
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i % have];
  }
  encodec_audio_free(conv);

  const double bw = encodec_context_bandwidth(ctx, encodec_context_num_bandwidths(ctx) - 1);
  double best_enc = 1e30, best_dec = 1e30;
  for (int r = 0; r < repeats; ++r) {
    encodec_codes* codes = nullptr;
    double t0 = now_s();
    if (encodec_encode(ctx, clip, bw, &codes) != ENCODEC_OK) return fail("encode");
    const double t1 = now_s();
    encodec_audio* out = nullptr;
    if (encodec_decode(ctx, codes, &out) != ENCODEC_OK) return fail("decode");
    const double t2 = now_s();
    best_enc = std::min(best_enc, t1 - t0);
    best_dec = std::min(best_dec, t2 - t1);
    std::fprintf(stderr, "run %d: encode %.3f s, decode %.3f s (%d codebooks)\n", r, t1 - t0, t2 - t1,
                 encodec_codes_num_codebooks(codes));
    encodec_codes_free(codes);
    encodec_audio_free(out);
  }
  std::printf("RESULT ours %s encode %.4f decode %.4f\n", encodec_context_model_name(ctx), best_enc, best_dec);
  encodec_audio_free(clip);
  encodec_context_free(ctx);
  return 0;
}
