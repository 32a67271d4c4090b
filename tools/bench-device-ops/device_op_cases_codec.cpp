// Rows of the device op case table (device_op_cases.h): the ops EnCodec runs (convolutions and their
// fusions, pad1d, group_norm, the LSTM, the RVQ search). Full shapes are EnCodec 32 kHz's largest
// layers on 30 s of audio.
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "tools/bench-device-ops/device_op_cases.h"

namespace mgcases {
namespace {

using mg::Backend;
using mg::DType;
using mg::PadMode;
using mg::Shape;
using mg::strcat;
using mg::Tensor;
using Ts = std::vector<Tensor>;

const char* pad_name(PadMode m) {
  return m == PadMode::Constant ? "constant" : m == PadMode::Reflect ? "reflect" : "replicate";
}

// x[B, C, T] with a per-time offset, groups; args {groups}.
DeviceOpCase group_norm_row() {
  DeviceOpCase c{"group_norm", kTolElementwise};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Shape& s, int groups) {
      const int64_t ch = s[s.size() - 2];
      Tensor x = random(s, 80, 3.0f);
      const Tensor offset = random({s.back()}, 83);
      for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] += offset.f32()[i % s.back()];
      v.push_back({strcat(mg::shape_str(s), " groups=", groups), {x, random({ch}, 81), random({ch}, 82)},
                   {double(groups)}, 8.0 * x.numel(), 0});
    };
    if (size == Size::Full) {
      add({1, 64, 48000}, 1);
      return v;
    }
    for (auto [s, groups] : {std::pair<Shape, int>{{2, 8, 37}, 1}, {{2, 8, 37}, 2}, {{2, 8, 37}, 8}, {{16, 100}, 4},
                             {{1, 32, 5000}, 1}})
      add(s, groups);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    return be.group_norm(t[0], int(in.args[0]), t[1], t[2], 1e-5f);
  };
  return c;
}

// The plain and the fused conv1d. tensors {x, w, b, residual (when fused with one)}; args {stride,
// dilation, bias, elu, pad_left, pad_right, pad_mode}.
struct ConvCase {
  Shape x;
  int64_t cout, k;
  int stride, dilation;
  bool bias, elu = false;
  int pad_left = 0, pad_right = 0;
  PadMode mode = PadMode::Constant;
  bool residual = false;
};

DeviceOpCase conv1d_row() {
  DeviceOpCase c{"conv1d", kTolGemm};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const ConvCase& cc, bool heavy) {
      const int64_t cin = cc.x[cc.x.size() - 2], t = cc.x.back() + cc.pad_left + cc.pad_right;
      const int64_t tout = (t - cc.dilation * (cc.k - 1) - 1) / cc.stride + 1;
      Shape out = cc.x;
      out[out.size() - 2] = cc.cout;
      out.back() = tout;
      OpInputs in{strcat("x", mg::shape_str(cc.x), " w[", cc.cout, ", ", cin, ", ", cc.k, "] s", cc.stride, " d",
                         cc.dilation, cc.bias ? "" : " no bias", cc.elu ? " +elu" : "",
                         cc.pad_left || cc.pad_right ? strcat(" +pad ", cc.pad_left, "/", cc.pad_right, " ",
                                                              pad_name(cc.mode))
                                                     : "",
                         cc.residual ? " +residual" : ""),
                  {random(cc.x, 100), random({cc.cout, cin, cc.k}, 101, 0.3f), random({cc.cout}, 102)},
                  {double(cc.stride), double(cc.dilation), double(cc.bias), double(cc.elu), double(cc.pad_left),
                   double(cc.pad_right), double(int(cc.mode))}};
      if (cc.residual) in.tensors.push_back(random(out, 103));
      in.flops = 2.0 * double(numel(out)) * cin * cc.k;
      in.heavy = heavy;
      v.push_back(in);
    };
    if (size == Size::Full) {
      // After the first downsampling stage (stride 4): 240000 frames of 128 channels, as SEANet runs it.
      ConvCase cc{{1, 128, 30 * 32000 / 4}, 128, 3, 1, 1, true, true, 2, 0, PadMode::Reflect};
      add(cc, true);
      return v;
    }
    for (const ConvCase& cc : {ConvCase{{1, 3, 50}, 5, 3, 1, 1, true}, ConvCase{{2, 4, 101}, 6, 7, 2, 1, true},
                               ConvCase{{2, 5, 97}, 3, 4, 4, 3, false}, ConvCase{{1, 8, 33}, 16, 1, 1, 1, true},
                               ConvCase{{8, 33}, 5, 1, 2, 1, true}, ConvCase{{6, 29}, 4, 3, 1, 3, false},
                               // Cin*K*Tout = 224 * 79994 exceeds the 2^24-float column buffer: two chunks.
                               ConvCase{{2, 32, 80000}, 8, 7, 1, 1, true},
                               ConvCase{{2, 6, 40}, 6, 3, 1, 1, true, true, 2, 0, PadMode::Reflect, true},
                               ConvCase{{1, 4, 33}, 5, 4, 2, 1, true, false, 1, 2, PadMode::Replicate}})
      add(cc, false);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    mg::Conv1dFusion f;
    f.elu = in.args[3] != 0;
    f.pad_left = int(in.args[4]);
    f.pad_right = int(in.args[5]);
    f.pad_mode = PadMode(int(in.args[6]));
    f.residual = t.size() > 3 ? &t[3] : nullptr;
    return be.conv1d(t[0], t[1], in.args[2] != 0 ? &t[2] : nullptr, int(in.args[0]), int(in.args[1]), f);
  };
  return c;
}

