// The shared op contract (kernels/op_checks.h) on the CPU backend: every op refuses a bad shape or
// dtype, and a tensor on another device, with a message that names the op. The same checks run
// for every backend, so the CUDA backend refuses exactly these inputs too.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/op_checks.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::Tensor;
using mgtest::random_tensor;

// Expects fn to throw an mg::Error whose message contains `op`.
template <typename F>
void expect_refused(F fn, const std::string& op) {
  try {
    fn();
    ADD_FAILURE() << op << ": no mg::Error thrown";
  } catch (const mg::Error& e) {
    EXPECT_NE(std::string(e.what()).find(op), std::string::npos) << e.what();
  }
}

Tensor ids(const std::vector<int32_t>& v, const mg::Shape& s) {
  Tensor t = Tensor::empty(DType::I32, s);
  for (size_t i = 0; i < v.size(); ++i) t.ptr<int32_t>()[i] = v[i];
  return t;
}

class OpChecks : public ::testing::Test {
 protected:
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(1);
  Tensor x = random_tensor({4, 8}, 1);
  Tensor i32 = ids({1, 2, 3, 4}, {4});
};

TEST_F(OpChecks, DenseAlgebra) {
  expect_refused([&] { be->linear(x, random_tensor({5, 7}, 2), nullptr); }, "linear");
  expect_refused([&] { be->linear(i32, random_tensor({5, 4}, 2), nullptr); }, "linear");
  Tensor r = random_tensor({3, 5}, 3);
  mg::LinearFusion f;
  f.residual = &r;
  expect_refused([&] { be->linear_fused(x, random_tensor({5, 8}, 2), nullptr, f); }, "linear");
  expect_refused([&] { be->matmul(x, random_tensor({7, 3}, 2), false); }, "matmul");
  expect_refused([&] { be->matmul(random_tensor({8}, 2), x, false); }, "matmul");
}

TEST_F(OpChecks, Elementwise) {
  expect_refused([&] { be->add(x, random_tensor({4}, 2)); }, "add");
  expect_refused([&] { be->mul(x, i32); }, "mul");
  expect_refused([&] { be->scale(i32, 2.0f); }, "scale");
  expect_refused([&] { be->elu(i32); }, "elu");
  expect_refused([&] { be->gelu(i32); }, "gelu");
  expect_refused([&] { be->relu(i32); }, "relu");
  expect_refused([&] { be->cast(x, DType::I32); }, "cast");
}

TEST_F(OpChecks, NormsAndSoftmax) {
  expect_refused([&] { be->layer_norm(x, random_tensor({7}, 2), nullptr, 1e-5f); }, "layer_norm");
  expect_refused([&] { be->rms_norm(x, random_tensor({9}, 2), 1e-6f); }, "rms_norm");
  Tensor g6 = random_tensor({6}, 4);
  expect_refused([&] { be->group_norm(random_tensor({1, 6, 5}, 2), 4, g6, g6, 1e-5f); }, "group_norm");
  expect_refused([&] { be->softmax(i32); }, "softmax");
}

TEST_F(OpChecks, ConvolutionsAndLayout) {
  Tensor x3 = random_tensor({1, 4, 16}, 5);
  expect_refused([&] { be->conv1d(x3, random_tensor({2, 3, 3}, 2), nullptr, 1, 1); }, "conv1d");
  expect_refused([&] { be->conv1d(x3, random_tensor({2, 4, 3}, 2), nullptr, 0, 1); }, "conv1d");
  expect_refused([&] { be->conv_transpose1d(x3, random_tensor({3, 2, 4}, 2), nullptr, 2); }, "conv_transpose1d");
  expect_refused([&] { be->pad1d(x, 8, 0, mg::PadMode::Reflect); }, "pad1d");
  expect_refused([&] { be->transpose(random_tensor({5}, 2)); }, "transpose");
  expect_refused([&] { be->narrow_last(x, 6, 5); }, "narrow_last");
}

TEST_F(OpChecks, EmbeddingsAndSearch) {
  Tensor table = random_tensor({10, 4}, 8);
  expect_refused([&] { be->embedding(table, x); }, "embedding");
  expect_refused([&] { be->embedding(random_tensor({10}, 8), i32); }, "embedding");
  std::vector<const Tensor*> tables{&table, &table};
  expect_refused([&] { be->embedding_sum(tables, ids({0, 1, 2}, {3, 1})); }, "embedding_sum");
  expect_refused([&] { be->vq_nearest(random_tensor({3, 8}, 1), random_tensor({5, 7}, 2)); }, "vq_nearest");
}

