// The CPU LSTM op with carried state (kernels/cpu/lstm.cpp): a sequence run in chunks, each chunk
// starting from the (h, c) the previous one returned, must equal the one-shot run (EnCodec's
// windowed codec relies on it); the maths against a plain double-precision loop, with and without
// an initial state; the AVX-512, AVX2 and portable paths; thread-count invariance of the
// threaded recurrence (it only starts for H >= 128), also with threads the OS pauses; and the state
// checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::Tensor;
using mgtest::random_tensor;
namespace cpu = mg::cpu;

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape == b.shape && a.dtype == b.dtype && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

mg::LstmLayerWeights random_weights(int64_t in, int64_t H, uint32_t seed) {
  // Scaled so that the gates move through their whole range rather than saturating.
  const float s = 1.0f / std::sqrt(float(std::max(in, H)));
  return {random_tensor({4 * H, in}, seed, 2 * s), random_tensor({4 * H, H}, seed + 1, 2 * s),
          random_tensor({4 * H}, seed + 2, 0.5f), random_tensor({4 * H}, seed + 3, 0.5f)};
}

// torch.nn.LSTM's single-layer recurrence in double precision, from (h, c) (empty: zeros);
// h and c are left holding the final state.
Tensor naive_lstm(const Tensor& x, const mg::LstmLayerWeights& w, std::vector<double>& h, std::vector<double>& c) {
  const int64_t T = x.dim(0), in = x.dim(1), H = w.w_hh.dim(1);
  if (h.empty()) h.assign(size_t(H), 0.0);
  if (c.empty()) c.assign(size_t(H), 0.0);
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  Tensor out = Tensor::empty(DType::F32, {T, H});
  std::vector<double> g(size_t(4 * H));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t r = 0; r < 4 * H; ++r) {
      double a = double(w.b_ih.f32()[r]) + w.b_hh.f32()[r];
      for (int64_t k = 0; k < in; ++k) a += double(w.w_ih.f32()[r * in + k]) * x.f32()[t * in + k];
      for (int64_t k = 0; k < H; ++k) a += double(w.w_hh.f32()[r * H + k]) * h[size_t(k)];
      g[size_t(r)] = a;
    }
    for (int64_t j = 0; j < H; ++j) {
      const double i = sig(g[j]), f = sig(g[H + j]), gg = std::tanh(g[2 * H + j]), o = sig(g[3 * H + j]);
      c[j] = f * c[j] + i * gg;
      h[j] = o * std::tanh(c[j]);
      out.f32()[t * H + j] = float(h[j]);
    }
  }
  return out;
}

Tensor rows(const Tensor& x, int64_t r0, int64_t r1) {
  const int64_t C = x.dim(1);
  Tensor out = Tensor::empty(DType::F32, {r1 - r0, C});
  std::memcpy(out.data, x.f32() + r0 * C, size_t((r1 - r0) * C) * sizeof(float));
  return out;
}

// Runs x through the op in chunks of `chunk` steps with the state carried; h and c in/out.
Tensor run_chunked(const Tensor& x, const mg::LstmLayerWeights& w, int64_t chunk, Tensor& h, Tensor& c,
                   const cpu::Exec& ex) {
  const int64_t T = x.dim(0), H = w.w_hh.dim(1);
  Tensor out = Tensor::empty(DType::F32, {T, H});
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t t1 = std::min(T, t0 + chunk);
    Tensor y = cpu::lstm(rows(x, t0, t1), w, &h, &c, ex);
    std::memcpy(out.f32() + t0 * H, y.data, y.nbytes());
  }
  return out;
}

struct Sizes {
  int64_t in, H;
};

// The paths this machine can run, each with a 2-thread pool.
struct Paths {
  cpu::ThreadPool pool{2};
  std::vector<std::pair<std::string, cpu::Exec>> list() {
    std::vector<std::pair<std::string, cpu::Exec>> v;
    if (cpu::cpu_has_avx512()) v.push_back({"avx512", cpu::Exec{&pool, true, true}});
    if (cpu::cpu_has_avx2()) v.push_back({"avx2", cpu::Exec{&pool, true, false}});
    v.push_back({"portable", cpu::Exec{&pool, false, false}});
    return v;
  }
};

