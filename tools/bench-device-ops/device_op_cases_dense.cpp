// Rows of the device op case table (device_op_cases.h): dense algebra, elementwise, norms, softmax,
// casts, layout and embeddings. Small shapes sit off the tile and warp sizes; full ones are
// musicgen-small's decode step (D 1024, FFN 4096, 4 x 2048 codes, a CFG pair of rows).
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "tools/bench-device-ops/device_op_cases.h"

namespace mgcases {
namespace {

using mg::Backend;
using mg::DType;
using mg::Shape;
using mg::strcat;
using mg::Tensor;
using Ts = std::vector<Tensor>;

constexpr int64_t D = 1024, F = 4096, K = 4, V = 2048, R = 2;

// The product of all dims but the last.
double rows_of(const Shape& s) {
  double n = 1;
  for (size_t i = 0; i + 1 < s.size(); ++i) n *= double(s[i]);
  return n;
}

// ---- dense algebra ----

// linear, no fusion: args {bias}.
DeviceOpCase linear_row(DType wt) {
  DeviceOpCase c{strcat("linear ", mg::dtype_name(wt)), wt == DType::F32 ? kTolGemm : kTolHalfWeights};
  c.inputs = [wt](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Shape& x, int64_t n, bool bias) {
      const int64_t k = x.back();
      const double m = rows_of(x);
      v.push_back({strcat("x", mg::shape_str(x), " n=", n, bias ? " bias" : ""),
                   {random(x, 10), to_dtype(random({n, k}, 11, 0.2f), wt), random({n}, 12)},
                   {double(bias)},
                   double(n) * k * mg::dtype_size(wt) + 4.0 * m * (k + n),
                   2.0 * m * k * n});
    };
    if (size == Size::Full) {
      add({64, D}, F, false);  // a prompt-sized GEMM
    } else if (wt == DType::F32) {
      for (auto [x, n, bias] : {std::tuple<Shape, int64_t, bool>{{1, 64}, 48, true}, {{3, 37}, 129, false},
                                {{17, 256}, 96, true}, {{2, 5, 129}, 67, true}, {{130, 33}, 65, false}})
        add(x, n, bias);
    } else {
      // Rows 1..8 take the GEMV kernel, 9 and more the tiled one; K and N off the tile sizes.
      for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 64, 48}, {4, 37, 129}, {8, 200, 33},
                             {9, 129, 65}, {70, 200, 130}, {65, 17, 1}})
        for (bool bias : {true, false}) add({m, k}, n, bias);
    }
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    return be.linear(t[0], t[1], in.args[0] != 0 ? &t[2] : nullptr);
  };
  return c;
}

// The decode step fuses the FFN's GELU and the residual adds into the linear (the GEMV's epilogue;
// an epilogue kernel after cuBLAS / the tiled kernel): every path must equal the composition.
// tensors {x (or a buffer one float longer), w, bias, residual}; args {gelu, residual, bias,
// misaligned, m, k}: misaligned runs on x one float into the buffer (not 16-byte aligned, so the
// scalar GEMV must take it).
DeviceOpCase linear_fused_row(DType wt) {
  DeviceOpCase c{strcat("linear_fused ", mg::dtype_name(wt)), wt == DType::F32 ? kTolGemm : kTolHalfWeights};
  c.inputs = [wt](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const std::string& what, int64_t m, int64_t k, int64_t n, bool gelu, bool res, bool bias,
                   bool misaligned) {
      const Tensor x = random({m * k + (misaligned ? 1 : 0)}, 30);
      v.push_back({strcat(what, " [", m, "x", k, "]x[", n, "]", gelu ? " +gelu" : "", res ? " +residual" : "",
                          bias ? "" : " no bias", misaligned ? " misaligned x" : ""),
                   {x, to_dtype(random({n, k}, 31, 0.05f), wt), random({n}, 32), random({m, n}, 33)},
                   {double(gelu), double(res), double(bias), double(misaligned), double(m), double(k)},
                   double(n) * k * mg::dtype_size(wt) + 4.0 * m * (k + n * (res ? 2 : 1)),
                   0});
    };
    if (size == Size::Full) {
      add("qkv", R, D, 3 * D, false, false, false, false);
      add("out", R, D, D, false, true, false, false);
      add("fc1", R, D, F, true, false, false, false);
      add("fc2", R, F, D, false, true, false, false);
      add("heads", R, D, K * V, false, false, false, false);
      return v;
    }
    // K = 1024 takes the 16-byte-load GEMV, K = 37 the scalar one.
    for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{2, 1024, 520}, {3, 4096, 72}, {2, 37, 65},
                           {9, 1024, 130}})
      for (int mode = 0; mode < 3; ++mode) add("x", m, k, n, mode != 1, mode != 0, true, false);
    add("x", 2, 1024, 64, false, false, false, true);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    const int64_t m = int64_t(in.args[4]), k = int64_t(in.args[5]);
    float* base = const_cast<float*>(t[0].ptr<float>()) + (in.args[3] != 0 ? 1 : 0);
    const Tensor x = Tensor::view(base, DType::F32, {m, k}, t[0].device, t[0].owner);
    mg::LinearFusion f;
    f.gelu = in.args[0] != 0;
    f.residual = in.args[1] != 0 ? &t[3] : nullptr;
    return be.linear_fused(x, t[1], in.args[2] != 0 ? &t[2] : nullptr, f);
  };
  return c;
}

