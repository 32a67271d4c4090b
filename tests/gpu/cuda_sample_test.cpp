// The CUDA sample_tokens, attention_rows and write_kv against the CPU reference.
// Parity trap pinned here: the same seed and logits must give the SAME tokens on the CPU and the
// GPU (the counter-based random numbers and the mirrored operation order of kernels/cuda/sample.cu
// exist for that); greedy ties take the first index on both. Skips without a GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/cpu/sample.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::SamplerParams;
using mg::Tensor;

#define MG_SKIP_WITHOUT_CUDA()                                                                  \
  do {                                                                                          \
    if (!mg::cuda_available()) GTEST_SKIP() << "no CUDA device: the CUDA sampling checks need a GPU"; \
  } while (0)

SamplerParams params(int top_k, float top_p, float temperature, bool greedy) {
  SamplerParams p;
  p.top_k = top_k;
  p.top_p = top_p;
  p.temperature = temperature;
  p.greedy = greedy;
  return p;
}

// A negative top_k is refused on the GPU as on the CPU (it used to sample the whole vocabulary
// there): the sampler parameters belong to the shared contract, for sample_tokens and its
// recorded variant alike.
TEST(CudaSample, NegativeTopKIsRefusedAsOnTheCpu) {
  MG_SKIP_WITHOUT_CUDA();
  auto cpu = mg::make_cpu_backend(1);
  auto gpu = mg::make_cuda_backend();
  const Tensor logits = mgtest::random_tensor({1, 4, 32}, 5);
  const SamplerParams p = params(-1, 0.0f, 1.0f, false);
  EXPECT_THROW(cpu->sample_tokens(logits, false, 1.0f, p, {7}, 0), mg::Error);
  EXPECT_THROW(gpu->sample_tokens(gpu->upload(logits), false, 1.0f, p, {7}, 0), mg::Error);
  Tensor seeds = Tensor::zeros(DType::I64, {1}), step = Tensor::zeros(DType::I32, {1});
  EXPECT_THROW(gpu->sample_tokens_at(gpu->upload(logits), false, 1.0f, p, gpu->upload(seeds), gpu->upload(step)),
               mg::Error);
}

TEST(CudaSample, SameTokensAsTheCpuForTheSameSeed) {
  MG_SKIP_WITHOUT_CUDA();
  auto cpu = mg::make_cpu_backend(2);
  auto gpu = mg::make_cuda_backend();
  struct Case {
    const char* name;
    SamplerParams p;
  };
  const std::vector<Case> cases = {{"greedy", params(250, 0.0f, 1.0f, true)},
                                   {"top_k_250", params(250, 0.0f, 1.0f, false)},
                                   {"top_k_1", params(1, 0.0f, 1.0f, false)},
                                   {"top_p_0.9_t0.8", params(0, 0.9f, 0.8f, false)},
                                   {"full_t1.3", params(0, 0.0f, 1.3f, false)}};
  for (int V : {2048, 300}) {
    Tensor logits = mgtest::random_tensor({4, 4, V}, 17 + V, 3.0f);
    Tensor dl = gpu->upload(logits);
    for (const Case& c : cases)
      for (bool cfg : {true, false}) {
        const std::vector<uint64_t> seeds = cfg ? std::vector<uint64_t>{3, 4} : std::vector<uint64_t>{3, 4, 5, 6};
        int mismatches = 0;
        for (int step = 0; step < 25; ++step) {
          Tensor gc, gg;
          Tensor want = cpu->sample_tokens(logits, cfg, 3.0f, c.p, seeds, step, &gc);
          Tensor got = gpu->download(gpu->sample_tokens(dl, cfg, 3.0f, c.p, seeds, step, &gg));
          for (int64_t i = 0; i < want.numel(); ++i) mismatches += want.ptr<int32_t>()[i] != got.ptr<int32_t>()[i];
          if (step == 0) EXPECT_EQ(mgtest::rel_err(gpu->download(gg), gc), 0.0) << c.name << " guided logits";
        }
        EXPECT_EQ(mismatches, 0) << c.name << " V=" << V << (cfg ? " cfg" : "");
      }
  }
}

TEST(CudaSample, GreedyTiesTakeTheFirstIndex) {
  MG_SKIP_WITHOUT_CUDA();
  auto gpu = mg::make_cuda_backend();
  std::vector<float> v(2048, 0.0f);
  v[700] = v[1900] = v[5] + 1.0f;  // tie between 700 and 1900
  Tensor ids = gpu->download(gpu->sample_tokens(gpu->upload(Tensor::from_vector(v, {1, 1, 2048})), false, 1.0f,
                                                params(0, 0.0f, 1.0f, true), {1}, 0));
  EXPECT_EQ(ids.ptr<int32_t>()[0], 700);
}

TEST(CudaSample, AttentionRowsAndWriteKvMatchTheCpu) {
  MG_SKIP_WITHOUT_CUDA();
  auto cpu = mg::make_cpu_backend(2);
  auto gpu = mg::make_cuda_backend();
  const int64_t R = 3, cap = 300, D = 64, H = 4;
  for (int64_t S : {1, 5})
    for (int64_t T : {7, 130, 300}) {
      if (T < S) continue;
      Tensor q = mgtest::random_tensor({R, S, D}, 1), k = mgtest::random_tensor({R, cap, D}, 2),
             v = mgtest::random_tensor({R, cap, D}, 3);
      Tensor want = cpu->attention_rows(q, k, v, T, int(H), 0.25f, true);
      Tensor got = gpu->download(gpu->attention_rows(gpu->upload(q), gpu->upload(k), gpu->upload(v), T, int(H), 0.25f, true));
      EXPECT_LT(mgtest::rel_err(got, want), 1e-5) << "S=" << S << " T=" << T;
    }
  Tensor src = mgtest::random_tensor({R * 2, 3 * D}, 9);
  Tensor hc = mgtest::random_tensor({R, cap, D}, 8);
  Tensor dc = gpu->upload(hc);
  cpu->write_kv(hc, 17, src, D);
  gpu->write_kv(dc, 17, gpu->upload(src), D);
  EXPECT_EQ(mgtest::rel_err(gpu->download(dc), hc), 0.0);
}

}  // namespace
