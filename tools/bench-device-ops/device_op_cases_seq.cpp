// Rows of the device op case table (device_op_cases.h): attention, the KV cache and sampling, in
// their eager and recorded-step (*_at: numbers read from device memory) forms. Full shapes are
// musicgen-small's decode step: 16 heads of 64, a CFG pair of rows, a 1503-position cache.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>

#include "tools/bench-device-ops/device_op_cases.h"

namespace mgcases {
namespace {

using mg::Backend;
using mg::DType;
using mg::Shape;
using mg::strcat;
using mg::Tensor;
using Ts = std::vector<Tensor>;

constexpr int64_t D = 1024, H = 16, K = 4, V = 2048, R = 2, CAP = 1503;

float scale_of(const Tensor& k, int heads) { return 1.0f / std::sqrt(float(k.cols() / heads)); }

// Multi-head attention; tensors {q, k, v}, args {T, heads, causal}. Traps: (1) causal offsets:
// query i of S sits at position T - S + i; (2) only the first T rows of k/v are valid (a cache
// allocated for its capacity): the rows past T hold NaN and must never be read; (3) the chunked
// softmax: visible keys ending just past a chunk boundary, and peaky scores (a chunk's local max
// far below the global one).
DeviceOpCase attention_row() {
  DeviceOpCase c{"attention", kTolAttention};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](int64_t s, int64_t t, int64_t rows, int heads, int64_t dh, bool causal, float qscale) {
      const int64_t d = heads * dh;
      Tensor q = random({s, d}, 210, qscale), k = random({rows, d}, 211), vv = random({rows, d}, 212);
      for (int64_t i = t * d; i < rows * d; ++i) k.f32()[i] = vv.f32()[i] = std::numeric_limits<float>::quiet_NaN();
      v.push_back({strcat("S=", s, " T=", t, " H=", heads, " dh=", dh, causal ? " causal" : " full"),
                   {q, k, vv}, {double(t), double(heads), double(causal)}, 2.0 * t * d * 4, 0});
    };
    if (size == Size::Full) {
      add(1, 1500, CAP, int(H), D / H, true, 1.0f);  // a late decode step, one row
      return v;
    }
    add(1, 1, 8, 4, 6, true, 1.0f);           // first decode step of the tiny model
    add(1, 1500, 2048, 16, 64, true, 3.0f);   // late decode step: 12 chunks merged
    add(1, 129, 200, 4, 6, true, 3.0f);       // one key in the last chunk
    add(2, 128, 128, 4, 6, true, 3.0f);       // exactly one chunk
    add(5, 260, 300, 4, 32, true, 3.0f);      // causal queries across a boundary
    add(7, 7, 7, 2, 8, true, 1.0f);           // prefill from an empty cache
    add(300, 300, 300, 2, 16, true, 1.0f);    // melody-prefix-sized prefill
    add(20, 12, 12, 4, 6, false, 3.0f);       // cross-attention: S > T
    add(3, 77, 77, 2, 200, false, 1.0f);      // dh > 128 threads
    add(2, 300, 300, 1, 256, true, 1.0f);     // the largest head size
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    const int heads = int(in.args[1]);
    return be.attention(t[0], t[1], t[2], int64_t(in.args[0]), heads, scale_of(t[1], heads), in.args[2] != 0);
  };
  return c;
}

// R rows at once; tensors {q[R, S, Wq], k/v[R, cap, D]}, args {T, heads}.
DeviceOpCase attention_rows_row() {
  DeviceOpCase c{"attention_rows", kTolAttention};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](int64_t r, int64_t s, int64_t t, int64_t cap, int heads, int64_t d) {
      v.push_back({strcat(r, " rows S=", s, " T=", t, " of ", cap, " H=", heads),
                   {random({r, s, d}, 1), random({r, cap, d}, 2), random({r, cap, d}, 3)},
                   {double(t), double(heads)}, 2.0 * r * t * d * 4, 0});
    };
    if (size == Size::Full) {
      add(R, 1, 1500, CAP, int(H), D);
      return v;
    }
    for (int64_t s : {1, 5})
      for (int64_t t : {7, 130, 300}) add(3, s, t, 300, 4, 64);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    const int heads = int(in.args[1]);
    return be.attention_rows(t[0], t[1], t[2], int64_t(in.args[0]), heads, scale_of(t[1], heads), true);
  };
  return c;
}

