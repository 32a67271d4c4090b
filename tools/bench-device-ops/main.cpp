// bench-device-ops: the decode-step and codec ops on a device backend at full-size shapes
// (musicgen-small: D 1024, FFN 4096, 16 heads, 4 x 2048 codes, CFG pair; EnCodec 32 kHz layers),
// each checked against the CPU backend on random inputs (never zeros) and then timed, with the
// achieved GB/s (bytes the op must move) or TFLOP/s next to the card's ceiling.
//
//   bench-device-ops [--device cuda] [--copy-gbps 4000] [--tflops 60] [--reps 50]
//
// Timing: `reps` back-to-back calls of the op are captured as ONE recording (Backend::record: a CUDA
// graph) and the recording is replayed, so what is measured is device time, not launch cost; with
// --eager each call is launched on its own instead (what the graph saves). --copy-gbps: the device
// copy bandwidth (bench-memory --device cuda), the ceiling of the memory-bound ops; --tflops: the
// f32 peak to compare the compute-bound ones with (H200: 67 TFLOP/s f32 on paper).
// Works on the CPU backend too (--device cpu), where the check is trivially exact.
// Last lines: "OP name=... rel_err=... us=... gbps=... tflops=... pct=..." per case, machine-readable.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace {

using mg::Backend;
using mg::DType;
using mg::Tensor;

Tensor random(const mg::Shape& s, uint32_t seed, float scale = 1.0f) {
  Tensor t = Tensor::empty(DType::F32, s);
  uint32_t x = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < t.numel(); ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    t.f32()[i] = scale * (float(x % 20001u) / 10000.0f - 1.0f + 1e-4f);  // never exactly zero
  }
  return t;
}

Tensor i32s(const std::vector<int32_t>& v, const mg::Shape& s) {
  Tensor t = Tensor::empty(DType::I32, s);
  std::memcpy(t.data, v.data(), v.size() * sizeof(int32_t));
  return t;
}

double rel_err(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  if (x.size() != y.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(y[i]) * y[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1.0));
}

struct Options {
  double copy_gbps = 0, tflops = 0;
  int reps = 50;
  bool eager = false;
};

using clock_type = std::chrono::steady_clock;

}  // namespace

// An op on a backend, with its inputs uploaded there: prepare(be) returns the closure that runs it.
using Prepared = std::function<Tensor()>;
using Prepare = std::function<Prepared(Backend&)>;

// heavy: an op that is itself thousands of launches (the LSTM) or long (30 s convolutions): a
// couple of calls per timing instead of `reps`.
static void bench(const std::string& name, double bytes, double flops, const Prepare& prepare, Backend& dev,
                  Backend& cpu, Options o, bool heavy = false) {
  if (heavy) o.reps = 2;
  const Prepared on_cpu = prepare(cpu), on_dev = prepare(dev);
  const Tensor want = on_cpu();
  const Tensor got = dev.download(on_dev());
  // Integer results (ids) must be equal; float ones within rounding.
  const bool ints = got.dtype == DType::I32 || got.dtype == DType::I64;
  const double err = !ints ? rel_err(got, want)
                     : got.nbytes() == want.nbytes() && std::memcmp(got.data, want.data, want.nbytes()) == 0 ? 0.0
                                                                                                             : 1.0;
  // Timing: reps calls in one recording (device time), or launched one by one (--eager).
  Tensor sink;
  std::unique_ptr<Backend::Recording> rec;
  if (!o.eager) rec = dev.record([&] {
    for (int i = 0; i < o.reps; ++i) sink = on_dev();
  });
  auto once = [&] {
    if (rec) {
      rec->replay();
    } else {
      for (int i = 0; i < o.reps; ++i) sink = on_dev();
    }
    dev.synchronize();
  };
  once();  // warm-up
  double best = INFINITY;
  for (int t = 0; t < 5; ++t) {
    const auto t0 = clock_type::now();
    once();
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - t0).count() / o.reps);
  }
  const double gbps = bytes / best / 1e9, tflops = flops / best / 1e12;
  double pct = 0;
  if (flops > 0 && o.tflops > 0) pct = 100.0 * tflops / o.tflops;
  else if (bytes > 0 && o.copy_gbps > 0) pct = 100.0 * gbps / o.copy_gbps;
  std::printf("%-44s rel_err %.1e  %9.2f us  %8.1f GB/s  %7.2f TFLOP/s  %5.1f%% of %s\n", name.c_str(), err,
              best * 1e6, gbps, tflops, pct, flops > 0 ? "f32 peak" : "copy bandwidth");
  std::printf("OP name=%s rel_err=%.3e us=%.3f gbps=%.2f tflops=%.3f pct=%.1f\n", name.c_str(), err, best * 1e6, gbps,
              tflops, pct);
}

