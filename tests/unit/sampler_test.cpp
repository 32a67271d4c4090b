// Backend::sample_tokens and its CPU reference (kernels/cpu/sample.cpp): guidance, greedy, top-k,
// top-p and the counter-based random numbers.
// Parity traps pinned here:
//  - greedy ties take the FIRST maximum (torch.argmax does; a different tie rule changes tokens);
//  - top-p drops a token only when the mass BEFORE it already exceeds p (audiocraft's
//    sample_top_p: probs_sum - probs_sort > p), so the token that crosses p is kept;
//  - top-k keeps every probability >= the k-th largest (ties at the boundary are kept);
//  - CFG is uncond + (cond - uncond) * scale in f32, in that order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <cstring>
#include <map>
#include <vector>

#include "kernels/cpu/sample.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::SamplerParams;
using mg::Tensor;

Tensor logits_of(const std::vector<float>& v, int R = 1, int K = 1) {
  return Tensor::from_vector(v, {R, K, int64_t(v.size()) / (R * K)});
}

// The token the CPU backend's sample_tokens picks from logits[n] (one sequence, no guidance) for
// `codebook` with the draw of (seed, step, codebook): the logits repeated for codebooks 0..codebook.
int sample_one(mg::Backend& be, const std::vector<float>& logits, const SamplerParams& p, uint64_t seed,
               int64_t step, int codebook) {
  std::vector<float> all;
  for (int k = 0; k <= codebook; ++k) all.insert(all.end(), logits.begin(), logits.end());
  return be.sample_tokens(logits_of(all, 1, codebook + 1), false, 1.0f, p, {seed}, step).ptr<int32_t>()[codebook];
}

SamplerParams params(int top_k, float top_p, float temperature = 1.0f, bool greedy = false) {
  SamplerParams p;
  p.top_k = top_k;
  p.top_p = top_p;
  p.temperature = temperature;
  p.greedy = greedy;
  return p;
}

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  Tensor l = logits_of({0.5f, 2.0f, -1.0f, 2.0f, 2.0f});
  auto be = mg::make_cpu_backend(1);
  for (uint64_t seed : {0ull, 7ull, 12345ull}) {
    Tensor ids = be->sample_tokens(l, false, 1.0f, params(250, 0.0f, 1.0f, true), {seed}, 3);
    EXPECT_EQ(ids.ptr<int32_t>()[0], 1);
    // temperature <= 0 means greedy too
    EXPECT_EQ(be->sample_tokens(l, false, 1.0f, params(250, 0.0f, 0.0f), {seed}, 3).ptr<int32_t>()[0], 1);
  }
}

TEST(Sampler, TopKOneIsGreedy) {
  Tensor l = mgtest::random_tensor({2, 4, 300}, 11);
  auto be = mg::make_cpu_backend(1);
  for (int step = 0; step < 20; ++step) {
    Tensor a = be->sample_tokens(l, false, 1.0f, params(1, 0.0f), {5, 6}, step);
    Tensor g = be->sample_tokens(l, false, 1.0f, params(0, 0.0f, 1.0f, true), {5, 6}, step);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(a.ptr<int32_t>()[i], g.ptr<int32_t>()[i]);
  }
}

TEST(Sampler, CfgMixesRowsInTheReferenceOrder) {
  // R = 2B: rows 0..B-1 conditional, B..2B-1 null. Greedy on the guided logits.
  std::vector<float> v = {1, 0, 0, 0,   0, 0, 1, 0,    // cond s0, cond s1
                          0, 1, 0, 0,   0, 0, 0, 0.9f};  // null s0, null s1
  auto be = mg::make_cpu_backend(1);
  Tensor guided;
  Tensor ids = be->sample_tokens(logits_of(v, 4, 1), true, 3.0f, params(0, 0.0f, 1.0f, true), {1, 2}, 0, &guided);
  ASSERT_EQ(ids.shape, (mg::Shape{2, 1}));
  EXPECT_EQ(ids.ptr<int32_t>()[0], 0);  // 0 + 3*(1-0) = 3 beats 1 + 3*(0-1) = -2
  EXPECT_EQ(ids.ptr<int32_t>()[1], 2);  // 3 beats 0.9 - 2.7
  ASSERT_EQ(guided.shape, (mg::Shape{2, 1, 4}));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(guided.f32()[i], mg::cfg_value(v[i], v[i + 8], 3.0f));
  EXPECT_FLOAT_EQ(guided.f32()[0], 3.0f);
  EXPECT_FLOAT_EQ(guided.f32()[1], -2.0f);
}