// The recorded step's attention: the key count an i32 [1] on the device. Key counts on both sides of
// a chunk boundary (128), an f16 cache (both backends attend over the same f16 values) and q read
// in place from a fused q|k|v row. tensors {q, k, v, keys}, args {max_keys, heads}.
DeviceOpCase attention_rows_at_row() {
  DeviceOpCase c{"attention_rows_at", kTolAttention};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](DType kv, int64_t r, int64_t wq, int64_t cap, int heads, int64_t d, int32_t keys) {
      const Tensor k = random({r, cap, d}, 8), vv = random({r, cap, d}, 9);
      v.push_back({strcat(r, " rows, ", keys, " keys, ", mg::dtype_name(kv), " cache", wq > d ? ", wide q" : ""),
                   {random({r, 1, wq}, 7), to_dtype(k, kv), to_dtype(vv, kv), i32s({keys})},
                   {double(cap), double(heads)}, 2.0 * r * keys * d * mg::dtype_size(kv), 0});
    };
    if (size == Size::Full) {
      for (DType kv : {DType::F32, DType::F16})
        for (int32_t keys : {256, 1500}) add(kv, R, D, CAP, int(H), D, keys);
      return v;
    }
    for (int32_t keys : {1, 5, 128, 129, 257, 300}) add(DType::F32, 2, 64, 300, 4, 64, keys);
    for (int32_t keys : {5, 129, 300}) add(DType::F16, 2, 64, 300, 4, 64, keys);
    add(DType::F32, 2, 3 * 64, 300, 4, 64, 200);
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    const int heads = int(in.args[1]);
    return be.attention_rows_at(t[0], t[1], t[2], t[3], int64_t(in.args[0]), heads, scale_of(t[1], heads), true);
  };
  return c;
}

// Appends positions to a KV cache in place, the position an i32 [1] on the device; a half cache is
// written with round-to-nearest-even like the CPU's cast. tensors {cache, pos, src}, args {col0};
// the result is the whole cache (the positions around the written ones must keep their values).
DeviceOpCase write_kv_at_row() {
  DeviceOpCase c{"write_kv_at", kTolExact};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](DType kv, int64_t r, int64_t s, int64_t cap, int64_t d, int32_t pos) {
      v.push_back({strcat(r, " rows x ", s, " at ", pos, ", ", mg::dtype_name(kv), " cache of ", cap),
                   {to_dtype(random({r, cap, d}, 11), kv), i32s({pos}), random({r * s, 3 * d}, 10)},
                   {double(d)}, double(r * s * d) * (4 + mg::dtype_size(kv)), 0});
    };
    for (DType kv : {DType::F32, DType::F16}) {
      if (size == Size::Full) {
        add(kv, R, 1, CAP, D, 700);
        continue;
      }
      add(kv, 2, 1, 300, 64, 77);
      add(kv, 3, 2, 40, 24, 38);  // the last two positions
    }
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    Tensor cache = t[0];
    be.write_kv_at(cache, t[1], t[2], int64_t(in.args[0]));
    return cache;
  };
  return c;
}

// Same seed and logits, same tokens on every backend (a counter-based hash of seed, step and
// codebook). tensors {logits, seeds i64, step i32 [1]}, args {cfg, greedy, top_k, top_p, temperature}.
DeviceOpCase sample_tokens_at_row() {
  DeviceOpCase c{"sample_tokens_at", kTolExact};
  c.inputs = [](Size size) {
    std::vector<OpInputs> v;
    auto add = [&](const std::string& what, int64_t b, int64_t vocab, bool cfg, const mg::SamplerParams& p,
                   int32_t step) {
      const Tensor logits = random({cfg ? 2 * b : b, K, vocab}, 12 + uint32_t(vocab), 5.0f);
      Tensor seeds = Tensor::empty(DType::I64, {b});
      for (int64_t s = 0; s < b; ++s) seeds.ptr<int64_t>()[s] = int64_t(3 + s) | (s == 1 ? INT64_MIN : 0);
      v.push_back({strcat(cfg ? "CFG, " : "", b, " x ", K, " x ", vocab, ", ", what, ", step ", step),
                   {logits, seeds, i32s({step})},
                   {double(cfg), double(p.greedy), double(p.top_k), double(p.top_p), double(p.temperature)},
                   double(logits.nbytes()), 0});
    };
    mg::SamplerParams greedy, top_k, top_p;
    greedy.greedy = true;
    top_p.top_k = 0;
    top_p.top_p = 0.9f;
    top_p.temperature = 0.8f;
    if (size == Size::Full) {
      add("greedy", 1, V, true, greedy, 7);
      add("top-k 250", 1, V, true, top_k, 7);
      return v;
    }
    for (int64_t vocab : {V, int64_t(300)})
      for (int32_t step : {0, 999}) {
        add("greedy", 2, vocab, true, greedy, step);
        add("top-k 250", 2, vocab, true, top_k, step);
        add("top-p 0.9 t0.8", 3, vocab, false, top_p, step);
      }
    return v;
  };
  c.run = [](Backend& be, const Ts& t, const OpInputs& in) {
    mg::SamplerParams p;
    p.greedy = in.args[1] != 0;
    p.top_k = int(in.args[2]);
    p.top_p = float(in.args[3]);
    p.temperature = float(in.args[4]);
    return be.sample_tokens_at(t[0], in.args[0] != 0, 3.0f, p, t[1], t[2]);
  };
  return c;
}

}  // namespace

void add_sequence_cases(std::vector<DeviceOpCase>& rows) {
  rows.push_back(attention_row());
  rows.push_back(attention_rows_row());
  rows.push_back(attention_rows_at_row());
  rows.push_back(write_kv_at_row());
  rows.push_back(sample_tokens_at_row());
}

}  // namespace mgcases