// The recurrent step does not depend on where a chunk starts: only the input projection (one GEMM
// per chunk) may round differently for another number of rows, so chunked and one-shot agree to
// float rounding, and bit for bit whenever the GEMM does (checked below for the chunk lengths
// that go to sgemm).
TEST(CpuLstm, ChunksWithCarriedStateEqualOneShot) {
  Paths paths;
  for (const Sizes s : {Sizes{3, 5}, Sizes{16, 16}, Sizes{24, 37}, Sizes{64, 130}, Sizes{40, 257}}) {
    const mg::LstmLayerWeights w = random_weights(s.in, s.H, 10);
    const Tensor x = random_tensor({41, s.in}, 20);
    for (auto& [name, ex] : paths.list()) {
      Tensor h1, c1;
      const Tensor whole = cpu::lstm(x, w, &h1, &c1, ex);
      for (int64_t chunk : {1, 2, 5, 8, 13, 40, 41, 100}) {
        SCOPED_TRACE(name + " In=" + std::to_string(s.in) + " H=" + std::to_string(s.H) +
                     " chunk=" + std::to_string(chunk));
        Tensor h, c;
        const Tensor parts = run_chunked(x, w, chunk, h, c, ex);
        EXPECT_LE(mgtest::rel_err(parts, whole), 1e-6);
        EXPECT_LE(mgtest::rel_err(h, h1), 1e-6);
        EXPECT_LE(mgtest::rel_err(c, c1), 1e-6);
        if (chunk > 4) {  // a GEMM, not linear's few-row GEMV, for every chunk but maybe the last
          const int64_t last = x.dim(0) % chunk;
          if (last == 0 || last > 4) {
            EXPECT_TRUE(bit_equal(parts, whole));
            EXPECT_TRUE(bit_equal(h, h1));
            EXPECT_TRUE(bit_equal(c, c1));
          }
        }
      }
    }
  }
}

// A call of several steps reads W_hh repacked for the AVX-512 kernel, a single step in place: with
// no input part (W_ih and the biases zero, so the GEMM and the GEMV both give exact zeros) a
// sequence run one step per call must give the one-shot bits, for H with a partial 16-float
// piece and a last block of an odd number of units too.
TEST(CpuLstm, PackedRecurrentWeightsGiveTheInPlaceBits) {
  Paths paths;
  for (const int64_t H : {int64_t(16), int64_t(37), int64_t(130), int64_t(257)}) {
    mg::LstmLayerWeights w = random_weights(8, H, 120);
    for (Tensor* z : {&w.w_ih, &w.b_ih, &w.b_hh}) std::memset(z->data, 0, z->nbytes());
    const Tensor x = random_tensor({19, 8}, 130);
    const Tensor h0 = random_tensor({H}, 131, 0.8f), c0 = random_tensor({H}, 132, 2.0f);
    for (auto& [name, ex] : paths.list()) {
      SCOPED_TRACE(name + " H=" + std::to_string(H));
      Tensor h1 = h0.clone(), c1 = c0.clone(), h = h0.clone(), c = c0.clone();
      const Tensor whole = cpu::lstm(x, w, &h1, &c1, ex);
      const Tensor steps = run_chunked(x, w, 1, h, c, ex);
      EXPECT_TRUE(bit_equal(steps, whole));
      EXPECT_TRUE(bit_equal(h, h1) && bit_equal(c, c1));
    }
  }
}