int main(int argc, char** argv) {
  CLI::App app{"Device ops at full-size shapes: checked against the CPU, timed, GB/s against the ceiling"};
  std::string device = "cuda";
  Options o;
  app.add_option("--device", device, "cuda or cpu")->check(CLI::IsMember({"cuda", "cpu"}))->capture_default_str();
  app.add_option("--copy-gbps", o.copy_gbps, "Device copy bandwidth (bench-memory --device cuda)");
  app.add_option("--tflops", o.tflops, "f32 peak TFLOP/s of the card");
  app.add_option("--reps", o.reps, "Calls per timed recording")->capture_default_str();
  app.add_flag("--eager", o.eager, "Launch each call on its own instead of replaying one recording");
  std::string filter;
  app.add_option("--filter", filter, "Only cases whose name contains this");
  CLI11_PARSE(app, argc, argv);
  try {
    if (device == "cuda" && !mg::cuda_available()) {
      std::fprintf(stderr, "bench-device-ops: no CUDA device here (or a build without CUDA)\n");
      return 1;
    }
    auto cpu = mg::make_cpu_backend(0);
    auto dev = device == "cuda" ? mg::make_cuda_backend(0) : mg::make_cpu_backend(0);
    const int64_t D = 1024, F = 4096, H = 16, K = 4, V = 2048, R = 2, CAP = 1503;
    auto want = [&](const std::string& n) { return filter.empty() || n.find(filter) != std::string::npos; };

    // ---- the decode step's linears (GEMV at 2 rows), every weight dtype ----
    struct Lin {
      const char* what;
      int64_t n, k;
      bool gelu, residual;
    };
    for (DType wt : {DType::BF16, DType::F16, DType::F32}) {
      for (const Lin& l : {Lin{"qkv", 3 * D, D, false, false}, Lin{"out+residual", D, D, false, true},
                           Lin{"fc1+gelu", F, D, true, false}, Lin{"fc2+residual", D, F, false, true},
                           Lin{"heads", K * V, D, false, false}}) {
        const std::string name = std::string("linear ") + mg::dtype_name(wt) + " " + l.what + " [2x" +
                                 std::to_string(l.k) + "]x[" + std::to_string(l.n) + "]";
        if (!want(name)) continue;
        const Tensor x = random({R, l.k}, 1), w = random({l.n, l.k}, 2, 0.03f), res = random({R, l.n}, 3);
        const double bytes = double(l.n) * l.k * mg::dtype_size(wt) + 4.0 * R * (l.k + l.n * (l.residual ? 2 : 1));
        bench(name, bytes, 0,
              [&](Backend& be) -> Prepared {
                Tensor wx = be.upload(w);
                if (wt != DType::F32) wx = be.cast(wx, wt);
                Tensor xx = be.upload(x), rx = be.upload(res);
                return [&be, wx, xx, rx, l] {
                  mg::LinearFusion f;
                  f.gelu = l.gelu;
                  f.residual = l.residual ? &rx : nullptr;
                  return be.linear_fused(xx, wx, nullptr, f);
                };
              },
              *dev, *cpu, o);
      }
    }

    // ---- the rest of the decode step ----
    if (want("layer_norm")) {
      const Tensor x = random({R, D}, 4), g = random({D}, 5), b = random({D}, 6);
      bench("layer_norm [2x1024]", 4.0 * (2 * R * D + 2 * D), 0,
            [&](Backend& be) -> Prepared {
              Tensor xx = be.upload(x), gx = be.upload(g), bx = be.upload(b);
              return [&be, xx, gx, bx] { return be.layer_norm(xx, gx, &bx, 1e-5f); };
            },
            *dev, *cpu, o);
    }
    for (DType kvt : {DType::F32, DType::F16})
    for (int32_t keys : {256, 1500}) {
      const std::string name = "attention_rows_at 2 rows, " + std::to_string(keys) + " keys, " +
                               mg::dtype_name(kvt) + " cache";
      if (!want(name)) continue;
      const Tensor q = random({R, 1, D}, 7), k = random({R, CAP, D}, 8), v = random({R, CAP, D}, 9);
      bench(name, 2.0 * R * keys * D * mg::dtype_size(kvt), 0,
            [&](Backend& be) -> Prepared {
              Tensor qx = be.upload(q), kx = be.upload(k), vx = be.upload(v), n = be.upload(i32s({keys}, {1}));
              if (kvt != DType::F32) {
                kx = be.cast(kx, kvt);
                vx = be.cast(vx, kvt);
              }
              return [&be, qx, kx, vx, n, H, CAP] { return be.attention_rows_at(qx, kx, vx, n, CAP, int(H), 0.125f, true); };
            },
            *dev, *cpu, o);
    }
    if (want("write_kv_at")) {
      const Tensor src = random({R, 3 * D}, 10), cache = random({R, CAP, D}, 11);
      bench("write_kv_at 2 rows", 2.0 * R * D * 4, 0,
            [&](Backend& be) -> Prepared {
              Tensor s = be.upload(src), pos = be.upload(i32s({700}, {1}));
              auto c = std::make_shared<Tensor>(be.upload(cache));
              return [&be, s, pos, c] {
                be.write_kv_at(*c, pos, s, 1024);
                return c->slice0(0, 1);
              };
            },
            *dev, *cpu, o);
    }
    if (want("sample_tokens_at")) {
      const Tensor logits = random({R, K, V}, 12, 5.0f);  // one sequence: its conditional and null rows
      for (bool greedy : {true, false}) {
        const std::string name = std::string("sample_tokens_at CFG, 4 x 2048, ") + (greedy ? "greedy" : "top-k 250");
        mg::SamplerParams sp;
        sp.greedy = greedy;
        Tensor seeds = Tensor::empty(DType::I64, {1});
        seeds.ptr<int64_t>()[0] = 1;
        bench(name, double(logits.nbytes()), 0,
              [&](Backend& be) -> Prepared {
                Tensor lx = be.upload(logits), sx = be.upload(seeds), st = be.upload(i32s({7}, {1}));
                return [&be, lx, sx, st, sp] { return be.sample_tokens_at(lx, true, 3.0f, sp, sx, st); };
              },
              *dev, *cpu, o);
      }
    }

    // ---- EnCodec 32 kHz: the largest conv layers on 30 s, the LSTM, the RVQ search ----
    if (want("conv1d")) {
      const int64_t T = 30 * 32000 / 4;  // after the first downsampling stage (stride 4)
      const Tensor x = random({1, 128, T}, 13), w = random({128, 128, 3}, 14, 0.05f), b = random({128}, 15);
      bench("conv1d [128 x 240000] k3 x128", 0, 2.0 * 128 * 128 * 3 * T,
            [&](Backend& be) -> Prepared {
              Tensor xx = be.upload(x), wx = be.upload(w), bx = be.upload(b);
              return [&be, xx, wx, bx] {
                mg::Conv1dFusion f;
                f.elu = true;
                f.pad_left = 2;
                f.pad_mode = mg::PadMode::Reflect;
                return be.conv1d(xx, wx, &bx, 1, 1, f);
              };
            },
            *dev, *cpu, o, true);
    }
    if (want("lstm")) {
      const int64_t T = 1500, Hh = 1024;
      mg::LstmLayerWeights lw{random({4 * Hh, Hh}, 16, 0.03f), random({4 * Hh, Hh}, 17, 0.03f), random({4 * Hh}, 18),
                              random({4 * Hh}, 19)};
      const Tensor x = random({T, Hh}, 20);
      bench("lstm 1500 steps, H 1024", double(T) * 4 * Hh * Hh * 4, 0,
            [&](Backend& be) -> Prepared {
              mg::LstmLayerWeights w{be.upload(lw.w_ih), be.upload(lw.w_hh), be.upload(lw.b_ih), be.upload(lw.b_hh)};
              Tensor xx = be.upload(x);
              return [&be, w, xx] { return be.lstm(xx, w); };
            },
            *dev, *cpu, o, true);
    }
    if (want("vq_nearest")) {
      const Tensor x = random({1500, 128}, 21), e = random({2048, 128}, 22);
      bench("vq_nearest 1500 x 2048 codes of 128", 0, 2.0 * 1500 * 2048 * 128,
            [&](Backend& be) -> Prepared {
              Tensor xx = be.upload(x), ex = be.upload(e);
              return [&be, xx, ex] { return be.vq_nearest(xx, ex); };
            },
            *dev, *cpu, o);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-device-ops: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