// args {trans_b, alpha}.
DeviceOpCase matmul_row() {
  DeviceOpCase c{"matmul", kTolGemm};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Shape& a, const Shape& b, bool trans, float alpha) {
      const double flops = 2.0 * rows_of(a) * a.back() * (trans ? b[b.size() - 2] : b.back());
      v.push_back({strcat(mg::shape_str(a), " x ", mg::shape_str(b), trans ? "^T" : "", " alpha=", alpha),
                   {random(a, 30), random(b, 31)}, {double(trans), double(alpha)}, 0, flops});
    };
    if (size == Size::Full) {
      add({12, 128, 64}, {12, 128, 64}, true, 0.125f);  // T5 attention scores over a long prompt
      return v;
    }
    add({5, 7}, {7, 9}, false, 1.0f);
    add({3, 17, 33}, {3, 33, 20}, false, 0.5f);
    add({3, 17, 33}, {3, 20, 33}, true, 0.125f);
    add({2, 3, 9, 16}, {2, 3, 11, 16}, true, 1.0f);
    add({4, 10, 12}, {12, 6}, false, 2.0f);
    add({4, 10, 12}, {6, 12}, true, 1.0f);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    return be.matmul(t[0], t[1], in.args[0] != 0, float(in.args[1]));
  };
  return c;
}

// ---- elementwise ----

// add / mul with b's shape a suffix of a's (broadcast over leading dims).
DeviceOpCase binary_row(const char* name, Tensor (Backend::*op)(const Tensor&, const Tensor&)) {
  DeviceOpCase c{name, kTolElementwise};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Shape& a, const Shape& b) {
      const Tensor x = random(a, 40);
      v.push_back({mg::shape_str(a) + " and " + mg::shape_str(b), {x, random(b, 41)}, {}, 12.0 * x.numel(), 0});
    };
    if (size == Size::Full) {
      add({R, D}, {R, D});  // a residual add of the decode step
      return v;
    }
    for (auto [a, b] : {std::pair<Shape, Shape>{{7}, {7}}, {{3, 5, 129}, {3, 5, 129}}, {{3, 5, 129}, {129}},
                        {{3, 5, 129}, {5, 129}}, {{4, 33}, {1, 33}}, {{2, 100003}, {100003}}})
      add(a, b);
    return v;
  };
  c.run = [op](Backend& be, const Ts& t, const OpInputs&) { return (be.*op)(t[0], t[1]); };
  return c;
}