// tensors {x, w[Cin, Cout, K], b}; args {stride, bias, elu, trim_left, trim_right}: a trimmed case
// trims K - stride in all, as SEANet does.
DeviceOpCase conv_transpose1d_row() {
  DeviceOpCase c{"conv_transpose1d", kTolGemm};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Shape& x, int64_t cout, int64_t k, int stride, bool bias, bool elu, int trim) {
      const int64_t cin = x[x.size() - 2];
      const double frames = double(numel(x) / cin);
      v.push_back({strcat("x", mg::shape_str(x), " w[", cin, ", ", cout, ", ", k, "] s", stride, bias ? "" : " no bias",
                          elu ? " +elu" : "", trim ? strcat(" +trim ", trim) : ""),
                   {random(x, 110), random({cin, cout, k}, 111, 0.3f), random({cout}, 112)},
                   {double(stride), double(bias), double(elu), double(trim), double(trim ? k - stride - trim : 0)},
                   0, 2.0 * frames * cin * cout * k});
    };
    if (size == Size::Full) {
      add({1, 256, 7500}, 128, 8, 4, true, true, 2);  // a decoder upsampling stage with its ELU and trim
      return v;
    }
    add({1, 4, 10}, 3, 4, 2, true, false, 0);
    add({2, 5, 37}, 6, 8, 4, true, false, 0);
    add({1, 3, 17}, 2, 16, 8, false, false, 0);
    add({2, 6, 23}, 4, 3, 1, true, false, 0);
    add({5, 9}, 3, 2, 3, true, false, 0);  // kernel shorter than stride: the gaps hold the bias
    // Cout*K*T = 256 * 70000 exceeds the column buffer: two chunks that overlap.
    add({1, 4, 70000}, 16, 16, 8, true, false, 0);
    add({2, 6, 23}, 4, 8, 4, true, true, 1);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    mg::ConvTranspose1dFusion f;
    f.elu = in.args[2] != 0;
    f.trim_left = int(in.args[3]);
    f.trim_right = int(in.args[4]);
    return be.conv_transpose1d(t[0], t[1], in.args[1] != 0 ? &t[2] : nullptr, int(in.args[0]), f);
  };
  return c;
}

// Reflect excludes the edge sample (torch's 'reflect', not numpy's 'symmetric'). Exact.
// args {left, right, mode}.
DeviceOpCase pad1d_row() {
  DeviceOpCase c{"pad1d", kTolExact};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Shape& s, int left, int right, PadMode mode) {
      const Tensor x = random(s, 120);
      v.push_back({strcat(mg::shape_str(s), " ", left, "/", right, " ", pad_name(mode)), {x},
                   {double(left), double(right), double(int(mode))}, 2.0 * x.nbytes(), 0});
    };
    if (size == Size::Full) {
      add({1, 1, 960000}, 3, 3, PadMode::Reflect);  // 30 s of 32 kHz audio into the first conv
      return v;
    }
    for (auto [s, left, right] : {std::tuple<Shape, int, int>{{3, 10}, 0, 0}, {{3, 10}, 2, 3}, {{2, 3, 10}, 9, 9},
                                  {{1, 2}, 1, 1}, {{4, 1001}, 7, 0}})
      for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Replicate}) add(s, left, right, mode);
    add({2, 1}, 4, 2, PadMode::Replicate);  // replicate of a single sample
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    return be.pad1d(t[0], int(in.args[0]), int(in.args[1]), PadMode(int(in.args[2])), 0.5f);
  };
  return c;
}

