// profile-codec: splits EnCodec encode and decode time per op (and per conv shape) through the
// profiling backend of bench-musicgen, to show where the codec's time goes.
//   profile-codec MODEL_DIR AUDIO_FILE [SECONDS=15] [THREADS=2]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../bench-musicgen/profiling_backend.h"
#include "codec/audio_file.h"
#include "codec/convert_audio.h"
#include "codec/encodec.h"
#include "kernels/cpu/blas.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: profile-codec MODEL_DIR AUDIO_FILE [SECONDS=15] [THREADS=2]\n");
    return 2;
  }
  const double seconds = argc > 3 ? std::atof(argv[3]) : 15.0;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  auto cpu = mg::make_cpu_backend(threads);
  mgbench::ProfilingBackend be(*cpu);
  auto model = mg::EncodecModel::load(be, argv[1]);
  std::printf("BLAS: %s\n", mg::cpu::blas::describe().c_str());
  const auto& cfg = model->config();
  mg::AudioBuffer in = mg::convert_audio(mg::read_audio(argv[2]), cfg.sampling_rate, cfg.audio_channels);
  const int64_t n = int64_t(seconds * cfg.sampling_rate), have = in.num_frames();
  mg::Tensor audio = mg::Tensor::empty(mg::DType::F32, {cfg.audio_channels, n});
  for (int c = 0; c < cfg.audio_channels; ++c)
    for (int64_t i = 0; i < n; ++i) audio.f32()[c * n + i] = in.channels[size_t(c)][size_t(i % have)];
  const double kbps = cfg.target_bandwidths.back();
  auto report = [&](const char* what) {
    std::printf("== %s: %.3f s in ops\n", what, be.total());
    for (auto& [k, v] : be.sorted())
      if (v.second > 0.002) std::printf("  %-60s %6ld calls %8.3f s\n", k.c_str(), v.first, v.second);
    be.reset();
  };
  be.reset();
  mg::EncodedAudio codes = model->encode(audio, kbps);
  report("encode");
  mg::Tensor out = model->decode(codes);
  report("decode");
  return out.numel() > 0 ? 0 : 1;
}