// scale / elu / gelu / relu on [-4, 4) (both branches of elu and relu, gelu's tails); args {param}.
DeviceOpCase unary_row(const char* name, std::vector<float> params,
                       std::function<Tensor(Backend&, const Tensor&, float)> op) {
  DeviceOpCase c{name, kTolElementwise};
  c.inputs = [params](Size size) {
    std::vector<OpInputs> v;
    const std::vector<Shape> shapes = size == Size::Full ? std::vector<Shape>{{R, F}}  // the FFN's width
                                                         : std::vector<Shape>{{1}, {3, 333}, {2, 3, 100003}};
    for (const Shape& s : shapes)
      for (float p : params) {
        const Tensor x = random(s, 50, 4.0f);
        v.push_back({strcat(mg::shape_str(s), " param ", p), {x}, {double(p)}, 8.0 * x.numel(), 0});
      }
    return v;
  };
  c.run = [op](Backend& be, const Ts& t, const OpInputs& in) { return op(be, t[0], float(in.args[0])); };
  return c;
}

// Casts move bits: exact. args {target dtype}.
DeviceOpCase cast_row() {
  DeviceOpCase c{"cast", kTolExact};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Tensor& x, DType to) {
      v.push_back({strcat(mg::dtype_name(x.dtype), mg::shape_str(x.shape), " -> ", mg::dtype_name(to)), {x},
                   {double(int(to))}, double(x.nbytes() + size_t(x.numel()) * mg::dtype_size(to)), 0});
    };
    if (size == Size::Full) {
      add(random({F, D}, 60), DType::BF16);  // a weight as the loader converts it
      return v;
    }
    const Tensor x = random({5, 1001}, 60, 300.0f);  // values that need rounding in both half types
    for (DType to : {DType::F16, DType::BF16, DType::F32}) {
      add(x, to);
      for (DType to2 : {DType::F32, DType::F16, DType::BF16}) add(to_dtype(x, to), to2);
    }
    const Tensor i32 = random_ids(DType::I32, {3, 77}, 1 << 30, 61);
    add(i32, DType::I64);
    add(to_dtype(i32, DType::I64), DType::I32);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) { return be.cast(t[0], DType(int(in.args[0]))); };
  return c;
}

// ---- normalisation and softmax ----

// Rows with a mean (x plus a per-column offset), gamma, beta; args {beta}, both ways when betas.
std::vector<OpInputs> norm_inputs(Size size, bool betas) {
  std::vector<OpInputs> v;
  const std::vector<Shape> shapes = size == Size::Full
                                        ? std::vector<Shape>{{R, D}}
                                        : std::vector<Shape>{{5, 7}, {3, 4, 129}, {2, 1024}, {1, 3000}, {33}};
  for (const Shape& s : shapes) {
    const int64_t d = s.back();
    Tensor x = random(s, 70, 2.0f);
    const Tensor offset = random({d}, 71, 3.0f);
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] += offset.f32()[i % d];
    for (bool beta : {true, false}) {
      if (!beta && !betas) continue;
      v.push_back({mg::shape_str(s) + (beta ? "" : " no beta"), {x, random({d}, 72), random({d}, 73)},
                   {double(beta)}, 8.0 * x.numel(), 0});
    }
  }
  return v;
}

DeviceOpCase layer_norm_row() {
  DeviceOpCase c{"layer_norm", kTolElementwise, [](Size size) { return norm_inputs(size, true); }};
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    return be.layer_norm(t[0], t[1], in.args[0] != 0 ? &t[2] : nullptr, 1e-5f);
  };
  return c;
}

DeviceOpCase rms_norm_row() {
  DeviceOpCase c{"rms_norm", kTolElementwise, [](Size size) { return norm_inputs(size, false); }};
  c.run = [](Backend& be, const Ts& t, const OpInputs&) { return be.rms_norm(t[0], t[1], 1e-6f); };
  return c;
}

