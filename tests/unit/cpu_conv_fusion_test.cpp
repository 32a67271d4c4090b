// The fused convolutions (Conv1dFusion / ConvTranspose1dFusion): each option against the
// composition of plain ops (elu, pad1d, conv, add, narrow_last), bit for bit, on lengths that cross
// several time tiles with odd remainders; against plain double-precision loops; and the same bits
// for 1 and 2 threads. Both CPU paths run: the AVX-512 direct kernel and im2col + OpenBLAS.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "test_util.h"

namespace {

using mg::Conv1dFusion;
using mg::ConvTranspose1dFusion;
using mg::PadMode;
using mg::Tensor;
using mgtest::random_tensor;
namespace cpu = mg::cpu;

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape == b.shape && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

// y[b, o, j] = bias[o] + sum_{c, tap} w[o, c, tap] * xp[b, c, j*stride + tap*dil] in double.
Tensor naive_conv1d(const Tensor& xp, const Tensor& w, const Tensor& bias, int stride, int dil) {
  const int64_t B = xp.dim(0), C = xp.dim(1), T = xp.dim(2), O = w.dim(0), K = w.dim(2);
  const int64_t n = (T - dil * (K - 1) - 1) / stride + 1;
  Tensor y = Tensor::empty(mg::DType::F32, {B, O, n});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t j = 0; j < n; ++j) {
        double acc = bias.f32()[o];
        for (int64_t c = 0; c < C; ++c)
          for (int64_t k = 0; k < K; ++k)
            acc += double(w.f32()[(o * C + c) * K + k]) * xp.f32()[(b * C + c) * T + j * stride + k * dil];
        y.f32()[(b * O + o) * n + j] = float(acc);
      }
  return y;
}

// Untrimmed y[b, o, t*stride + k] += x[b, c, t] * w[c, o, k], in double.
Tensor naive_conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& bias, int stride) {
  const int64_t B = x.dim(0), C = x.dim(1), T = x.dim(2), O = w.dim(1), K = w.dim(2), L = (T - 1) * stride + K;
  std::vector<double> acc(size_t(B * O * L));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < O; ++o) {
      for (int64_t q = 0; q < L; ++q) acc[size_t((b * O + o) * L + q)] = bias.f32()[o];
      for (int64_t c = 0; c < C; ++c)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t k = 0; k < K; ++k)
            acc[size_t((b * O + o) * L + t * stride + k)] +=
                double(x.f32()[(b * C + c) * T + t]) * w.f32()[(c * O + o) * K + k];
    }
  Tensor y = Tensor::empty(mg::DType::F32, {B, O, L});
  for (size_t i = 0; i < acc.size(); ++i) y.f32()[i] = float(acc[i]);
  return y;
}

struct Paths {
  cpu::ThreadPool pool2{2};
  std::vector<std::pair<std::string, cpu::Exec>> list() {
    return {{"simd 1 thread", cpu::Exec{nullptr, true}},
            {"simd 2 threads", cpu::Exec{&pool2, true}},
            {"portable 1 thread", cpu::Exec{nullptr, false}},
            {"portable 2 threads", cpu::Exec{&pool2, false}}};
  }
};

struct ConvCase {
  int64_t batch, cin, cout, k;
  int stride, dilation;
  int64_t t;
  int pad_left, pad_right;
  PadMode mode;
  float pad_value;
  bool elu, residual;
};

std::string describe(const ConvCase& c) {
  return std::to_string(c.cin) + "->" + std::to_string(c.cout) + " K" + std::to_string(c.k) + " s" +
         std::to_string(c.stride) + " d" + std::to_string(c.dilation) + " T" + std::to_string(c.t) + " pad(" +
         std::to_string(c.pad_left) + "," + std::to_string(c.pad_right) + ") mode " + std::to_string(int(c.mode)) +
         (c.elu ? " elu" : "") + (c.residual ? " residual" : "");
}