// The opt-in 16-bit W_hh (AVX-512 only): close to f32 (only the weights are rounded: f16 keeps 11
// significant bits, bf16 8: relative errors of ~1e-4 and ~1e-3 here), and, packed for every call, the same bits however a sequence is cut
// into calls (no input part here, as above, so that the input GEMM cannot differ).
TEST(CpuLstm, SixteenBitRecurrentWeightsStayCloseAndChunkExactly) {
  if (!cpu::cpu_has_avx512()) GTEST_SKIP() << "the 16-bit recurrent weights are an AVX-512 path";
  cpu::ThreadPool pool(2);
  for (const int64_t H : {int64_t(37), int64_t(257)}) {
    mg::LstmLayerWeights w = random_weights(8, H, 140);
    const Tensor x = random_tensor({31, 8}, 150);
    const Tensor want = cpu::lstm(x, w, cpu::Exec{&pool});
    for (Tensor* z : {&w.w_ih, &w.b_ih, &w.b_hh}) std::memset(z->data, 0, z->nbytes());
    const Tensor h0 = random_tensor({H}, 151, 0.8f), c0 = random_tensor({H}, 152, 2.0f);
    for (const auto& [name, fmt, tol] : {std::tuple{"f16", cpu::LstmWeights::F16, 5e-4},
                                         std::tuple{"bf16", cpu::LstmWeights::Bf16, 5e-3}}) {
      SCOPED_TRACE(std::string(name) + " H=" + std::to_string(H));
      cpu::Exec ex{&pool};
      ex.lstm_weights = fmt;
      mg::LstmLayerWeights wi = random_weights(8, H, 140);
      const double err = mgtest::rel_err(cpu::lstm(x, wi, ex), want);
      EXPECT_LE(err, tol);
      EXPECT_GT(err, 0.0);  // the 16-bit weights were read
      Tensor h1 = h0.clone(), c1 = c0.clone(), h = h0.clone(), c = c0.clone();
      const Tensor whole = cpu::lstm(x, w, &h1, &c1, ex);
      EXPECT_TRUE(bit_equal(run_chunked(x, w, 1, h, c, ex), whole));
      EXPECT_TRUE(bit_equal(h, h1) && bit_equal(c, c1));
    }
  }
}

TEST(CpuLstm, WeightFormatFromEnvironment) {
  const mgtest::ScopedEnv env("MUSICGEN_LSTM_WEIGHTS");
  env.unset();
  EXPECT_EQ(cpu::lstm_weights_from_env(), cpu::LstmWeights::F32);
  for (const auto& [v, want] : {std::pair{"f32", cpu::LstmWeights::F32}, std::pair{"f16", cpu::LstmWeights::F16},
                                std::pair{"bf16", cpu::LstmWeights::Bf16}}) {
    env.set(v);
    EXPECT_EQ(cpu::lstm_weights_from_env(), want) << v;
  }
  env.set("int8");
  try {
    cpu::lstm_weights_from_env();
    ADD_FAILURE() << "no mg::Error for MUSICGEN_LSTM_WEIGHTS=int8";
  } catch (const mg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("use f32"), std::string::npos) << e.what();
  }
}

// The maths, from zero and from a given state, against double precision; h/c receive the state.
TEST(CpuLstm, MatchesDoublePrecisionRecurrence) {
  Paths paths;
  for (const Sizes s : {Sizes{7, 9}, Sizes{33, 64}, Sizes{20, 150}}) {
    const mg::LstmLayerWeights w = random_weights(s.in, s.H, 30);
    const Tensor x = random_tensor({17, s.in}, 40);
    const Tensor h0 = random_tensor({s.H}, 41, 0.8f), c0 = random_tensor({s.H}, 42, 2.0f);
    for (auto& [name, ex] : paths.list()) {
      SCOPED_TRACE(name + " H=" + std::to_string(s.H));
      std::vector<double> hz, cz;
      EXPECT_LE(mgtest::rel_err(cpu::lstm(x, w, ex), naive_lstm(x, w, hz, cz)), 1e-5);
      std::vector<double> hd(h0.f32(), h0.f32() + s.H), cd(c0.f32(), c0.f32() + s.H);
      const Tensor want = naive_lstm(x, w, hd, cd);
      Tensor h = h0.clone(), c = c0.clone();
      EXPECT_LE(mgtest::rel_err(cpu::lstm(x, w, &h, &c, ex), want), 1e-5);
      EXPECT_LE(mgtest::rel_err(h.to_vector(), std::vector<float>(hd.begin(), hd.end())), 1e-5);
      EXPECT_LE(mgtest::rel_err(c.to_vector(), std::vector<float>(cd.begin(), cd.end())), 1e-5);
      // The given state was read, not overwritten in place: h0/c0 are unchanged.
      EXPECT_NE(h.data, h0.data);
    }
  }
}

