// Parity of every CPU op against PyTorch: tests/data/golden/ops/ops.safetensors holds inputs and
// torch's outputs (written by tools/reference/make_op_goldens.py; the scalar parameters of each
// case below must match that script). f32 results must agree to a relative error of 1e-5.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>

#include "kernels/cpu/cpu_ops.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

using mg::Tensor;
constexpr double kTol = 1e-5;

class OpsParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new std::map<std::string, Tensor>(
        mg::load_safetensors(mgtest::golden_dir() + "/ops/ops.safetensors"));
    pool_ = new mg::cpu::ThreadPool(2);
  }
  static void TearDownTestSuite() {
    delete golden_;
    delete pool_;
  }
  static const Tensor& g(const std::string& name) {
    auto it = golden_->find(name);
    if (it == golden_->end()) throw mg::Error("golden tensor " + name + " is missing from ops.safetensors");
    return it->second;
  }
  static mg::cpu::Exec ex() { return mg::cpu::Exec{pool_, true}; }

  static void expect_close(const Tensor& got, const Tensor& want, double tol = kTol) {
    ASSERT_EQ(mg::shape_str(got.shape), mg::shape_str(want.shape));
    EXPECT_LE(mgtest::rel_err(got, want), tol);
  }

  static std::map<std::string, Tensor>* golden_;
  static mg::cpu::ThreadPool* pool_;
};

std::map<std::string, Tensor>* OpsParity::golden_ = nullptr;
mg::cpu::ThreadPool* OpsParity::pool_ = nullptr;

// ---- linear ----
TEST_F(OpsParity, LinearF32) {
  expect_close(mg::cpu::linear(g("linear_f32.x"), g("linear_f32.w"), &g("linear_f32.b"), ex()), g("linear_f32.out"));
}
// M=2 (a decode step with CFG) takes the GEMV path instead of sgemm.
TEST_F(OpsParity, LinearF32DecodeRows) {
  expect_close(mg::cpu::linear(g("linear_f32_m2.x"), g("linear_f32_m2.w"), &g("linear_f32_m2.b"), ex()),
               g("linear_f32_m2.out"));
  expect_close(mg::cpu::linear(g("linear_f32_m2.x"), g("linear_f32_m2.w"), &g("linear_f32_m2.b"), {pool_, false}),
               g("linear_f32_m2.out"));
}
TEST_F(OpsParity, LinearF32NoBias) {
  expect_close(mg::cpu::linear(g("linear_f32_nobias.x"), g("linear_f32_nobias.w"), nullptr, ex()),
               g("linear_f32_nobias.out"));
}
// Half weights: torch upcasts them to f32 and computes in f32, which is what we must match.
// M=37 takes the converted-block sgemm path, M=3 and M=1 the converting GEMV (decode step).
TEST_F(OpsParity, LinearF16Weights) {
  for (const char* c : {"linear_f16", "linear_f16_m3"}) {
    SCOPED_TRACE(c);
    std::string k = c;
    ASSERT_EQ(g(k + ".w").dtype, mg::DType::F16);
    expect_close(mg::cpu::linear(g(k + ".x"), g(k + ".w"), &g(k + ".b"), ex()), g(k + ".out"));
  }
  expect_close(mg::cpu::linear(g("linear_f16_m1.x"), g("linear_f16_m1.w"), nullptr, ex()), g("linear_f16_m1.out"));
}
TEST_F(OpsParity, LinearBF16Weights) {
  for (const char* c : {"linear_bf16", "linear_bf16_m3"}) {
    SCOPED_TRACE(c);
    std::string k = c;
    ASSERT_EQ(g(k + ".w").dtype, mg::DType::BF16);
    expect_close(mg::cpu::linear(g(k + ".x"), g(k + ".w"), &g(k + ".b"), ex()), g(k + ".out"));
  }
  expect_close(mg::cpu::linear(g("linear_bf16_m1.x"), g("linear_bf16_m1.w"), nullptr, ex()),
               g("linear_bf16_m1.out"));
}
// The same half-weight cases through the portable (non-AVX2) loops.
TEST_F(OpsParity, LinearHalfWeightsPortable) {
  mg::cpu::Exec plain{pool_, false};
  for (const char* c : {"linear_f16", "linear_f16_m3", "linear_bf16", "linear_bf16_m3"}) {
    SCOPED_TRACE(c);
    std::string k = c;
    expect_close(mg::cpu::linear(g(k + ".x"), g(k + ".w"), &g(k + ".b"), plain), g(k + ".out"));
  }
}

