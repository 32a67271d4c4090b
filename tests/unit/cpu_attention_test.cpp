// The CPU attention kernel (kernels/cpu/attention.cpp) against the host default of
// kernels/backend_fallbacks.cpp, which the MusicGen/T5 parity goldens were first passed with:
// decode steps (1 query over a long causal cache), prefill (S causal queries, the last S positions),
// cross-attention (non-causal, T < rows held), head widths that do and do not fit the AVX2 path,
// thread-count invariance, and the input checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "cpu_paths.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::Tensor;
using mgtest::random_tensor;
namespace cpu = mg::cpu;

struct Case {
  int64_t S, T, rows, heads, dh;
  bool causal;
};

// The host reference of Backend::attention (kernels/backend_fallbacks.cpp).
Tensor fallback(mg::Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, const Case& c, float scale) {
  return mg::attention_on_host(be, q, k, v, c.T, int(c.heads), scale, c.causal);
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape == b.shape && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

class CpuAttention : public ::testing::TestWithParam<Case> {};

TEST_P(CpuAttention, MatchesHostFallback) {
  const Case c = GetParam();
  const int64_t D = c.heads * c.dh;
  // Scores of a few units (like a trained model's), so the softmax is neither flat nor one-hot.
  Tensor q = random_tensor({c.S, D}, 1, 2.0f), k = random_tensor({c.rows, D}, 2, 2.0f);
  Tensor v = random_tensor({c.rows, D}, 3);
  const float scale = 1.0f / std::sqrt(float(c.dh));
  auto be = mg::make_cpu_backend(1);
  Tensor ref = fallback(*be, q, k, v, c, scale);

  cpu::ThreadPool pool(2);
  cpu::Exec simd{&pool, true}, portable{&pool, false};
  Tensor fast = cpu::attention(q, k, v, c.T, int(c.heads), scale, c.causal, simd);
  EXPECT_LT(mgtest::rel_err(fast, ref), 1e-6);
  EXPECT_LT(mgtest::max_abs_diff(fast.to_vector(), ref.to_vector()), 1e-5);
  // The portable path is the fallback's loops: the same bits.
  EXPECT_TRUE(bit_equal(cpu::attention(q, k, v, c.T, int(c.heads), scale, c.causal, portable), ref));
  // The backend routes Backend::attention here.
  EXPECT_TRUE(bit_equal(be->attention(q, k, v, c.T, int(c.heads), scale, c.causal),
                        cpu::attention(q, k, v, c.T, int(c.heads), scale, c.causal, cpu::Exec{nullptr, true})));
}

TEST_P(CpuAttention, ThreadCountDoesNotChangeBits) {
  const Case c = GetParam();
  const int64_t D = c.heads * c.dh;
  Tensor q = random_tensor({c.S, D}, 4), k = random_tensor({c.rows, D}, 5), v = random_tensor({c.rows, D}, 6);
  cpu::ThreadPool one(1), three(3);
  Tensor a = cpu::attention(q, k, v, c.T, int(c.heads), 0.125f, c.causal, cpu::Exec{&one, true});
  Tensor b = cpu::attention(q, k, v, c.T, int(c.heads), 0.125f, c.causal, cpu::Exec{&three, true});
  EXPECT_TRUE(bit_equal(a, b));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CpuAttention,
    ::testing::Values(Case{1, 1, 1, 4, 64, true},            // the first decode step: one key
                      Case{1, 503, 503, 16, 64, true},       // musicgen-small's last step of 10 s
                      Case{1, 37, 1500, 16, 64, true},       // a cache larger than what is filled
                      Case{12, 40, 64, 4, 64, true},         // prefill: 12 queries at positions 28..39
                      Case{1, 9, 9, 16, 64, false},          // cross-attention over 9 text tokens
                      Case{5, 7, 7, 12, 64, false},          // T5-like: all queries over all keys
                      Case{3, 20, 20, 2, 128, true},         // dh above the register block
                      Case{1, 200, 256, 20, 32, true},       // split-key path: 4 key blocks, 2 head groups
                      Case{4, 130, 130, 24, 16, true},       // 3 blocks, the last of 2 keys; 24 heads
                      Case{2, 65, 65, 16, 64, false},        // a block of one key
                      Case{2, 6, 6, 4, 24, true},            // dh 24: two 16-lane steps do not fit
                      Case{2, 6, 6, 3, 6, false}),           // dh not a multiple of 8: portable path
    [](const ::testing::TestParamInfo<Case>& i) {
      const Case& c = i.param;
      return "S" + std::to_string(c.S) + "_T" + std::to_string(c.T) + "_H" + std::to_string(c.heads) + "_dh" +
             std::to_string(c.dh) + (c.causal ? "_causal" : "_full");
    });

// Scores spread over hundreds of units: most weights underflow (the vectorised exp's clamp at -87.3
// gives exactly 0 there, std::exp a denormal or 0) and the max dominates; still the fallback's result
// (to 1e-5: scores of ~100 carry ~1e-5 of summation-order rounding into the exponent).
TEST(CpuAttentionChecks, PeakedScoresMatchFallback) {
  Tensor q = random_tensor({3, 256}, 7, 30.0f), k = random_tensor({300, 256}, 8, 3.0f);
  Tensor v = random_tensor({300, 256}, 9);
  auto be = mg::make_cpu_backend(1);
  Tensor ref = mg::attention_on_host(*be, q, k, v, 300, 4, 0.125f, true);
  Tensor fast = cpu::attention(q, k, v, 300, 4, 0.125f, true, cpu::Exec{nullptr, true});
  EXPECT_LT(mgtest::rel_err(fast, ref), 1e-5);
}

TEST(CpuAttentionChecks, BadInputsThrowNamingTheOp) {
  Tensor q = random_tensor({2, 32}, 1), k = random_tensor({8, 32}, 2), v = random_tensor({8, 32}, 3);
  // The contract is the public op's (kernels/op_checks.h): checked through a backend.
  auto be = mg::make_cpu_backend(1);
  EXPECT_THROW(be->attention(q, k, v, 9, 4, 1.0f, true), mg::Error);          // T beyond the rows held
  EXPECT_THROW(be->attention(q, k, v, 1, 4, 1.0f, true), mg::Error);          // fewer keys than causal queries
  EXPECT_THROW(be->attention(q, k, v, 8, 5, 1.0f, true), mg::Error);          // width not divisible by heads
  EXPECT_THROW(be->attention(q, random_tensor({8, 16}, 4), v, 8, 4, 1.0f, false), mg::Error);
  try {
    be->attention(q, k, v, 0, 4, 1.0f, false);
    ADD_FAILURE() << "T = 0 accepted";
  } catch (const mg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("attention"), std::string::npos) << e.what();
  }
}