TEST_F(OpChecks, AttentionAndKvCache) {
  Tensor q = random_tensor({2, 32}, 1), k = random_tensor({8, 32}, 2);
  expect_refused([&] { be->attention(q, k, k, 9, 4, 1.0f, true); }, "attention");
  Tensor q3 = q.reshape({1, 2, 32}), k3 = k.reshape({1, 8, 32});
  expect_refused([&] { be->attention_rows(q3, k3, k3, 8, 5, 1.0f, true); }, "attention_rows");
  Tensor dst = random_tensor({4, 8}, 3);
  expect_refused([&] { be->copy_rows(dst, 3, random_tensor({2, 8}, 4)); }, "copy_rows");
  Tensor cache = Tensor::zeros(DType::F32, {1, 4, 8});
  expect_refused([&] { be->write_kv(cache, 3, random_tensor({2, 8}, 4), 0); }, "write_kv");
  Tensor pos = ids({0}, {1}), wide = random_tensor({1, 16}, 5);
  expect_refused([&] { be->write_kv_at(cache, x, wide, 0); }, "write_kv_at");
  Tensor other = Tensor::zeros(DType::F32, {1, 4, 4});
  expect_refused([&] { be->write_kv_pair_at(cache, other, pos, wide, 0); }, "write_kv_pair_at");
  expect_refused([&] { be->attention_rows_at(q3, k3, k3, x, 8, 4, 1.0f, true); }, "attention_rows_at");
  expect_refused([&] { be->upload_into(dst, random_tensor({3}, 6)); }, "upload_into");
}

TEST_F(OpChecks, SamplingAndDelayPattern) {
  Tensor logits = random_tensor({2, 4, 16}, 7);
  mg::SamplerParams p;
  expect_refused([&] { be->sample_tokens(logits, true, 3.0f, p, {1, 2}, 0); }, "sample_tokens");
  Tensor seeds = Tensor::zeros(DType::I32, {2}), step = ids({0}, {1});
  expect_refused([&] { be->sample_tokens_at(logits, false, 3.0f, p, seeds, step); }, "sample_tokens_at");
  Tensor pattern = ids(std::vector<int32_t>(8, -1), {1, 4, 2}), tokens = ids({1, 2, 3}, {1, 3});
  Tensor next = ids({0, 0, 0, 0}, {4, 1}), counters = ids({0}, {1});
  expect_refused([&] { be->delay_pattern_step_at(pattern, tokens, step, next, counters); }, "delay_pattern_step_at");
}

// A negative top_k used to sample from the whole vocabulary on CUDA while the CPU threw: the
// sampler parameters are part of the shared contract now.
TEST_F(OpChecks, NegativeTopKIsRefusedWhenTopKDecides) {
  Tensor logits = random_tensor({1, 4, 16}, 7);
  mg::SamplerParams p;
  p.top_k = -1;
  expect_refused([&] { be->sample_tokens(logits, false, 1.0f, p, {1}, 0); }, "top_k");
  expect_refused([&] { mg::check_sampler_params(p, "sample_tokens"); }, "sample_tokens");
  // Where top-k does not decide, its value does not matter.
  p.greedy = true;
  EXPECT_NO_THROW(be->sample_tokens(logits, false, 1.0f, p, {1}, 0));
  p.greedy = false;
  p.top_p = 0.9f;
  EXPECT_NO_THROW(be->sample_tokens(logits, false, 1.0f, p, {1}, 0));
}

TEST_F(OpChecks, LstmAndChroma) {
  mg::LstmLayerWeights w{random_tensor({16, 3}, 1), random_tensor({16, 4}, 2), random_tensor({16}, 3),
                         random_tensor({16}, 4)};
  expect_refused([&] { be->lstm(random_tensor({5, 2}, 6), w); }, "lstm");
  Tensor window = random_tensor({16}, 1), filters = random_tensor({12, 9}, 2);
  expect_refused([&] { be->chroma(random_tensor({8}, 3), window, 1.0f, filters, 4, 1e-6f); }, "chroma");
  expect_refused([&] { be->chroma(random_tensor({32}, 3), window, 1.0f, random_tensor({12, 8}, 2), 4, 1e-6f); },
                 "chroma");
}

// Every tensor must live on the backend's device: the one generic check, for every op.
TEST_F(OpChecks, TensorsOnAnotherDeviceAreRefused) {
  Tensor fake = Tensor::view(reinterpret_cast<void*>(0x10), DType::F32, {4, 8}, mg::Device::CUDA, nullptr);
  expect_refused([&] { be->relu(fake); }, "relu");
  expect_refused([&] { be->add(x, fake); }, "cuda");
  expect_refused([&] { be->linear(x, fake, nullptr); }, "linear w");
  EXPECT_EQ(mg::check_linear(mg::Device::CPU, x, random_tensor({5, 8}, 2), nullptr), (mg::Shape{4, 5}));
}

}  // namespace