// ---- matmul ----
TEST_F(OpsParity, Matmul) {
  expect_close(mg::cpu::matmul(g("matmul.a"), g("matmul.b"), false, 1.0f, ex()), g("matmul.out"));
}
TEST_F(OpsParity, MatmulTransBAlpha) {
  expect_close(mg::cpu::matmul(g("matmul_trans_b.a"), g("matmul_trans_b.b"), true, 0.125f, ex()),
               g("matmul_trans_b.out"));
}

// ---- elementwise ----
TEST_F(OpsParity, AddSameShape) {
  expect_close(mg::cpu::add(g("add_same.a"), g("add_same.b"), ex()), g("add_same.out"));
}
TEST_F(OpsParity, AddBroadcastRow) {
  expect_close(mg::cpu::add(g("add_row.a"), g("add_row.b"), ex()), g("add_row.out"));
}
TEST_F(OpsParity, MulBroadcastMatrix) {
  expect_close(mg::cpu::mul(g("mul_mat.a"), g("mul_mat.b"), ex()), g("mul_mat.out"));
}
TEST_F(OpsParity, MulSameShape) {
  expect_close(mg::cpu::mul(g("mul_same.a"), g("mul_same.b"), ex()), g("mul_same.out"));
}
TEST_F(OpsParity, Scale) { expect_close(mg::cpu::scale(g("scale.x"), -0.37f, ex()), g("scale.out")); }
TEST_F(OpsParity, Elu) { expect_close(mg::cpu::elu(g("elu.x"), 1.0f, ex()), g("elu.out")); }
TEST_F(OpsParity, GeluErf) { expect_close(mg::cpu::gelu(g("gelu.x"), ex()), g("gelu.out")); }
TEST_F(OpsParity, Relu) { expect_close(mg::cpu::relu(g("relu.x"), ex()), g("relu.out")); }

// ---- norms and softmax ----
TEST_F(OpsParity, LayerNorm) {
  expect_close(mg::cpu::layer_norm(g("layer_norm.x"), g("layer_norm.gamma"), &g("layer_norm.beta"), 1e-5f, ex()),
               g("layer_norm.out"));
}
TEST_F(OpsParity, LayerNormNoBeta) {
  expect_close(mg::cpu::layer_norm(g("layer_norm_nobeta.x"), g("layer_norm_nobeta.gamma"), nullptr, 1e-5f, ex()),
               g("layer_norm_nobeta.out"));
}
// Trap: T5's norm is RMS without mean subtraction and without bias; a layer_norm here would pass
// shape checks and silently shift every activation.
TEST_F(OpsParity, RmsNormT5) {
  expect_close(mg::cpu::rms_norm(g("rms_norm.x"), g("rms_norm.gamma"), 1e-6f, ex()), g("rms_norm.out"));
}
TEST_F(OpsParity, GroupNorm4Groups) {
  expect_close(mg::cpu::group_norm(g("group_norm4.x"), 4, g("group_norm4.gamma"), g("group_norm4.beta"), 1e-5f, ex()),
               g("group_norm4.out"));
}
TEST_F(OpsParity, GroupNorm1Group) {
  expect_close(mg::cpu::group_norm(g("group_norm1.x"), 1, g("group_norm1.gamma"), g("group_norm1.beta"), 1e-5f, ex()),
               g("group_norm1.out"));
}
// Trap: masked (-inf) logits must give exact zeros and must not turn the row into NaN.
TEST_F(OpsParity, SoftmaxWithMaskedEntries) {
  expect_close(mg::cpu::softmax(g("softmax.x"), ex()), g("softmax.out"));
}

// ---- convolutions ----
TEST_F(OpsParity, Conv1dStridesAndDilations) {
  for (int s : {1, 2, 4}) {
    for (int d : {1, 3}) {
      SCOPED_TRACE("stride " + std::to_string(s) + " dilation " + std::to_string(d));
      expect_close(mg::cpu::conv1d(g("conv1d_in.x"), g("conv1d_in.w"), &g("conv1d_in.b"), s, d, ex()),
                   g("conv1d_s" + std::to_string(s) + "_d" + std::to_string(d) + ".out"));
    }
  }
}
TEST_F(OpsParity, Conv1dPointwise) {
  expect_close(mg::cpu::conv1d(g("conv1d_in.x"), g("conv1d_k1.w"), &g("conv1d_in.b"), 1, 1, ex()),
               g("conv1d_k1.out"));
}
// Trap: the transposed conv output is untrimmed ((T-1)*stride + K); trimming is the codec's job.
TEST_F(OpsParity, ConvTranspose1dStrides) {
  for (int s : {2, 4, 8}) {
    SCOPED_TRACE("stride " + std::to_string(s));
    std::string k = "convtr_s" + std::to_string(s);
    expect_close(mg::cpu::conv_transpose1d(g(k + ".x"), g(k + ".w"), &g(k + ".b"), s, ex()), g(k + ".out"));
  }
}

