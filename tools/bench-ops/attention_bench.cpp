// bench-ops attention: times one decode step's attention over a KV cache the way the decoder calls
// it (attention_rows of R CFG rows, one query each: what the CPU backend runs), cycling over one
// cache per layer so the keys and values come from memory as in a real step, not from a cache
// that a repeated call left warm. Prints microseconds per call, the K/V bytes read per call and the
// rate they were read at (GB/s), wall and CPU time; --cross times the cross-attention to a few
// text keys instead (f32, not causal). The same K/V bytes are also just read (summed with AVX2 by
// as many threads, in the same layer order), interleaved with the attention calls, and
// "of read" is attention's rate over that one: on a shared machine both see the same neighbours.
// --states N (N > 1) times the server's shared step instead: N requests of --rows rows each, every
// request over its own cache, as N attention_rows calls and as one attention_rows_batch call (the
// same bits), alternated round by round; prints both per layer (all N requests) and their ratio.
//
// bench-ops attention [--threads N] [--T 50,200,500,1500] [--rows 2] [--heads 16] [--dh 64]
//                     [--queries 1 (S > 1: a prefill's last S positions)]
//                     [--dtype f16|f32] [--layers 24] [--seconds 1] [--cross] [--states 1]
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <immintrin.h>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/threadpool.h"

namespace {

using mg::DType;
using mg::Tensor;

struct Options {
  int threads = 2;
  std::vector<int64_t> T = {50, 200, 500, 1500};
  int64_t rows = 2, heads = 16, dh = 64, layers = 24, queries = 1, states = 1;
  DType dtype = DType::F16;
  double seconds = 1.0;
  bool cross = false;
};

// A whole decimal integer in [lo, hi], or false ("abc", "1e9", "-5" and out-of-range values alike).
bool parse_int(const char* s, int64_t lo, int64_t hi, int64_t* out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_list(const char* s, int64_t lo, int64_t hi, std::vector<int64_t>* out) {
  out->clear();
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    int64_t v;
    if (!parse_int(item.c_str(), lo, hi, &v)) return false;
    out->push_back(v);
  }
  return !out->empty();
}

// Bytes the caches of one key count take (every layer's K and V): the largest count must fit.
constexpr double kMaxCacheBytes = 8e9;

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
    int64_t v = 0;
    bool ok = true;
    if (a == "--threads") {
      ok = parse_int(next, 1, 256, &v);
      o.threads = int(v);
    } else if (a == "--T") {
      ok = parse_list(next, 1, 1 << 20, &o.T);
    } else if (a == "--rows") {
      ok = parse_int(next, 1, 64, &o.rows);
    } else if (a == "--states") {
      ok = parse_int(next, 1, 64, &o.states);
    } else if (a == "--queries") {
      ok = parse_int(next, 1, 1 << 16, &o.queries);
    } else if (a == "--heads") {
      ok = parse_int(next, 1, 256, &o.heads);
    } else if (a == "--dh") {
      ok = parse_int(next, 1, 1024, &o.dh);
    } else if (a == "--layers") {
      ok = parse_int(next, 1, 256, &o.layers);
    } else if (a == "--seconds") {
      o.seconds = std::atof(next);  // "abc" is 0: refused below like any value out of range
      ok = std::isfinite(o.seconds) && o.seconds > 0 && o.seconds <= 600;
    } else if (a == "--dtype" && (std::string(next) == "f16" || std::string(next) == "f32")) {
      o.dtype = std::string(next) == "f16" ? DType::F16 : DType::F32;
    } else {
      std::fprintf(stderr,
                   "bench-ops attention: unknown option %s %s (see the usage at the top of attention_bench.cpp)\n",
                   a.c_str(), next);
      return false;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "bench-ops attention: %s %s is out of range (threads 1-256, T a list of 1-1048576, rows 1-64, "
                   "states 1-64, queries 1-65536, heads 1-256, dh 1-1024, layers 1-256, seconds above 0 up to 600)\n",
                   a.c_str(), next);
      return false;
    }
  }
  const int64_t t_max = *std::max_element(o.T.begin(), o.T.end());
  const int64_t t_min = *std::min_element(o.T.begin(), o.T.end());
  if (o.queries > t_min) {
    std::fprintf(stderr, "bench-ops attention: --queries %lld is more than the shortest --T (%lld): a query needs its "
                         "position in the cache\n", (long long)o.queries, (long long)t_min);
    return false;
  }
  const double cache_bytes =
      2.0 * double(o.layers * o.rows * o.states) * double(t_max) * double(o.heads * o.dh) * (o.dtype == DType::F32 ? 4 : 2);
  if (cache_bytes > kMaxCacheBytes) {
    std::fprintf(stderr,
                 "bench-ops attention: the caches would take %.1f GB (layers x rows x T x heads x dh x K and V); "
                 "at most %.0f GB: lower --T, --layers, --rows or --states\n",
                 cache_bytes * 1e-9, kMaxCacheBytes * 1e-9);
    return false;
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

// Sums `bytes` bytes at p read as floats (only the loads matter; the sum is kept so they stay).
__attribute__((target("avx2"))) float read_avx2(const char* p, int64_t bytes) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 128 <= bytes; i += 128) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(reinterpret_cast<const float*>(p + i)));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(reinterpret_cast<const float*>(p + i + 32)));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(reinterpret_cast<const float*>(p + i + 64)));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(reinterpret_cast<const float*>(p + i + 96)));
  }
  alignas(32) float l[8];
  _mm256_store_ps(l, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return l[0];
}