// The vector paths against the portable loops (they differ in summation order only).
TEST(CpuLstm, SimdPathsAgreeWithPortable) {
  Paths paths;
  const auto list = paths.list();
  for (const Sizes s : {Sizes{5, 3}, Sizes{16, 31}, Sizes{32, 200}}) {
    const mg::LstmLayerWeights w = random_weights(s.in, s.H, 50);
    const Tensor x = random_tensor({29, s.in}, 60);
    const Tensor ref = cpu::lstm(x, w, list.back().second);
    for (const auto& [name, ex] : list)
      EXPECT_LE(mgtest::rel_err(cpu::lstm(x, w, ex), ref), 1e-5) << name << " H=" << s.H;
  }
}

// Each unit's dot products are summed the same way whichever thread owns it.
TEST(CpuLstm, ThreadCountInvariant) {
  const mg::LstmLayerWeights w = random_weights(48, 160, 70);
  const Tensor x = random_tensor({23, 48}, 80);
  const Tensor h0 = random_tensor({160}, 81), c0 = random_tensor({160}, 82);
  cpu::ThreadPool p1(1), p2(2), p3(3);
  Tensor ref;
  for (cpu::ThreadPool* p : {&p1, &p2, &p3}) {
    Tensor h = h0, c = c0;
    const Tensor y = cpu::lstm(x, w, &h, &c, cpu::Exec{p});
    if (!ref.defined()) ref = y;
    else EXPECT_TRUE(bit_equal(y, ref)) << p->size() << " threads";
  }
}

// More threads than cores: the OS pauses threads in the middle of their blocks all the time, so the
// others stand in for them (they compute the paused thread's blocks, and the late copy is dropped).
// Whichever thread commits a block, the numbers are those of one thread.
TEST(CpuLstm, PausedThreadsAreStoodInForBitExactly) {
  const mg::LstmLayerWeights w = random_weights(32, 256, 100);
  const Tensor x = random_tensor({150, 32}, 110);
  const Tensor h0 = random_tensor({256}, 111), c0 = random_tensor({256}, 112);
  cpu::ThreadPool p1(1), p8(8);
  Tensor h1 = h0, c1 = c0;
  const Tensor ref = cpu::lstm(x, w, &h1, &c1, cpu::Exec{&p1});
  for (int rep = 0; rep < 3; ++rep) {
    Tensor h = h0, c = c0;
    const Tensor y = cpu::lstm(x, w, &h, &c, cpu::Exec{&p8});
    EXPECT_TRUE(bit_equal(y, ref)) << "run " << rep;
    EXPECT_TRUE(bit_equal(h, h1) && bit_equal(c, c1)) << "run " << rep;
  }
}

TEST(CpuLstm, EmptySequenceAndStateChecks) {
  const mg::LstmLayerWeights w = random_weights(4, 8, 90);
  Tensor h = random_tensor({8}, 91), c = random_tensor({8}, 92);
  const Tensor h_before = h, c_before = c;
  const Tensor y = cpu::lstm(Tensor::empty(DType::F32, {0, 4}), w, &h, &c);
  EXPECT_EQ(y.shape, (mg::Shape{0, 8}));
  EXPECT_EQ(h.data, h_before.data);  // T = 0: the state is left as it was
  EXPECT_EQ(c.data, c_before.data);
  // The state's size is the public op's contract (kernels/op_checks.h): checked through a backend.
  auto be = mg::make_cpu_backend(1);
  Tensor bad = random_tensor({7}, 93);
  EXPECT_THROW(be->lstm(random_tensor({3, 4}, 94), w, &bad, nullptr), mg::Error);
  try {
    be->lstm(random_tensor({3, 4}, 94), w, nullptr, &bad);
    ADD_FAILURE() << "no mg::Error for a [7] cell state with H = 8";
  } catch (const mg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lstm c"), std::string::npos) << e.what();
  }
  // The last output row is the returned h.
  Tensor h2, c2;
  const Tensor y2 = cpu::lstm(random_tensor({6, 4}, 95), w, &h2, &c2);
  EXPECT_EQ(std::memcmp(h2.data, y2.f32() + 5 * 8, 8 * sizeof(float)), 0);
}

}  // namespace