// ---- padding and layout ----
// Trap: torch's reflect does not repeat the edge sample (x[1] x[0] | x[0] x[1]), unlike numpy's
// "symmetric"; replicate repeats it. Both are used by EnCodec's padding rules.
TEST_F(OpsParity, PadReflect) {
  expect_close(mg::cpu::pad1d(g("pad_in.x"), 5, 7, mg::PadMode::Reflect, 0.0f, ex()), g("pad_reflect.out"));
  expect_close(mg::cpu::pad1d(g("pad_in.x"), 36, 36, mg::PadMode::Reflect, 0.0f, ex()), g("pad_reflect_max.out"));
}
TEST_F(OpsParity, PadReplicate) {
  expect_close(mg::cpu::pad1d(g("pad_in.x"), 4, 9, mg::PadMode::Replicate, 0.0f, ex()), g("pad_replicate.out"));
}
TEST_F(OpsParity, PadConstant) {
  expect_close(mg::cpu::pad1d(g("pad_in.x"), 3, 2, mg::PadMode::Constant, 0.5f, ex()), g("pad_constant.out"));
}
TEST_F(OpsParity, Transpose) {
  Tensor got = mg::cpu::transpose(g("transpose.x"), ex());
  ASSERT_EQ(mg::shape_str(got.shape), mg::shape_str(g("transpose.out").shape));
  EXPECT_EQ(mgtest::max_abs_diff(got.to_vector(), g("transpose.out").to_vector()), 0.0);
}

// ---- embeddings ----
TEST_F(OpsParity, Embedding) {
  expect_close(mg::cpu::embedding(g("embedding.table"), g("embedding.ids"), ex()), g("embedding.out"));
}
TEST_F(OpsParity, EmbeddingSumOfFourTables) {
  std::vector<const Tensor*> tables;
  for (int k = 0; k < 4; ++k) tables.push_back(&g("embedding_sum.table" + std::to_string(k)));
  expect_close(mg::cpu::embedding_sum(tables, g("embedding_sum.ids"), ex()), g("embedding_sum.out"));
}

// ---- LSTM: two stacked layers of nn.LSTM, our one-layer op applied twice ----
// Trap: PyTorch's gate order is i, f, g, o and both biases are added; any other order still
// produces plausible-looking numbers.
TEST_F(OpsParity, Lstm2Layers) {
  Tensor h = g("lstm.x");
  for (int layer = 0; layer < 2; ++layer) {
    std::string l = "_l" + std::to_string(layer);
    mg::LstmLayerWeights w{g("lstm.weight_ih" + l), g("lstm.weight_hh" + l), g("lstm.bias_ih" + l),
                           g("lstm.bias_hh" + l)};
    h = mg::cpu::lstm(h, w, ex());
  }
  expect_close(h, g("lstm.out"));
}

// ---- casts: bit-exact with torch's .half() / .bfloat16() rounding (ties, subnormals, inf, nan) ----
TEST_F(OpsParity, CastF16AndBF16BitExact) {
  const Tensor& x = g("cast.x");
  for (auto [dt, key] : {std::pair{mg::DType::F16, std::string("f16")}, std::pair{mg::DType::BF16, std::string("bf16")}}) {
    SCOPED_TRACE(key);
    Tensor h = mg::cpu::cast(x, dt, ex());
    const Tensor& want = g("cast." + key);
    ASSERT_EQ(want.dtype, dt);
    ASSERT_EQ(h.numel(), want.numel());
    int mismatches = 0;
    for (int64_t i = 0; i < h.numel(); ++i) {
      uint16_t a = h.ptr<uint16_t>()[i], b = want.ptr<uint16_t>()[i];
      bool both_nan = std::isnan(x.f32()[i]) && ((a & 0x7fff) > (dt == mg::DType::F16 ? 0x7c00 : 0x7f80)) &&
                      ((b & 0x7fff) > (dt == mg::DType::F16 ? 0x7c00 : 0x7f80));
      if (a != b && !both_nan) {
        if (++mismatches < 5) ADD_FAILURE() << "value " << x.f32()[i] << ": got 0x" << std::hex << a << ", torch 0x" << b;
      }
    }
    EXPECT_EQ(mismatches, 0);
    Tensor back = mg::cpu::cast(h, mg::DType::F32, ex());
    const Tensor& want_back = g("cast." + key + "_back");
    for (int64_t i = 0; i < back.numel(); ++i) {
      float a = back.f32()[i], b = want_back.f32()[i];
      if (std::isnan(b)) {
        EXPECT_TRUE(std::isnan(a)) << "index " << i;
      } else {
        EXPECT_EQ(std::memcmp(&a, &b, 4), 0) << "index " << i << ": " << a << " vs " << b;
      }
    }
  }
}

}  // namespace