TEST(Sampler, TopPKeepsTheTokenThatCrossesP) {
  // probs 0.5, 0.3, 0.15, 0.05 (logits = log p). top_p = 0.6: mass before token 1 is 0.5 <= 0.6
  // (kept), before token 2 is 0.8 > 0.6 (dropped): only tokens 0 and 1 can come out, ~5:3.
  std::vector<float> v = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  auto be = mg::make_cpu_backend(1);
  std::map<int, int> count;
  const int n = 4000;
  for (int i = 0; i < n; ++i) ++count[sample_one(*be, v, params(0, 0.6f), 42, i, 0)];
  EXPECT_EQ(count[2] + count[3], 0);
  EXPECT_NEAR(double(count[0]) / n, 0.5 / 0.8, 0.03);
  // top_p = 0.45: the mass before token 1 (0.5) already exceeds p: token 0 alone.
  count.clear();
  for (int i = 0; i < n; ++i) ++count[sample_one(*be, v, params(0, 0.45f), 42, i, 0)];
  EXPECT_EQ(count[0], n);
}

TEST(Sampler, TopKKeepsTiesAtTheBoundary) {
  std::vector<float> v = {3.0f, 1.0f, 1.0f, 0.0f, -5.0f};
  auto be = mg::make_cpu_backend(1);
  std::map<int, int> count;
  for (int i = 0; i < 3000; ++i) ++count[sample_one(*be, v, params(2, 0.0f), 9, i, 1)];
  EXPECT_EQ(count[3] + count[4], 0);
  EXPECT_GT(count[1], 0);
  EXPECT_GT(count[2], 0);  // tied with the 2nd largest: kept
}

TEST(Sampler, DistributionMatchesSoftmaxWithTemperature) {
  std::vector<float> v = {0.0f, 1.0f, 2.0f, -1.0f, 0.5f, 1.5f};
  const float temp = 0.7f;
  std::vector<double> want(v.size());
  double z = 0;
  for (size_t i = 0; i < v.size(); ++i) z += want[i] = std::exp(v[i] / temp);
  const int n = 20000;
  auto be = mg::make_cpu_backend(1);
  std::vector<int> count(v.size());
  for (int i = 0; i < n; ++i) ++count[size_t(sample_one(*be, v, params(0, 0.0f, temp), 3, i, 2))];
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(double(count[i]) / n, want[i] / z, 0.015) << "token " << i;
}

TEST(Sampler, FixedSeedIsReproducibleAndSeedsDiffer) {
  Tensor l = mgtest::random_tensor({4, 4, 2048}, 5, 2.0f);
  auto be = mg::make_cpu_backend(2);
  const SamplerParams p = params(250, 0.0f);
  int differ_seed = 0, differ_step = 0;
  for (int step = 0; step < 10; ++step) {
    Tensor a = be->sample_tokens(l, true, 3.0f, p, {100, 101}, step);
    Tensor b = be->sample_tokens(l, true, 3.0f, p, {100, 101}, step);
    Tensor c = be->sample_tokens(l, true, 3.0f, p, {200, 201}, step);
    Tensor d = be->sample_tokens(l, true, 3.0f, p, {100, 101}, step + 1000);
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(a.ptr<int32_t>()[i], b.ptr<int32_t>()[i]);
      differ_seed += a.ptr<int32_t>()[i] != c.ptr<int32_t>()[i];
      differ_step += a.ptr<int32_t>()[i] != d.ptr<int32_t>()[i];
    }
  }
  EXPECT_GT(differ_seed, 40);
  EXPECT_GT(differ_step, 40);
}