// Peaky rows, and (small) a matrix with an all -inf row (must give zeros, not NaN), a half-masked
// and a last-masked row.
DeviceOpCase softmax_row() {
  DeviceOpCase c{"softmax", kTolElementwise};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const std::string& tag, const Tensor& x) { v.push_back({tag, {x}, {}, 8.0 * x.numel(), 0}); };
    if (size == Size::Full) {
      add("logits [2, 4, 2048]", random({R, K, V}, 90, 8.0f));
      return v;
    }
    for (const Shape& s : {Shape{5, 7}, Shape{3, 2049}, Shape{1, 1}, Shape{2, 3, 33}})
      add(mg::shape_str(s), random(s, 90, 8.0f));
    Tensor m = random({4, 37}, 91, 5.0f);
    const float inf = std::numeric_limits<float>::infinity();
    for (int i = 0; i < 37; ++i) m.f32()[37 + i] = -inf;
    for (int i = 0; i < 37; i += 2) m.f32()[2 * 37 + i] = -inf;
    m.f32()[3 * 37 + 36] = -inf;
    add("masked rows", m);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs&) { return be.softmax(t[0]); };
  return c;
}

// ---- layout ----

DeviceOpCase transpose_row() {
  DeviceOpCase c{"transpose", kTolExact};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Tensor& x) {
      v.push_back({strcat(mg::dtype_name(x.dtype), mg::shape_str(x.shape)), {x}, {}, 2.0 * x.nbytes(), 0});
    };
    if (size == Size::Full) {
      add(random({1, 512, 1500}, 130));  // the codec's LSTM input, 30 s
      return v;
    }
    for (const Shape& s : {Shape{5, 7}, Shape{3, 33, 65}, Shape{2, 3, 31, 40}, Shape{1, 1000}}) add(random(s, 130));
    add(to_dtype(random({17, 9}, 131), DType::F16));
    add(random_ids(DType::I64, {2, 4, 3}, 1 << 20, 132));
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs&) { return be.transpose(t[0]); };
  return c;
}

// args {start, len}.
DeviceOpCase narrow_last_row() {
  DeviceOpCase c{"narrow_last", kTolExact};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Tensor& x, int64_t start, int64_t len) {
      v.push_back({strcat(mg::dtype_name(x.dtype), mg::shape_str(x.shape), " start=", start, " len=", len), {x},
                   {double(start), double(len)}, 2.0 * double(x.rows() * len) * mg::dtype_size(x.dtype), 0});
    };
    if (size == Size::Full) {
      add(random({1, 1, 960064}, 180), 32, 960000);  // 30 s of 32 kHz audio trimmed
      return v;
    }
    for (auto [s, start, len] : {std::tuple<Shape, int64_t, int64_t>{{3, 10}, 2, 5}, {{2, 3, 37}, 0, 37},
                                 {{2, 3, 37}, 36, 1}, {{4, 1001}, 7, 0}, {{1, 1, 80000}, 1234, 70000},
                                 {{17}, 3, 9}}) {
      const Tensor x = random(s, 180);
      add(x, start, len);
      add(to_dtype(x, DType::F16), start, len);
      add(random_ids(DType::I64, s, 1 << 20, 181), start, len);
    }
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    return be.narrow_last(t[0], int64_t(in.args[0]), int64_t(in.args[1]));
  };
  return c;
}

// In place into an existing tensor (the KV cache): the rows around the target keep their values.
// tensors {dst, src}; args {row0}; the result is dst.
DeviceOpCase copy_rows_row() {
  DeviceOpCase c{"copy_rows", kTolExact};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Tensor& dst, const Tensor& src, int64_t row0) {
      v.push_back({strcat(mg::dtype_name(src.dtype), mg::shape_str(src.shape), " at ", row0, " of ",
                          mg::shape_str(dst.shape)),
                   {dst, src}, {double(row0)}, 2.0 * src.nbytes(), 0});
    };
    if (size == Size::Full) {
      add(random({1503, D}, 190), random({1, D}, 191), 700);  // one position into a KV cache
      return v;
    }
    for (auto [d, s, row0] : {std::tuple<Shape, Shape, int64_t>{{10, 6}, {3, 6}, 4}, {{10, 6}, {1, 6}, 0},
                              {{5, 2, 3}, {2, 2, 3}, 3}, {{2048, 24}, {1, 24}, 2047}, {{4, 7}, {0, 7}, 4}})
      add(random(d, 190), random(s, 191), row0);
    add(random_ids(DType::I32, {6, 5}, 1000, 192), random_ids(DType::I32, {2, 5}, 1000, 193), 1);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    Tensor dst = t[0];
    be.copy_rows(dst, int64_t(in.args[0]), t[1]);
    return dst;
  };
  return c;
}

