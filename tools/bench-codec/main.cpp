// bench-codec: times EnCodec encode and decode of N seconds of music through include/encodec.h.
//   bench-codec MODEL_DIR AUDIO_FILE [SECONDS=30] [THREADS=2] [REPEATS=2] [--device cpu|cuda]
// The audio is converted to the model's rate and channels first (not timed), cut to SECONDS, then
// encoded at the model's highest bandwidth and decoded; the best of REPEATS runs is reported as
//   RESULT ours <model> encode <s> decode <s> device <cpu|cuda> seconds <audio s> encode_x_realtime <x>
//          decode_x_realtime <x>
//          decode_x_realtime <x> encode_cpu_per_wall <r> decode_cpu_per_wall <r>
// (x real time = audio seconds / processing seconds; cpu_per_wall = the process's CPU time over
// the wall time of that best run: ~THREADS when every thread computes all along, less when
// threads wait for each other or the OS gives the process less than THREADS cores).
// tools/bench-codec/run.sh compares fields 5 and 7 with bench_reference.py's line for
// transformers; tools/gpu-check.sh reads decode_x_realtime.
// AUDIO_FILE `synth` makes the audio here (decaying notes and a little noise), for a machine
// without audio files: the GPU machine, where the model is random anyway.
#include <encodec.h>

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "timing.h"

namespace {

using bench_codec::cpu_s;
using bench_codec::now_s;

int fail(const char* what) {
  std::fprintf(stderr, "bench-codec: %s: %s\n", what, musicgen_last_error());
  return 1;
}

// SECONDS of music-like test audio at `sr` Hz: a note every half second (a few harmonics, decaying),
// plus quiet noise, identical on every channel. Deterministic.
encodec_audio* synth_audio(int sr, int ch, int64_t n) {
  encodec_audio* a = nullptr;
  if (encodec_audio_create(sr, ch, n, &a) != MUSICGEN_OK) return nullptr;
  float* x = encodec_audio_channel_data(a, 0);
  uint32_t rng = 12345;
  const int64_t note_len = sr / 2;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t note = i / note_len;
    const double t = double(i % note_len) / sr;
    const double f = 110.0 * std::pow(2.0, double((note * 7) % 24) / 12.0);
    double v = 0;
    for (int h = 1; h <= 4; ++h) v += std::sin(2 * M_PI * f * h * t) / h;
    rng = rng * 1664525u + 1013904223u;
    x[i] = float(0.3 * v * std::exp(-4.0 * t) + 0.01 * (double(rng >> 8) / 8388608.0 - 1.0));
  }
  for (int c = 1; c < ch; ++c) {
    float* y = encodec_audio_channel_data(a, c);
    for (int64_t i = 0; i < n; ++i) y[i] = x[i];
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"EnCodec encode/decode speed through the C API"};
  std::string model, audio_path, device = "cpu";
  double seconds = 30.0;
  int threads = 2, repeats = 2;
  app.add_option("MODEL_DIR", model, "EnCodec (or MusicGen) snapshot folder")->required();
  app.add_option("AUDIO_FILE", audio_path, "Audio to encode, or `synth` to make it here")->required();
  app.add_option("SECONDS", seconds, "Seconds of audio (the file is cut or looped)")->capture_default_str();
  app.add_option("THREADS", threads, "CPU threads")->capture_default_str();
  app.add_option("REPEATS", repeats, "Runs; the best is reported")->capture_default_str();
  app.add_option("--device", device, "cpu, or cuda (encodec_model_params.device)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (seconds <= 0 || repeats < 1) {
    std::fprintf(stderr, "bench-codec: SECONDS must be > 0 and REPEATS >= 1\n");
    return 2;
  }