// The CPU backend draws the (sequence, codebook) pairs side by side on its pool: the same tokens
// and guided logits as the serial host reference, for top-k, top-p and greedy, with and without CFG.
TEST(Sampler, PooledDrawsMatchTheHostReference) {
  Tensor l = mgtest::random_tensor({6, 4, 2048}, 9, 2.0f);
  auto be = mg::make_cpu_backend(2);
  for (const SamplerParams& p : {params(250, 0.0f), params(0, 0.9f), params(0, 0.0f, 1.0f, true)})
    for (bool cfg : {true, false})
      for (int step = 0; step < 4; ++step) {
        const std::vector<uint64_t> seeds = cfg ? std::vector<uint64_t>{7, 8, 9} : std::vector<uint64_t>{7, 8, 9, 10, 11, 12};
        Tensor g_pool, g_ref;
        Tensor a = be->sample_tokens(l, cfg, 3.0f, p, seeds, step, &g_pool);
        Tensor b = mg::cpu::sample_tokens(l, cfg, 3.0f, p, seeds, step, &g_ref);
        ASSERT_EQ(a.numel(), b.numel());
        for (int64_t i = 0; i < a.numel(); ++i)
          EXPECT_EQ(a.ptr<int32_t>()[i], b.ptr<int32_t>()[i]) << "draw " << i << " cfg " << cfg << " step " << step;
        ASSERT_EQ(g_pool.nbytes(), g_ref.nbytes());
        EXPECT_EQ(std::memcmp(g_pool.data, g_ref.data, g_ref.nbytes()), 0);
      }
}

TEST(Sampler, CounterBasedDrawsDependOnlyOnTheirKey) {
  // The draw for (seed, step, codebook) must not depend on other draws: that is what lets a
  // device sample every (sequence, codebook) in parallel and match the CPU.
  const double u = mg::sample_uniform(77, 12, 3);
  (void)mg::sample_uniform(77, 11, 3);
  EXPECT_EQ(mg::sample_uniform(77, 12, 3), u);
  EXPECT_GE(u, 0.0);
  EXPECT_LT(u, 1.0);
  double mean = 0;
  for (int i = 0; i < 10000; ++i) mean += mg::sample_uniform(1, i, 0);
  EXPECT_NEAR(mean / 10000, 0.5, 0.01);
}

TEST(Sampler, RejectsBadShapes) {
  auto be = mg::make_cpu_backend(1);
  Tensor l = mgtest::random_tensor({3, 4, 16}, 1);
  EXPECT_THROW(be->sample_tokens(l, true, 3.0f, params(5, 0.0f), {1, 2}, 0), mg::Error);  // CFG needs 2B rows
  EXPECT_THROW(be->sample_tokens(l, false, 3.0f, params(5, 0.0f), {1, 2}, 0), mg::Error);
}

}  // namespace

// Why: sample_one takes the max of the logits before dividing by the temperature, and at a
// temperature of 1 divides by nothing. Both rest on exact arithmetic (a correctly rounded division
// by T > 0 keeps the order; x / 1 is x), so every draw must stay the one of the plain form below,
// the form the CUDA kernel mirrors: the same probabilities to the last bit, hence the same tokens.
namespace {

std::vector<double> plain_probs(const std::vector<float>& logits, float temperature) {
  std::vector<double> probs(logits.size());
  double mx = -INFINITY;
  for (float l : logits) mx = std::max(mx, double(l) / temperature);
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += probs[i] = std::exp(double(logits[i]) / temperature - mx);
  for (double& q : probs) q /= sum;
  return probs;
}

// The inverse-CDF walk of sample_one over probabilities already filtered (none here: top-k off).
int plain_walk(const std::vector<double>& probs, double u) {
  double total = 0;
  for (double q : probs) total += q;
  const double r = u * total;
  double acc = 0;
  int last = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0) continue;
    last = int(i);
    acc += probs[i];
    if (r < acc) return int(i);
  }
  return last;
}

}  // namespace

TEST(Sampler, TheDivisionsSkippedGiveThePlainDraws) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (float temperature : {1.0f, 0.7f, 1.3f, 3.0f})
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<float> logits(2048);
      for (float& l : logits) l = normal(rng);
      if (trial % 4 == 1) logits[7] = -INFINITY;  // a masked token
      const std::vector<double> probs = plain_probs(logits, temperature);
      for (int d = 0; d < 16; ++d) {
        const double u = mg::sample_uniform(uint64_t(trial), d, 0);
        EXPECT_EQ(mg::cpu::sample_one(logits.data(), int64_t(logits.size()), params(0, 0.0f, temperature), u),
                  plain_walk(probs, u))
            << "temperature " << temperature << " trial " << trial << " draw " << d;
      }
    }
}