TEST(CpuAttentionChecks, WideQueryRowsReadTheirFirstColumns) {
  // The decode step passes the fused q|k|v output as q: the queries are the first H*dh columns of
  // each row, with the same bits as the narrowed copy, on every path and through attention_rows.
  auto be = mg::make_cpu_backend(2);
  const int64_t S = 3, T = 20, D = 64, H = 4;
  Tensor qkv = random_tensor({S, 3 * D}, 21), k = random_tensor({T, D}, 22), v = random_tensor({T, D}, 23);
  Tensor q = be->narrow_last(qkv, 0, D);
  for (bool simd : {true, false}) {
    mg::cpu::Exec ex;
    ex.allow_simd = simd;
    EXPECT_TRUE(bit_equal(cpu::attention(qkv, k, v, T, int(H), 0.2f, true, ex),
                          cpu::attention(q, k, v, T, int(H), 0.2f, true, ex)));
  }
  EXPECT_TRUE(bit_equal(mg::attention_on_host(*be, qkv, k, v, T, int(H), 0.2f, false),
                        mg::attention_on_host(*be, q, k, v, T, int(H), 0.2f, false)));
  Tensor rows = be->attention_rows(qkv.reshape({1, S, 3 * D}), k.reshape({1, T, D}), v.reshape({1, T, D}), T, int(H),
                                   0.2f, true);
  EXPECT_EQ(mg::shape_str(rows.shape), "[1, 3, 64]");
  EXPECT_EQ(rows.to_vector(), cpu::attention(q, k, v, T, int(H), 0.2f, true).to_vector());
  EXPECT_THROW(be->attention(random_tensor({S, D / 2}, 24), k, v, T, int(H), 0.2f, true), mg::Error);  // narrower
}

TEST(CpuAttentionChecks, HalfKvCacheEqualsF32OnTheRoundedValues) {
  // A half KV cache (half decoder weights) is read through an exact f16 -> f32 conversion, so
  // attention over it must give the bits of attention over the same values held in f32, on the
  // AVX2 path and the portable one, and write_kv must round exactly like a cast.
  auto be = mg::make_cpu_backend(2);
  const int64_t T = 37, D = 128, H = 2;
  Tensor q = random_tensor({3, D}, 11), k = random_tensor({T, D}, 12, 3.0f), v = random_tensor({T, D}, 13, 3.0f);
  Tensor k16 = be->cast(k, DType::F16), v16 = be->cast(v, DType::F16);
  Tensor kr = be->cast(k16, DType::F32), vr = be->cast(v16, DType::F32);
  for (bool simd : {true, false}) {
    mg::cpu::Exec ex;
    ex.allow_simd = simd;
    EXPECT_EQ(cpu::attention(q, k16, v16, T, int(H), 0.1f, true, ex).to_vector(),
              cpu::attention(q, kr, vr, T, int(H), 0.1f, true, ex).to_vector())
        << (simd ? "simd" : "portable");
  }
  EXPECT_THROW(be->attention(q, k16, vr, T, int(H), 0.1f, true), mg::Error);  // mixed k/v dtypes

  Tensor src = random_tensor({2 * 3, 3 * D}, 14, 5.0f);  // 2 rows x 3 positions of q|k|v
  Tensor cache = be->cast(Tensor::zeros(DType::F32, {2, 8, D}), DType::F16);
  be->write_kv(cache, 4, src, D);
  Tensor back = be->cast(cache, DType::F32), want_rows = be->cast(be->cast(src, DType::F16), DType::F32);
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t s = 0; s < 3; ++s)
      for (int64_t d = 0; d < D; ++d)
        ASSERT_EQ(back.f32()[(r * 8 + 4 + s) * D + d], want_rows.f32()[(r * 3 + s) * 3 * D + D + d]);
}