TEST(ConvFusion, Conv1dEqualsCompositionOfPlainOps) {
  // Lengths cross several tiles of both paths (direct: <= 448 columns; im2col: ~7000 for these
  // channel counts; thin convs: ~20000) and end in odd remainders.
  const ConvCase cases[] = {
      {1, 8, 4, 3, 1, 1, 20011, 1, 1, PadMode::Reflect, 0.0f, true, false},     // resblock conv1
      {1, 4, 8, 1, 1, 1, 20011, 0, 0, PadMode::Reflect, 0.0f, true, true},      // resblock conv2 + skip
      {2, 6, 10, 3, 1, 3, 9001, 3, 3, PadMode::Reflect, 0.0f, true, false},     // dilated, batch 2
      {1, 8, 16, 8, 4, 1, 20013, 2, 5, PadMode::Reflect, 0.0f, true, false},    // down-sampling + extra
      {1, 6, 13, 10, 5, 1, 9007, 3, 4, PadMode::Constant, 0.5f, true, false},   // pad value is not ELU'd
      {1, 5, 11, 4, 2, 2, 7001, 3, 0, PadMode::Replicate, 0.0f, false, true},   // causal-style, no ELU
      {1, 9, 300, 3, 1, 1, 3001, 1, 1, PadMode::Reflect, 0.0f, true, true},     // > 256 outputs: channel blocks
      {1, 1, 12, 7, 1, 1, 45001, 3, 3, PadMode::Reflect, 0.0f, false, false},   // first encoder conv (Cin 1)
      {1, 12, 1, 7, 1, 1, 45001, 3, 3, PadMode::Reflect, 0.0f, true, true},     // last decoder conv (Cout 1)
      {1, 1, 5, 4, 3, 2, 30001, 2, 2, PadMode::Constant, -0.25f, true, false},  // thin, strided, dilated
      {1, 200, 24, 8, 4, 1, 3001, 2, 2, PadMode::Reflect, 0.0f, true, true},    // Cin*K > 1024: im2col + GEMM
  };
  Paths paths;
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(describe(c));
    Tensor x = random_tensor({c.batch, c.cin, c.t}, 1, 2.0f);
    Tensor w = random_tensor({c.cout, c.cin, c.k}, 2, 0.3f), b = random_tensor({c.cout}, 3);
    Conv1dFusion f;
    f.elu = c.elu;
    f.pad_left = c.pad_left;
    f.pad_right = c.pad_right;
    f.pad_mode = c.mode;
    f.pad_value = c.pad_value;
    Tensor xp = cpu::pad1d(c.elu ? cpu::elu(x) : x, c.pad_left, c.pad_right, c.mode, c.pad_value);
    Tensor residual;
    Tensor want = naive_conv1d(xp, w, b, c.stride, c.dilation);
    if (c.residual) {
      residual = random_tensor(want.shape, 4);
      f.residual = &residual;
      want = cpu::add(residual, want);
    }
    Tensor first;
    for (auto& [name, ex] : paths.list()) {
      SCOPED_TRACE(name);
      Tensor got = cpu::conv1d(x, w, &b, c.stride, c.dilation, f, ex);
      Tensor composed = cpu::conv1d(xp, w, &b, c.stride, c.dilation, ex);
      if (c.residual) composed = cpu::add(residual, composed, ex);
      EXPECT_TRUE(bit_equal(got, composed));
      EXPECT_LE(mgtest::rel_err(got, want), 1e-5);
      if (name.find("2 threads") != std::string::npos) EXPECT_TRUE(bit_equal(got, first)) << "1 vs 2 threads";
      first = got;
    }
  }
}

