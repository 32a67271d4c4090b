// bench-musicgen: decode speed of a MusicGen snapshot on this machine, the way musicgen-cli runs it
// (prompt -> T5 -> CFG decode loop -> EnCodec), with each phase timed apart.
//
//   bench-musicgen --model tools/reference/local/musicgen-small --threads 2 --steps 503 [--weights f32|f16|bf16|q8|q4]
//                  [--greedy] [--read-gbps 12.3] [--profile] [--stream] [--probe-every 50 [--probe-mb 256]]
//   bench-musicgen --device cuda --model /tmp/musicgen-small --steps 503 [--copy-gbps 3900]
//       (on a GPU: the model from make-random-model; --copy-gbps is bench-memory --device cuda's figure)
//
// A developer tool over lm/ and kernels/ (like bench-ops): it links the static library so that it
// can time the decoder steps apart from T5 and the codec, and split a step's time per op
// (--profile wraps the backend in ProfilingBackend). The last line is machine-readable:
//   RESULT impl=ours device=cpu weights=f32 threads=2 steps=503 step_ms=... steps_per_s=... total_s=...
//          peak_rss_mb=... mode=file|stream first_audio_s=... [roofline_steps_per_s=... roofline_pct=...]
// and tools/bench-musicgen/run.sh puts it next to transformers' (bench_reference.py); gpu-check.sh
// reads it for the GPU rows. The roofline is the weight bytes a step reads over a bandwidth: host
// reads (--read-gbps) on the CPU, the device copy bandwidth (--copy-gbps) on CUDA.
//
// --probe-every N (CPU): the roofline paired in time. The steady-state steps are cut into windows
// of N; before the first and after each window a short read probe (bench-memory's read loop,
// tools/bench-memory/read_bandwidth.h) runs in this process with the decode's thread count, and
// each window's roofline % is its own steps/s against the higher of the probes around it. Prints
// a table per window, the median and range, and adds probe_* and paired_roofline_* keys to RESULT
// (the old keys keep their meaning: --read-gbps is a bandwidth measured before the run).
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lm/generate.h"
#include "kernels/quant.h"
#include "lm/stream.h"
#include "paired_roofline.h"
#include "profiling_backend.h"
#include "read_bandwidth.h"
#include "step_weights.h"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// The peak RSS without the probe buffers (probe_mb_held, mapped between the two readings): the
// higher of the peak before they were mapped, the peak while they were less their size, and a
// peak reached after they were unmapped (the audio decode), if there was a new one.
double peak_rss_without_probe_mb(double before_mb, double with_probe_mb, double probe_mb_held) {
  const double end_mb = peak_rss_mb();
  return std::max({before_mb, with_probe_mb - probe_mb_held, end_mb > with_probe_mb ? end_mb : 0.0});
}

