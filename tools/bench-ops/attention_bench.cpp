// bench-ops attention: times one decode step's attention over a KV cache the way the decoder calls
// it (Backend::attention_rows of R CFG rows, one query each, on the CPU backend), cycling over one
// cache per layer so the keys and values come from memory as in a real step, not from a cache
// that a repeated call left warm. Prints microseconds per call, the K/V bytes read per call and the
// rate they were read at (GB/s), wall and CPU time; --cross times the cross-attention to a few
// text keys instead (f32, not causal).
//
// bench-ops attention [--threads N] [--T 50,200,500,1500] [--rows 2] [--heads 16] [--dh 64]
//                     [--dtype f16|f32] [--layers 24] [--seconds 1] [--cross]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace {

using mg::DType;
using mg::Tensor;

struct Options {
  int threads = 2;
  std::vector<int64_t> T = {50, 200, 500, 1500};
  int64_t rows = 2, heads = 16, dh = 64, layers = 24;
  DType dtype = DType::F16;
  double seconds = 1.0;
  bool cross = false;
};

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::atoll(item.c_str()));
  return out;
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--cross") {
      o.cross = true;
      continue;
    }
    if (!next) {
      std::fprintf(stderr, "bench-ops attention: %s needs a value\n", a.c_str());
      return false;
    }
    ++i;
    if (a == "--threads") o.threads = std::atoi(next);
    else if (a == "--T") o.T = parse_list(next);
    else if (a == "--rows") o.rows = std::atoll(next);
    else if (a == "--heads") o.heads = std::atoll(next);
    else if (a == "--dh") o.dh = std::atoll(next);
    else if (a == "--layers") o.layers = std::atoll(next);
    else if (a == "--seconds") o.seconds = std::atof(next);
    else if (a == "--dtype" && std::string(next) == "f16") o.dtype = DType::F16;
    else if (a == "--dtype" && std::string(next) == "f32") o.dtype = DType::F32;
    else {
      std::fprintf(stderr, "bench-ops attention: unknown option %s %s (see the usage at the top of attention_bench.cpp)\n",
                   a.c_str(), next);
      return false;
    }
  }
  return true;
}

Tensor random_f32(const mg::Shape& s, uint32_t seed, float scale) {
  Tensor t = Tensor::empty(DType::F32, s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = d(rng) * scale;
  return t;
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

void bench_one(mg::Backend& be, const Options& o, int64_t T) {
  const int64_t D = o.heads * o.dh, R = o.rows;
  const bool causal = !o.cross;
  // Queries as the decoder passes them: the fused q|k|v rows (self) or plain q rows (cross).
  Tensor q = random_f32({R, 1, causal ? 3 * D : D}, 1, 2.0f);
  std::vector<Tensor> ks, vs;
  for (int64_t l = 0; l < o.layers; ++l) {
    Tensor k = random_f32({R, T, D}, uint32_t(10 + 2 * l), 2.0f), v = random_f32({R, T, D}, uint32_t(11 + 2 * l), 1.0f);
    ks.push_back(o.dtype == DType::F32 ? k : be.cast(k, o.dtype));
    vs.push_back(o.dtype == DType::F32 ? v : be.cast(v, o.dtype));
  }
  const float scale = 1.0f / std::sqrt(float(o.dh));
  auto call = [&](int64_t l) { return be.attention_rows(q, ks[size_t(l)], vs[size_t(l)], T, int(o.heads), scale, causal); };
  for (int64_t l = 0; l < o.layers; ++l) call(l);  // warm up: page faults, the pool's threads
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const double cpu0 = cpu_seconds();
  int64_t calls = 0;
  double elapsed = 0;
  do {
    for (int64_t l = 0; l < o.layers; ++l) call(l);
    calls += o.layers;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < o.seconds);
  const double cpu = cpu_seconds() - cpu0;
  const double bytes = 2.0 * double(R * T * D) * double(mg::dtype_size(o.dtype));
  const double per = elapsed / double(calls);
  std::printf("%-6s %-4s T=%-5lld rows=%lld H=%lld dh=%lld  %9.2f us/call  %7.3f MB/call  %6.2f GB/s  cpu %7.2f us/call\n",
              o.cross ? "cross" : "self", mg::dtype_name(o.dtype), (long long)T, (long long)R, (long long)o.heads,
              (long long)o.dh, per * 1e6, bytes * 1e-6, bytes / per * 1e-9, cpu / double(calls) * 1e6);
}

}  // namespace

int run_attention_bench(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  auto be = mg::make_cpu_backend(o.threads);
  std::printf("bench-ops attention: %d threads, %lld layers cycled\n", o.threads, (long long)o.layers);
  for (int64_t T : o.T) bench_one(*be, o, T);
  return 0;
}