TEST(CpuAttentionRows, EachRowHasTheBitsOfThatRowAloneOnEveryPath) {
  // attention_rows runs all rows in one call; a row must not see how many share it (the server's
  // batched step and the CFG rows rely on it), for f32 and f16 caches, decode and prefill shapes,
  // several key blocks and any thread count.
  const int64_t R = 3, cap = 200, H = 16, dh = 64, D = H * dh;
  cpu::ThreadPool pool(2);
  for (auto [name, ex] : mgtest::cpu_kernel_paths()) {
    ex.pool = &pool;
    for (DType dt : {DType::F32, DType::F16})
      for (int64_t S : {1, 3}) {
        Tensor q = random_tensor({R, S, 3 * D}, 31, 2.0f);
        Tensor k = cpu::cast(random_tensor({R, cap, D}, 32, 2.0f), dt);
        Tensor v = cpu::cast(random_tensor({R, cap, D}, 33), dt);
        const int64_t T = 150;
        Tensor got = cpu::attention_rows(q, k, v, T, int(H), 0.125f, true, ex);
        const cpu::Exec serial_ex{nullptr, ex.allow_simd, ex.allow_avx512};
        Tensor serial = cpu::attention_rows(q, k, v, T, int(H), 0.125f, true, serial_ex);
        EXPECT_TRUE(bit_equal(got, serial)) << name;
        for (int64_t r = 0; r < R; ++r) {
          Tensor alone = cpu::attention(q.slice0(r, 1).reshape({S, 3 * D}), k.slice0(r, 1).reshape({cap, D}),
                                        v.slice0(r, 1).reshape({cap, D}), T, int(H), 0.125f, true, ex);
          EXPECT_EQ(std::memcmp(got.f32() + r * S * D, alone.data, alone.nbytes()), 0)
              << name << " " << mg::dtype_name(dt) << " S " << S << " row " << r;
        }
      }
  }
}

TEST(CpuAttentionRows, AQueryHasTheSameBitsInPrefillAndDecode) {
  // The split-key path cuts keys at fixed multiples of its block, whether a call holds one query
  // (a decode step), a few (all (query, block) pairs share the pool) or hundreds (prefill: one
  // query's blocks per item): a query at a given position gets the same bits in each.
  if (!cpu::cpu_has_avx512()) GTEST_SKIP() << "no AVX-512: the split-key path does not run";
  const int64_t T = 600, H = 16, dh = 64, D = H * dh, S = 300;
  Tensor q = random_tensor({S, D}, 41, 2.0f), k = random_tensor({T, D}, 42, 2.0f), v = random_tensor({T, D}, 43);
  cpu::ThreadPool pool(2);
  cpu::Exec ex{&pool, true};
  Tensor all = cpu::attention(q, k, v, T, int(H), 0.125f, true, ex);
  for (int64_t i : {int64_t(0), int64_t(1), int64_t(137), S - 1}) {
    const int64_t visible = T - S + i + 1;
    Tensor one = cpu::attention(q.slice0(i, 1), k, v, visible, int(H), 0.125f, true, ex);
    EXPECT_EQ(std::memcmp(all.f32() + i * D, one.data, one.nbytes()), 0) << "query " << i;
  }
  auto be = mg::make_cpu_backend(1);
  EXPECT_LT(mgtest::rel_err(all, mg::attention_on_host(*be, q, k, v, T, int(H), 0.125f, true)), 1e-6);
}

TEST(CpuAttentionRows, PathsAgree) {
  // The paths differ only by summation order and the vectorised exp.
  const int64_t R = 2, T = 300, H = 16, dh = 64, D = H * dh;
  Tensor q = random_tensor({R, 1, 3 * D}, 51, 2.0f);
  Tensor k = cpu::cast(random_tensor({R, T, D}, 52, 2.0f), DType::F16);
  Tensor v = cpu::cast(random_tensor({R, T, D}, 53), DType::F16);
  Tensor ref;
  for (const auto& [name, ex] : mgtest::cpu_kernel_paths()) {
    Tensor got = cpu::attention_rows(q, k, v, T, int(H), 0.125f, true, ex);
    if (!ref.defined()) ref = got;
    EXPECT_LT(mgtest::rel_err(got, ref), 1e-6) << name;
  }
}

}  // namespace