  encodec_model_params p = encodec_model_default_params();
  p.n_threads = threads;
  p.device = device == "cuda" ? MUSICGEN_DEVICE_CUDA : MUSICGEN_DEVICE_CPU;
  encodec_session_params sp = encodec_session_default_params();
  sp.n_threads = threads;
  encodec_model* m = nullptr;
  encodec_session* session = nullptr;
  if (encodec_model_load(model.c_str(), &p, &m) != MUSICGEN_OK) return fail("load");
  if (encodec_session_create(m, &sp, &session) != MUSICGEN_OK) return fail("session");
  const int sr = encodec_model_sample_rate(m), ch = encodec_model_channels(m);

  const int64_t n = int64_t(seconds * sr);
  encodec_audio* clip = nullptr;
  if (audio_path == "synth") {
    if (!(clip = synth_audio(sr, ch, n))) return fail("synth");
  } else {
    encodec_audio* in = nullptr;
    encodec_audio* conv = nullptr;
    if (encodec_audio_read(audio_path.c_str(), &in) != MUSICGEN_OK) return fail("read");
    if (encodec_audio_convert(in, sr, ch, &conv) != MUSICGEN_OK) return fail("convert");
    encodec_audio_free(in);
    // Cut (or loop) to exactly `seconds`.
    const int64_t have = encodec_audio_frames(conv);
    if (encodec_audio_create(sr, ch, n, &clip) != MUSICGEN_OK) return fail("create");
    for (int c = 0; c < ch; ++c) {
      const float* src = encodec_audio_channel_data_const(conv, c);
      float* dst = encodec_audio_channel_data(clip, c);
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i % have];
    }
    encodec_audio_free(conv);
  }

  const double bw = encodec_model_bandwidth(m, encodec_model_num_bandwidths(m) - 1);
  double best_enc = 1e30, best_dec = 1e30, enc_cpu = 0, dec_cpu = 0;
  for (int r = 0; r < repeats; ++r) {
    encodec_codes* codes = nullptr;
    const double c0 = cpu_s(), t0 = now_s();
    if (encodec_session_encode(session, clip, bw, &codes) != MUSICGEN_OK) return fail("encode");
    const double t1 = now_s(), c1 = cpu_s();
    encodec_audio* out = nullptr;
    if (encodec_session_decode(session, codes, &out) != MUSICGEN_OK) return fail("decode");
    const double t2 = now_s(), c2 = cpu_s();
    if (t1 - t0 < best_enc) best_enc = t1 - t0, enc_cpu = c1 - c0;
    if (t2 - t1 < best_dec) best_dec = t2 - t1, dec_cpu = c2 - c1;
    // A random-weight model must still give finite audio: a NaN would make the timing meaningless.
    int64_t nonfinite = 0;
    for (int c = 0; c < encodec_audio_channels(out); ++c) {
      const float* y = encodec_audio_channel_data_const(out, c);
      for (int64_t i = 0; i < encodec_audio_frames(out); ++i) nonfinite += std::isfinite(y[i]) ? 0 : 1;
    }
    std::fprintf(stderr, "run %d: encode %.3f s (CPU %.3f s), decode %.3f s (CPU %.3f s) (%d codebooks, %s)\n", r,
                 t1 - t0, c1 - c0, t2 - t1, c2 - c1, encodec_codes_num_codebooks(codes), device.c_str());
    if (nonfinite > 0) {
      std::fprintf(stderr, "bench-codec: %lld decoded samples are not finite\n", (long long)nonfinite);
      return 1;
    }
    encodec_codes_free(codes);
    encodec_audio_free(out);
  }
  std::printf("RESULT ours %s encode %.4f decode %.4f device %s seconds %.2f encode_x_realtime %.2f "
              "decode_x_realtime %.2f encode_cpu_per_wall %.2f decode_cpu_per_wall %.2f\n",
              encodec_model_name(m), best_enc, best_dec, device.c_str(), seconds, seconds / best_enc,
              seconds / best_dec, enc_cpu / best_enc, dec_cpu / best_dec);
  encodec_audio_free(clip);
  encodec_session_free(session);
  encodec_model_free(m);
  return 0;
}