// One LSTM layer over a sequence from a zero state; tensors {x, w_ih, w_hh, b_ih, b_hh}.
DeviceOpCase lstm_row() {
  DeviceOpCase c{"lstm", kTolGemm};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](int64_t t, int64_t in, int64_t h, DType wt, bool heavy) {
      OpInputs op{strcat(t, " steps, In ", in, ", H ", h, ", ", mg::dtype_name(wt), " weights"),
                  {random({t, in}, 170), to_dtype(random({4 * h, in}, 171, 0.3f), wt),
                   to_dtype(random({4 * h, h}, 172, 0.3f), wt), to_dtype(random({4 * h}, 173, 0.3f), wt),
                   to_dtype(random({4 * h}, 174, 0.3f), wt)},
                  {}, double(t) * 4 * h * h * mg::dtype_size(wt), 0};
      op.heavy = heavy;
      v.push_back(op);
    };
    if (size == Size::Full) {
      add(1500, 1024, 1024, DType::F32, true);
      return v;
    }
    add(37, 16, 24, DType::F32, false);
    add(1, 8, 8, DType::F32, false);
    add(20, 3, 33, DType::F32, false);
    add(50, 64, 64, DType::F32, false);
    add(12, 16, 24, DType::F16, false);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs&) {
    return be.lstm(t[0], mg::LstmLayerWeights{t[1], t[2], t[3], t[4]});
  };
  return c;
}

// |x - e|^2 in double: the distance a near-tie is judged by.
double sq_dist(const float* x, const float* e, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += (double(x[i]) - e[i]) * (double(x[i]) - e[i]);
  return s;
}

// The ids must equal the CPU's, except at near-ties (the x.e GEMM sums in another order): 0 when
// every differing id is a near-tie (distances within 1e-5 relative) and at most 1% differ, else 1.
double vq_error(const Tensor& got, const Tensor& want, const OpInputs& in) {
  const Tensor& x = in.tensors[0];
  const Tensor& e = in.tensors[1];
  const int64_t n = x.dim(0), d = x.dim(1), vocab = e.dim(0);
  int64_t differ = 0;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t g = got.ptr<int64_t>()[r], w = want.ptr<int64_t>()[r];
    if (g == w) continue;
    if (g < 0 || g >= vocab) return 1;
    ++differ;
    const double dg = sq_dist(x.f32() + r * d, e.f32() + g * d, d), dw = sq_dist(x.f32() + r * d, e.f32() + w * d, d);
    if (std::abs(dg - dw) > 1e-5 * std::max(dg, dw) + 1e-7) return 1;
  }
  return differ <= n / 100 ? 0 : 1;
}

DeviceOpCase vq_nearest_row() {
  DeviceOpCase c{"vq_nearest", kTolExact};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](int64_t n, int64_t vocab, int64_t d) {
      v.push_back({strcat(n, " x ", vocab, " codes of ", d), {random({n, d}, 200), random({vocab, d}, 201)}, {}, 0,
                   2.0 * n * vocab * d});
    };
    if (size == Size::Full) {
      add(1500, 2048, 128);
      return v;
    }
    for (auto [n, vocab, d] : {std::tuple<int64_t, int64_t, int64_t>{1, 2048, 4}, {37, 1024, 128}, {300, 2048, 128},
                               {50, 3, 8}, {4100, 64, 16}})  // 4100 rows: two GEMM slices of at most 4096 rows
      add(n, vocab, d);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs&) { return be.vq_nearest(t[0], t[1]); };
  c.error = vq_error;
  return c;
}

}  // namespace

void add_codec_cases(std::vector<DeviceOpCase>& rows) {
  rows.push_back(group_norm_row());
  rows.push_back(conv1d_row());
  rows.push_back(conv_transpose1d_row());
  rows.push_back(pad1d_row());
  rows.push_back(lstm_row());
  rows.push_back(vq_nearest_row());
}

}  // namespace mgcases