// ---- embeddings ----

DeviceOpCase embedding_row() {
  DeviceOpCase c{"embedding", kTolElementwise};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const Tensor& table, const Tensor& ids) {
      v.push_back({strcat("table ", mg::dtype_name(table.dtype), mg::shape_str(table.shape), " ids ",
                          mg::dtype_name(ids.dtype), mg::shape_str(ids.shape)),
                   {table, ids}, {}, double(ids.numel()) * table.cols() * 8.0, 0});
    };
    if (size == Size::Full) {
      add(random({V + 1, D}, 140), random_ids(DType::I64, {8}, V + 1, 141));
      return v;
    }
    for (DType tt : {DType::F32, DType::F16, DType::BF16})
      for (DType it : {DType::I32, DType::I64})
        for (const Shape& s : {Shape{37}, Shape{2, 5}, Shape{1}})
          add(to_dtype(random({100, 24}, 140), tt), random_ids(it, s, 100, 141));
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs&) { return be.embedding(t[0], t[1]); };
  return c;
}

// MusicGen's summed codebook embeddings: tensors {K tables..., ids[K, N]}.
DeviceOpCase embedding_sum_row() {
  DeviceOpCase c{"embedding_sum", kTolElementwise};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    const int64_t d = size == Size::Full ? D : 48;
    for (DType it : {DType::I32, DType::I64})
      for (int64_t n : size == Size::Full ? std::vector<int64_t>{R} : std::vector<int64_t>{1, 13, 300}) {
        if (size == Size::Full && it == DType::I32) continue;
        OpInputs in{strcat(K, " tables [", V + 1, ", ", d, "] ids ", mg::dtype_name(it), " n=", n)};
        for (int k = 0; k < K; ++k) in.tensors.push_back(random({V + 1, d}, 150 + k));
        in.tensors.push_back(random_ids(it, {K, n}, V + 1, 160));
        in.bytes = double(K + 1) * n * d * 4;
        v.push_back(in);
      }
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs&) {
    std::vector<const Tensor*> tables;
    for (size_t k = 0; k + 1 < t.size(); ++k) tables.push_back(&t[k]);
    return be.embedding_sum(tables, t.back());
  };
  return c;
}

}  // namespace

void add_dense_cases(std::vector<DeviceOpCase>& rows) {
  for (DType wt : {DType::F32, DType::F16, DType::BF16}) rows.push_back(linear_row(wt));
  for (DType wt : {DType::BF16, DType::F16, DType::F32}) rows.push_back(linear_fused_row(wt));
  rows.push_back(matmul_row());
  rows.push_back(binary_row("add", &Backend::add));
  rows.push_back(binary_row("mul", &Backend::mul));
  rows.push_back(unary_row("scale", {-0.37f}, [](Backend& be, const Tensor& x, float p) { return be.scale(x, p); }));
  rows.push_back(unary_row("elu", {1.0f, 0.5f}, [](Backend& be, const Tensor& x, float p) { return be.elu(x, p); }));
  rows.push_back(unary_row("gelu", {0.0f}, [](Backend& be, const Tensor& x, float) { return be.gelu(x); }));
  rows.push_back(unary_row("relu", {0.0f}, [](Backend& be, const Tensor& x, float) { return be.relu(x); }));
  rows.push_back(cast_row());
  rows.push_back(layer_norm_row());
  rows.push_back(rms_norm_row());
  rows.push_back(softmax_row());
  rows.push_back(transpose_row());
  rows.push_back(narrow_last_row());
  rows.push_back(copy_rows_row());
  rows.push_back(embedding_row());
  rows.push_back(embedding_sum_row());
}

}  // namespace mgcases
