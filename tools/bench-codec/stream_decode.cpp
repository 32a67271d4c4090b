// bench-stream-decode: the EnCodec work of streaming (lm/stream.h: codes pushed one frame at a
// time into EncodecDecodeStream) against one whole decode() of the same codes, back to back.
//   bench-stream-decode MODEL_DIR [FRAMES=500] [THREADS=2] [REPEATS=3] [WINDOW=25 MAX_WINDOW=100 LSTM=10 MAX_LSTM=50]
// (the window sizes of codec/encodec.h DecodeStreamWindows, whose defaults StreamingDecoder uses)
// MODEL_DIR: an EnCodec snapshot or a MusicGen one (its audio encoder). The codes are random, all
// codebooks of the model's highest bandwidth. Each repeat runs the whole decode, then the pushed
// one; the best wall time and the process CPU time (user + system) of each are reported:
//   RESULT stream_decode frames <n> window <w>-<max> lstm <l>-<max> whole_s <s> stream_s <s> ratio <x>
//          whole_cpu_s <s> stream_cpu_s <s> cpu_ratio <x> first_audio_after_frames <n> max_abs_diff <d>
// (max_abs_diff: the pushed decode's samples against decode()'s, which they equal up to rounding)
// ratio > 1: the margins each window decodes again (smaller windows: more), and the LSTM's input
// GEMM in smaller chunks.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include <CLI/CLI.hpp>

#include "codec/encodec.h"
#include "kernels/ops.h"
#include "timing.h"

namespace {

using bench_codec::cpu_s;
using bench_codec::now_s;

struct Timing {
  double wall = 1e30, cpu = 1e30;
  template <class F>
  void run(F&& f) {
    const double w0 = now_s(), c0 = cpu_s();
    f();
    wall = std::min(wall, now_s() - w0);
    cpu = std::min(cpu, cpu_s() - c0);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir;
  int64_t T = 500;
  int threads = 2, repeats = 3;
  mg::DecodeStreamWindows w;
  CLI::App app{"The EnCodec work of streaming (codes pushed frame by frame) against one decode()"};
  app.add_option("MODEL_DIR", model_dir, "EnCodec (or MusicGen) snapshot folder")->required();
  // Counts of frames: at least 1, at most 100000 (33 minutes at 32 kHz: the whole decode holds it all).
  auto frames = [&](const char* name, int64_t& v, const char* what) {
    app.add_option(name, v, what)->check(CLI::Range(int64_t(1), int64_t(100000)))->capture_default_str();
  };
  frames("FRAMES", T, "Code frames (50 a second at 32 kHz)");
  app.add_option("THREADS", threads, "CPU threads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("REPEATS", repeats, "Runs; the best is reported")->check(CLI::Range(1, 100))->capture_default_str();
  frames("WINDOW", w.first_window, "First audio window, frames");
  frames("MAX_WINDOW", w.max_window, "Largest audio window, frames");
  frames("LSTM", w.first_lstm, "First LSTM window, frames");
  frames("MAX_LSTM", w.max_lstm, "Largest LSTM window, frames");
  CLI11_PARSE(app, argc, argv);
  try {
    auto be = mg::make_cpu_backend(threads);
    auto model = mg::EncodecModel::load(*be, model_dir);
    const int nq = model->num_codebooks_for_bandwidth(model->config().target_bandwidths.back());
    const int64_t bins = model->config().codebook_size, hop = model->config().hop_length();
    mg::EncodedAudio codes;
    codes.num_codebooks = nq;
    codes.length = T * hop;
    codes.segments = {mg::Tensor::empty(mg::DType::I64, {nq, T})};
    std::mt19937 rng(5);
    for (int64_t i = 0; i < nq * T; ++i) codes.segments[0].ptr<int64_t>()[i] = int64_t(rng() % uint32_t(bins));
    Timing whole, stream;
    int64_t first_audio = -1;
    mg::Tensor ref;
    double max_diff = 0;
    for (int r = 0; r < repeats; ++r) {
      whole.run([&] { ref = model->decode(*be, codes); });
      stream.run([&] {
        int64_t pushed = 0, at = 0;
        mg::EncodecDecodeStream s(*model, *be, [&](const mg::Tensor& y) {  // [1, n] (mono models)
          if (first_audio < 0) first_audio = pushed;
          for (int64_t i = 0; i < y.numel() && at + i < ref.numel(); ++i)
            max_diff = std::max(max_diff, double(std::fabs(y.f32()[i] - ref.f32()[at + i])));
          at += y.numel();
        }, w);
        mg::Tensor frame = mg::Tensor::empty(mg::DType::I64, {nq, 1});
        for (; pushed < T;) {
          for (int k = 0; k < nq; ++k) frame.ptr<int64_t>()[k] = codes.segments[0].ptr<int64_t>()[k * T + pushed];
          ++pushed;
          s.push(frame);
        }
        s.finish();
      });
    }
    std::printf("RESULT stream_decode frames %lld window %lld-%lld lstm %lld-%lld whole_s %.3f stream_s %.3f "
                "ratio %.3f "
                "whole_cpu_s %.3f stream_cpu_s %.3f cpu_ratio %.3f first_audio_after_frames %lld max_abs_diff %.2e\n",
                (long long)T, (long long)w.first_window, (long long)w.max_window, (long long)w.first_lstm,
                (long long)w.max_lstm, whole.wall, stream.wall, stream.wall / whole.wall,
                whole.cpu, stream.cpu, stream.cpu / whole.cpu, (long long)first_audio, max_diff);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-stream-decode: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