// The plain read of one layer's K and V, cut into as many pieces as the pool has threads.
float read_layer(mg::cpu::ThreadPool& pool, const Tensor& k, const Tensor& v) {
  float sink[2] = {0, 0};
  const Tensor* kv[2] = {&k, &v};
  for (int t = 0; t < 2; ++t) {
    const char* p = static_cast<const char*>(kv[t]->data);
    const int64_t bytes = int64_t(kv[t]->nbytes()), piece = (bytes / pool.size() + 127) / 128 * 128;
    pool.parallel_for(pool.size(), [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const int64_t from = std::min(bytes, i * piece), to = std::min(bytes, from + piece);
        const float r = read_avx2(p + from, to - from);
        if (i == 0) sink[t] = r;
      }
    });
  }
  return sink[0] + sink[1];
}

void bench_one(mg::cpu::ThreadPool& pool, const Options& o, int64_t T) {
  const mg::cpu::Exec ex{&pool};
  const int64_t D = o.heads * o.dh, R = o.rows;
  const bool causal = !o.cross;
  // Queries as the decoder passes them: the fused q|k|v rows (self) or plain q rows (cross).
  Tensor q = random_f32({R, o.queries, causal ? 3 * D : D}, 1, 2.0f);
  std::vector<Tensor> ks, vs;
  for (int64_t l = 0; l < o.layers; ++l) {
    Tensor k = random_f32({R, T, D}, uint32_t(10 + 2 * l), 2.0f), v = random_f32({R, T, D}, uint32_t(11 + 2 * l), 1.0f);
    ks.push_back(o.dtype == DType::F32 ? k : mg::cpu::cast(k, o.dtype, ex));
    vs.push_back(o.dtype == DType::F32 ? v : mg::cpu::cast(v, o.dtype, ex));
  }
  const float scale = 1.0f / std::sqrt(float(o.dh));
  auto call = [&](int64_t l) {
    return mg::cpu::attention_rows(q, ks[size_t(l)], vs[size_t(l)], T, int(o.heads), scale, causal, ex);
  };
  for (int64_t l = 0; l < o.layers; ++l) call(l);  // warm up: page faults, the pool's threads
  using clock = std::chrono::steady_clock;
  double attention_s = 0, read_s = 0, attention_cpu = 0;
  volatile float sink = 0;
  int64_t calls = 0;
  // Rounds of one pass over every layer's attention and one plain read of every layer's K/V.
  while (attention_s < o.seconds) {
    auto t0 = clock::now();
    const double c0 = cpu_seconds();
    for (int64_t l = 0; l < o.layers; ++l) call(l);
    attention_cpu += cpu_seconds() - c0;
    auto t1 = clock::now();
    for (int64_t l = 0; l < o.layers; ++l) sink += read_layer(pool, ks[size_t(l)], vs[size_t(l)]);
    auto t2 = clock::now();
    attention_s += std::chrono::duration<double>(t1 - t0).count();
    read_s += std::chrono::duration<double>(t2 - t1).count();
    calls += o.layers;
  }
  const double bytes = 2.0 * double(R * T * D) * double(mg::dtype_size(o.dtype));
  const double per = attention_s / double(calls), read_gbps = bytes * double(calls) / read_s * 1e-9;
  const double gbps = bytes / per * 1e-9;
  std::printf("%-6s %-4s T=%-5lld S=%lld rows=%lld H=%lld dh=%lld  %8.2f us/call  %6.3f MB/call  %6.2f GB/s  "
              "read %6.2f GB/s  %5.1f%% of read  cpu %8.2f us/call\n",
              o.cross ? "cross" : "self", mg::dtype_name(o.dtype), (long long)T, (long long)o.queries, (long long)R,
              (long long)o.heads, (long long)o.dh, per * 1e6, bytes * 1e-6, gbps, read_gbps, 100.0 * gbps / read_gbps,
              attention_cpu / double(calls) * 1e6);
}