TEST(ConvFusion, ConvTranspose1dEqualsCompositionOfPlainOps) {
  struct Case {
    int64_t batch, cin, cout, k;
    int stride;
    int64_t t;
    int trim_left, trim_right;
    bool elu;
  };
  const Case cases[] = {
      {1, 16, 8, 8, 4, 7001, 2, 2, true},    // EnCodec x4 up-sampling
      {1, 12, 6, 10, 5, 5003, 3, 2, true},   // x5, non-causal trim
      {2, 8, 4, 16, 8, 3001, 0, 8, false},   // x8, causal trim (all on the right), batch 2
      {1, 8, 300, 4, 2, 2001, 1, 1, true},   // > 256 outputs: channel blocks
      {1, 6, 5, 3, 2, 4001, 0, 0, true},     // K not a multiple of the stride
      {1, 6, 5, 2, 4, 4001, 1, 0, false},    // K < stride: outputs no tap reaches are the bias
      {1, 5, 3, 5, 1, 6007, 2, 2, true},     // stride 1
      {1, 300, 6, 10, 5, 301, 2, 3, true},   // Cin*K 3000, stride 5: deep, direct
      {1, 1100, 6, 8, 4, 301, 2, 2, true},   // Cin*K > 8192: the GEMM + col2im path also with AVX-512
  };
  Paths paths;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.cin) + "->" + std::to_string(c.cout) + " K" + std::to_string(c.k) + " s" +
                 std::to_string(c.stride) + " T" + std::to_string(c.t) + " trim(" + std::to_string(c.trim_left) +
                 "," + std::to_string(c.trim_right) + ")" + (c.elu ? " elu" : ""));
    Tensor x = random_tensor({c.batch, c.cin, c.t}, 5, 2.0f);
    Tensor w = random_tensor({c.cin, c.cout, c.k}, 6, 0.3f), b = random_tensor({c.cout}, 7);
    ConvTranspose1dFusion f;
    f.elu = c.elu;
    f.trim_left = c.trim_left;
    f.trim_right = c.trim_right;
    Tensor xa = c.elu ? cpu::elu(x) : x;
    Tensor full = naive_conv_transpose1d(xa, w, b, c.stride);
    auto trim = [&](const Tensor& y) {
      return mg::make_cpu_backend(1)->narrow_last(y, c.trim_left, y.cols() - c.trim_left - c.trim_right);
    };
    Tensor want = trim(full), first;
    for (auto& [name, ex] : paths.list()) {
      SCOPED_TRACE(name);
      Tensor got = cpu::conv_transpose1d(x, w, &b, c.stride, f, ex);
      EXPECT_TRUE(bit_equal(got, trim(cpu::conv_transpose1d(xa, w, &b, c.stride, ex))));
      EXPECT_LE(mgtest::rel_err(got, want), 1e-5);
      if (name.find("2 threads") != std::string::npos) EXPECT_TRUE(bit_equal(got, first)) << "1 vs 2 threads";
      first = got;
    }
  }
}

// The backend forwards the fusion to the CPU kernels, and conv*_composed (what the CUDA backend
// runs) gives the same bits from the plain ops.
TEST(ConvFusion, BackendFusedEqualsComposed) {
  auto be = mg::make_cpu_backend(2);
  Tensor x = random_tensor({1, 8, 5001}, 8, 2.0f), w = random_tensor({8, 8, 3}, 9, 0.3f), b = random_tensor({8}, 10);
  Tensor r = random_tensor({1, 8, 5001}, 11);
  Conv1dFusion f;
  f.elu = true;
  f.pad_left = f.pad_right = 1;
  f.pad_mode = PadMode::Reflect;
  f.residual = &r;
  EXPECT_TRUE(bit_equal(be->conv1d(x, w, &b, 1, 1, f), mg::conv1d_composed(*be, x, w, &b, 1, 1, f)));
  Tensor wt = random_tensor({8, 4, 8}, 12, 0.3f), bt = random_tensor({4}, 13);
  ConvTranspose1dFusion ft;
  ft.elu = true;
  ft.trim_left = ft.trim_right = 2;
  EXPECT_TRUE(
      bit_equal(be->conv_transpose1d(x, wt, &bt, 4, ft), mg::conv_transpose1d_composed(*be, x, wt, &bt, 4, ft)));
}

template <typename F>
void expect_error(F fn, const char* part) {
  try {
    fn();
    ADD_FAILURE() << "no mg::Error thrown";
  } catch (const mg::Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// Checked by the contract of the public op (kernels/op_checks.h), so through a backend.
TEST(ConvFusion, BadOptionsThrow) {
  auto be = mg::make_cpu_backend(1);
  Tensor x = random_tensor({1, 4, 6}, 14), w = random_tensor({2, 4, 3}, 15);
  Conv1dFusion f;
  f.pad_left = 6;
  f.pad_mode = PadMode::Reflect;
  expect_error([&] { be->conv1d(x, w, nullptr, 1, 1, f); }, "reflect padding");
  Tensor r = random_tensor({1, 2, 5}, 16);
  Conv1dFusion g;
  g.residual = &r;
  expect_error([&] { be->conv1d(x, w, nullptr, 1, 1, g); }, "residual");
  ConvTranspose1dFusion t;
  t.trim_left = 20;
  expect_error([&] { be->conv_transpose1d(x, random_tensor({4, 2, 4}, 17), nullptr, 2, t); }, "trim");
}

}  // namespace