mg::DType weights_dtype(const std::string& w) {
  if (w == "f16") return mg::DType::F16;
  if (w == "bf16") return mg::DType::BF16;
  if (w == "q8" || w == "q8_0") return mg::DType::Q8_0;
  if (w == "q4" || w == "q4_0") return mg::DType::Q4_0;
  return mg::DType::F32;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"MusicGen decode speed: T5, CFG decode steps and EnCodec timed apart"};
  std::string model = "tools/reference/local/musicgen-small", weights = "f32";
  std::string prompt = "80s pop track with bassy drums and synth";
  int threads = 0, steps = 503, top_k = 250;
  bool greedy = false, profile = false, no_audio = false, fallback_attention = false;
  double read_gbps = 0, copy_gbps = 0;
  std::string device = "cpu";
  uint64_t seed = 1;
  app.add_option("-m,--model", model, "MusicGen snapshot folder")->capture_default_str();
  app.add_option("--device", device, "Backend: cpu, or cuda (device 0)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("-t,--threads", threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--steps", steps, "Decoder calls (503 = 10 s: 500 frames + 3 delay columns)")->capture_default_str();
  app.add_option("--weights", weights, "Decoder weights: f32, f16, bf16, q8 (q8_0) or q4 (q4_0)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8", "q8_0", "q4", "q4_0"}))
      ->capture_default_str();
  app.add_option("-p,--prompt", prompt, "Text prompt (CFG 3 with a null row)")->capture_default_str();
  app.add_flag("--greedy", greedy, "Argmax instead of top-k sampling");
  app.add_option("--top-k", top_k, "Top-k when sampling")->capture_default_str();
  app.add_option("--seed", seed, "Sampling seed")->capture_default_str();
  app.add_option("--read-gbps", read_gbps, "Measured read bandwidth (bench-memory) to print the roofline");
  app.add_option("--copy-gbps", copy_gbps,
                 "Measured device copy bandwidth (bench-memory --device cuda) to print the roofline on CUDA");
  app.add_flag("--profile", profile, "Split the decode steps' time per op");
  app.add_flag("--no-audio", no_audio, "Skip the EnCodec decode at the end");
  bool eager = false;
  app.add_flag("--eager", eager,
               "Run each decode step op by op instead of replaying one recorded step (a CUDA graph on cuda)");
  bool stream = false;
  app.add_flag("--stream", stream, "Stream audio out (lm/stream.h) instead of decoding it at the end; print when the first audio arrives");
  app.add_flag("--fallback-attention", fallback_attention,
               "With --profile: the host default attention (backend_fallbacks.cpp) instead of the CPU kernel");
  int probe_every = 0, probe_mb = 256, probe_passes = 3;
  app.add_option("--probe-every", probe_every,
                 "CPU: a read-bandwidth probe before the first and after every N decode steps; prints each "
                 "window's roofline % against the probes around it (0: off)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--probe-mb", probe_mb, "Size of each probe buffer (one in 4 KiB, one in 2 MiB pages), MiB")
      ->check(CLI::Range(64, 4096))
      ->capture_default_str();
  app.add_option("--probe-passes", probe_passes, "Passes over each probe buffer per probe (the best is kept)")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (probe_every > 0 && device != "cpu") {
    std::fprintf(stderr, "bench-musicgen: --probe-every measures host reads: use it with --device cpu "
                         "(on CUDA, pass --copy-gbps from bench-memory --device cuda)\n");
    return 2;
  }
  // Streaming delivers the audio during generation, as musicgen-cli --stream without -o: no whole
  // decode after it, so total_s is the streaming path's.
  if (stream) no_audio = true;
  if (steps < 4) {
    std::fprintf(stderr, "bench-musicgen: --steps must be >= 4 (3 delay columns + 1 frame)\n");
    return 2;
  }

  try {
    const mg::DType dt = weights_dtype(weights);
    if (device == "cuda" && !mg::cuda_available()) {
      std::fprintf(stderr, "bench-musicgen: --device cuda: no CUDA device (this build %s CUDA)\n",
#ifdef MUSICGEN_HAVE_CUDA
                   "has"
#else
                   "has no"
#endif
      );
      return 1;
    }
    auto base = device == "cuda" ? mg::make_cuda_backend(0) : mg::make_cpu_backend(threads);
    // On CUDA the per-op times of --profile are launch times only (the ops run asynchronously).
    mgbench::ProfilingBackend prof(*base, fallback_attention);
    mg::Backend& be = profile ? static_cast<mg::Backend&>(prof) : *base;

    const auto t_load = clock_type::now();
    auto m = mg::MusicGen::load(be, model, dt);
    const double load_s = seconds_since(t_load);
    const mg::MusicgenConfig& cfg = m->config();
    const int64_t per_step = mgbench::weights_read_per_step(cfg);
    const double bytes_per_step = double(per_step) * mgbench::bytes_per_weight(dt);
    std::printf("model %s: decoder %d layers x %d wide, ffn %d, %d codebooks; %lld weights read per step "
                "(%.3f GB in %s)\n",
                model.c_str(), cfg.decoder.num_hidden_layers, cfg.decoder.hidden_size, cfg.decoder.ffn_dim,
                cfg.decoder.num_codebooks, (long long)per_step, bytes_per_step / 1e9, weights.c_str());
    std::printf("load %.2f s, %s, %d threads\n", load_s, device.c_str(), threads);
    // Made before the clock starts: mapping the buffers and picking the fastest read pattern is
    // not part of any probe.
    std::unique_ptr<mgbench::ReadProbe> probe;
    // peak_rss_mb keeps its meaning (the library's memory): the probe buffers (2 x probe_mb,
    // every page written) are taken out of the high-water mark seen while they were mapped.
    const double rss_before_probe_mb = peak_rss_mb();
    double rss_with_probe_mb = 0;
    if (probe_every > 0) {
      const int probe_threads = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
      probe = std::make_unique<mgbench::ReadProbe>(size_t(probe_mb), probe_threads, probe_passes);
      std::printf("read probe every %d steps: %s\n", probe_every, probe->describe().c_str());
    }

    mg::GenerateParams p;
    p.prompt = prompt;
    p.guidance_scale = 3.0f;
    p.sampler.greedy = greedy;
    p.record_steps = !eager;
    p.sampler.top_k = top_k;
    p.seed = seed;
    const int frames = steps - cfg.max_delay();
    p.duration_s = (frames + 0.5) / cfg.frame_rate();
    std::vector<double> stamps;  // time of the end of each decoder step
    // Probes run synchronously on this thread inside the progress callback, between two steps
    // (the CPU backend runs a step, recorded or not, before the callback returns), so nothing of
    // the decode runs while they do. Their wall time is summed in probe_s and taken out of every
    // time read after them (gen_clock): the step stamps, hence steps/s and each window's time,
    // generate_s and first_audio_s are what they would be without probes. What stays in is their
    // after-effect: the first step of a window starts with caches the probe has evicted. The
    // probe's threads have the cores: the backend's pool workers spin at most kSpinMicros (200 us,
    // kernels/cpu/threadpool.h) after a step, then sleep until the next one.
    std::vector<double> probe_gbps;
    double probe_s = 0;
    auto t_gen = clock_type::now();
    auto gen_clock = [&] { return seconds_since(t_gen) - probe_s; };
    auto run_probe = [&] {
      const auto t0 = clock_type::now();
      probe_gbps.push_back(probe->measure());
      probe_s += seconds_since(t0);
    };
    p.progress = [&](int64_t, int64_t) {
      stamps.push_back(gen_clock());
      if (profile && stamps.size() == 1) prof.reset();  // per-op split over steps 2..N only
      if (probe && (stamps.size() - 1) % size_t(probe_every) == 0) run_probe();  // after step 1, 1 + N, ...
      return true;
    };
    // Streaming: the step count and time at which the first decoded audio reaches the sink.
    std::unique_ptr<mg::StreamingDecoder> streamer;
    int64_t first_audio_step = -1;
    double first_audio_s = 0;
    if (stream) {
      streamer = std::make_unique<mg::StreamingDecoder>(*m, [&](const std::vector<std::vector<float>>&, int64_t) {
        if (first_audio_step < 0) {
          first_audio_step = int64_t(stamps.size());
          first_audio_s = gen_clock();
        }
      });
      p.on_frame = [&](int seq, int64_t, const std::vector<int>& frame) {
        if (seq == 0) streamer->push(frame);
      };
    }
    const auto codes = m->generate_codes(p);
    if (streamer) streamer->finish();
    const double gen_s = gen_clock();
    // The probe after a last, shorter window (a full one had it in the callback).
    if (probe && (stamps.size() - 1) % size_t(probe_every) != 0) run_probe();
    if (probe) {
      rss_with_probe_mb = peak_rss_mb();
      probe.reset();  // unmapped before the audio decode
    }
    if (stream)
      std::printf("stream: first audio after %lld decoder steps (%.2f s); bound: the first EnCodec window and its "
                  "margins (%lld frames) + max_delay (%d) steps\n",
                  (long long)first_audio_step, first_audio_s, (long long)streamer->first_audio_after_frames(),
                  cfg.max_delay());
    double audio_s = 0;
    int64_t nonfinite = 0;
    if (!no_audio) {
      const auto t_audio = clock_type::now();
      mg::Tensor audio = m->decode_audio(codes);
      if (audio.device != mg::Device::CPU) audio = be.download(audio);
      audio_s = seconds_since(t_audio);
      const mg::Tensor a32 = audio.as_f32();
      for (int64_t i = 0; i < a32.numel(); ++i) nonfinite += std::isfinite(a32.f32()[i]) ? 0 : 1;
      std::printf("audio: %lld samples decoded in %.2f s, %lld not finite\n", (long long)audio.numel(), audio_s,
                  (long long)nonfinite);
    }
    const int n = int(stamps.size());
    // Steady state: from the end of step 1 to the end of step N (the first step includes the
    // cache allocation and the cross-attention keys, as HF's first step includes its prefill).
    const double steady = n > 1 ? (stamps.back() - stamps.front()) / (n - 1) : stamps.back();
    const double prep_s = stamps.front() - (stamps.size() > 1 ? steady : 0.0);
    std::printf("steps %d (frames %d), generate %.2f s: text + first-step overhead %.2f s, %.2f ms/step steady, "
                "%.2f steps/s\n",
                n, frames, gen_s, prep_s, steady * 1e3, 1.0 / steady);
    // The self-attention reads every cached key and value (2) of every layer and of both CFG rows
    // (2) each step (f32 caches with f32 weights, f16 with half ones): on average over the run half
    // the final length. Not in the roofline (its targets are stated for the weights); printed beside
    // it because on a GPU it is of the same order as the bf16 weights for long generations.
    const double kv_bytes_per_position = 2.0 * 2.0 * cfg.decoder.num_hidden_layers * cfg.decoder.hidden_size *
                                         double(mg::dtype_size(m->decoder().kv_dtype));
    const double kv_bytes_mean = kv_bytes_per_position * (double(n) / 2.0 + 1.0);
    // The bandwidth that bounds a step: host reads on the CPU, device copies on CUDA.
    const double gbps = device == "cuda" ? copy_gbps : read_gbps;
    const double limit = gbps > 0 ? gbps * 1e9 / bytes_per_step : 0;
    // Everything a step must read (the weights and the mean KV cache): the physical bound, printed
    // beside the weights-only roofline that the targets are stated in.
    const double limit_all = gbps > 0 ? gbps * 1e9 / (bytes_per_step + kv_bytes_mean) : 0;
    if (limit > 0) {
      std::printf("roofline: %.3f GB per step / %.2f GB/s (%s) = %.2f steps/s; measured %.2f steps/s = %.0f%% of it\n",
                  bytes_per_step / 1e9, gbps, device == "cuda" ? "device copy" : "host read", limit, 1.0 / steady,
                  100.0 / steady / limit);
      std::printf("with the KV cache: %.3f GB per step (mean) = %.2f steps/s; measured = %.0f%% of it\n",
                  (bytes_per_step + kv_bytes_mean) / 1e9, limit_all, 100.0 / steady / limit_all);
    }
    mgbench::PairedRoofline paired;
    if (probe_every > 0) {
      paired = mgbench::pair_windows(stamps, probe_gbps, probe_every, bytes_per_step, kv_bytes_per_position);
      mgbench::print_window_table(paired);
    }
    if (profile) {
      const double tot = prof.total(), wall = stamps.back() - stamps.front();
      std::printf("\nper-op time over steps 2..%d (%.2f s in ops, %.2f s wall, %.1f%% outside ops):\n", n, tot, wall,
                  100.0 * (wall - tot) / wall);
      for (auto& [name, st] : prof.sorted())
        std::printf("  %-44s %7ld calls %9.3f s %6.1f%%  %8.1f us/call\n", name.c_str(), st.first, st.second,
                    100.0 * st.second / wall, 1e6 * st.second / double(st.first));
    }
    const double total = load_s + gen_s + audio_s;
    std::printf("RESULT impl=ours device=%s weights=%s sampling=%s threads=%d steps=%d step_ms=%.3f steps_per_s=%.4f "
                "generate_s=%.3f audio_s=%.3f load_s=%.3f total_s=%.3f peak_rss_mb=%.0f weight_gb_per_step=%.4f",
                device.c_str(), weights.c_str(), greedy ? "greedy" : "top-k", threads, n, steady * 1e3, 1.0 / steady,
                gen_s, audio_s, load_s, total,
                probe_every > 0 ? peak_rss_without_probe_mb(rss_before_probe_mb, rss_with_probe_mb, 2.0 * probe_mb)
                                : peak_rss_mb(),
                bytes_per_step / 1e9);
    std::printf(" step_mode=%s kv_gb_per_step_mean=%.4f", eager ? "eager" : "recorded", kv_bytes_mean / 1e9);
    if (limit > 0)
      std::printf(" roofline_steps_per_s=%.2f roofline_pct=%.1f roofline_with_kv_pct=%.1f", limit,
                  100.0 / steady / limit, 100.0 / steady / limit_all);
    if (probe_every > 0) std::printf("%s", mgbench::result_keys(paired, probe_every, probe_s).c_str());
    if (!no_audio) std::printf(" audio_nonfinite=%lld", (long long)nonfinite);
    // Time to first audio from the start of generation: the first streamed chunk, or else the
    // whole generation and its decode (a file has no audio before it is complete).
    std::printf(" mode=%s first_audio_s=%.3f", stream ? "stream" : "file", stream ? first_audio_s : gen_s + audio_s);
    std::printf("\n");
    if (nonfinite > 0) {
      std::fprintf(stderr, "bench-musicgen: %lld audio samples are not finite\n", (long long)nonfinite);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-musicgen: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