// --states: N requests' attention per layer as N calls and as one batch, alternated.
void bench_states(mg::cpu::ThreadPool& pool, const Options& o, int64_t T) {
  const mg::cpu::Exec ex{&pool};
  const int64_t D = o.heads * o.dh, R = o.rows, N = o.states, rows = N * R * o.queries;
  const bool causal = !o.cross;
  Tensor q = random_f32({N * R, o.queries, causal ? 3 * D : D}, 1, 2.0f);
  std::vector<Tensor> ks, vs;  // per layer, every request's rows: request n owns rows n * R ..
  for (int64_t l = 0; l < o.layers; ++l) {
    Tensor k = random_f32({N * R, T, D}, uint32_t(10 + 2 * l), 2.0f), v = random_f32({N * R, T, D}, uint32_t(11 + 2 * l), 1.0f);
    ks.push_back(o.dtype == DType::F32 ? k : mg::cpu::cast(k, o.dtype, ex));
    vs.push_back(o.dtype == DType::F32 ? v : mg::cpu::cast(v, o.dtype, ex));
  }
  const float scale = 1.0f / std::sqrt(float(o.dh));
  Tensor out = Tensor::empty(DType::F32, {rows, D});
  auto separate = [&](int64_t l) {
    for (int64_t n = 0; n < N; ++n) {
      Tensor a = mg::cpu::attention_rows(q.slice0(n * R, R), ks[size_t(l)].slice0(n * R, R),
                                         vs[size_t(l)].slice0(n * R, R), T, int(o.heads), scale, causal, ex);
      std::memcpy(out.f32() + n * R * o.queries * D, a.data, a.nbytes());
    }
  };
  auto batched = [&](int64_t l) {
    std::vector<mg::AttentionRowsJob> jobs;
    for (int64_t n = 0; n < N; ++n)
      jobs.push_back({q.slice0(n * R, R), ks[size_t(l)].slice0(n * R, R), vs[size_t(l)].slice0(n * R, R), T,
                      n * R * o.queries});
    mg::cpu::attention_rows_batch(out, jobs, int(o.heads), scale, causal, ex);
  };
  for (int64_t l = 0; l < o.layers; ++l) separate(l), batched(l);  // warm up
  double wall[2] = {0, 0}, cpu[2] = {0, 0};
  int64_t calls = 0;
  while (wall[0] + wall[1] < 2 * o.seconds) {
    for (int way = 0; way < 2; ++way) {
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_seconds();
      for (int64_t l = 0; l < o.layers; ++l) way == 0 ? separate(l) : batched(l);
      cpu[way] += cpu_seconds() - c0;
      wall[way] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    calls += o.layers;
  }
  auto us = [&](double s) { return s / double(calls) * 1e6; };
  std::printf("%-6s %-4s T=%-5lld S=%lld %lld requests x %lld rows  separate %8.2f us/layer (cpu %8.2f)  "
              "batch %8.2f us/layer (cpu %8.2f)  batch/separate %.3f\n",
              o.cross ? "cross" : "self", mg::dtype_name(o.dtype), (long long)T, (long long)o.queries, (long long)N,
              (long long)R, us(wall[0]), us(cpu[0]), us(wall[1]), us(cpu[1]), wall[1] / wall[0]);
}

}  // namespace

int run_attention_bench(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  mg::cpu::ThreadPool pool(o.threads);  // one pool for the attention and the plain reads
  // The attention path follows the kernel path (MUSICGEN_CPU_PATH=avx2 runs the (head, query) items).
  std::printf("bench-ops attention: %d threads, %lld layers cycled, kernel path %s\n", o.threads, (long long)o.layers,
              mg::cpu::kernel_path_name(mg::cpu::kernel_path_for(mg::cpu::Exec{&pool})));
  for (int64_t T : o.T) o.states > 1 ? bench_states(pool, o, T) : bench_one(pool, o, T);
  return 0;
}
