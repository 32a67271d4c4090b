#include "train/lora_decoder.h"

#include <algorithm>
#include <cmath>

#include "kernels/common.h"
#include "kernels/cpu/train_ops.h"

namespace mg::train {

namespace tr = cpu::train;
using Vec = std::vector<float>;

DelayedBatch build_delayed_batch(const std::vector<TrainSample>& batch, const std::vector<int>& delays, int special) {
  MG_CHECK(!batch.empty(), "training batch: no samples");
  const int K = int(delays.size());
  DelayedBatch d;
  d.B = int64_t(batch.size());
  d.T = batch[0].codes.empty() ? 0 : int64_t(batch[0].codes[0].size());
  MG_CHECK(d.T >= 1, "training batch: samples have no frames");
  d.ids.assign(K, std::vector<int32_t>(size_t(d.B * d.T), special));
  d.targets.assign(size_t(d.B * d.T * K), -1);
  for (int64_t b = 0; b < d.B; ++b) {
    const auto& c = batch[b].codes;
    MG_CHECK(int(c.size()) == K, "training batch: sample ", b, " has ", c.size(), " codebooks, the model ", K);
    for (int k = 0; k < K; ++k) {
      MG_CHECK(int64_t(c[k].size()) == d.T, "training batch: sample ", b, " codebook ", k, " has ", c[k].size(),
               " frames, the batch ", d.T, " (segments of one batch must have one length)");
      for (int64_t s = 0; s < d.T; ++s) {
        const int64_t in = s - 1 - delays[k], out = s - delays[k];
        if (in >= 0) d.ids[k][b * d.T + s] = c[k][in];
        if (out >= 0) {
          MG_CHECK(c[k][out] >= 0 && c[k][out] < special, "training batch: code ", c[k][out], " of sample ", b,
                   " is outside [0, ", special, ")");
          d.targets[(b * d.T + s) * K + k] = c[k][out];
        }
      }
    }
  }
  return d;
}

LoraAdapter zero_like(const LoraAdapter& adapter) {
  LoraAdapter g = adapter;
  for (LoraWeights& w : g.weights) {
    w.A = Tensor::zeros(DType::F32, w.A.shape);
    w.B = Tensor::zeros(DType::F32, w.B.shape);
  }
  return g;
}

namespace {

// One call of an adapted linear's LoRA branch: its dropout mask and cache.
struct LoraCall {
  std::vector<uint8_t> keep;
  tr::LoraCache cache;
};

// What the backward of one decoder layer needs from its forward.
struct LayerCache {
  Vec x_in, x_mid1, x_mid2;               // residual stream entering each sub-block [N, D]
  Vec h1, h2, h3, m1, m2, m3, r1, r2, r3;  // layer-norm outputs and statistics
  Vec qkv, probs, att;                     // self-attention: [N, 3D], [B, H, T, T], [N, D]
  Vec cq, cross;                           // cross-attention query and output [N, D]
  std::vector<Vec> ckv, cprobs;            // per sample: [T_text, 2D], [H, T, T_text]
  Vec u, g;                                // FFN pre- and post-GELU [N, F]
  LoraCall q, k, v, o, cqc, co, f1, f2;
  std::vector<LoraCall> ck, cv;            // per sample
};

// The forward/backward state of a batch (kept for the backward).
struct Pass {
  const cpu::Exec& ex;
  const LoraAdapter& ad;
  float dropout;
  std::mt19937_64* rng;
  int64_t N, B, T, D, F;
  int H;
  float att_scale;
  std::vector<LayerCache> layers;
  Vec xf, hf, mf, rf;  // before and after the final layer norm
};

// The LoRA branch of (layer, module) on x [n, I] into y [n, O] (nothing when not adapted).
void lora_fwd(Pass& p, int layer, LoraModule m, const float* x, int64_t ldx, int64_t n, int64_t I, int64_t O,
              tr::MatView y, LoraCall& call) {
  const LoraWeights* w = p.ad.find(layer, m);
  if (!w) return;
  call.keep.clear();
  if (p.dropout > 0.0f && p.rng) {
    call.keep.resize(size_t(n * I));
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (uint8_t& k : call.keep) k = u(*p.rng) >= p.dropout;
  }
  tr::lora_forward(p.ex, x, ldx, w->A.f32(), w->B.f32(), n, I, O, w->A.dim(0), p.ad.config.scale(), call.keep,
                   p.dropout, y, call.cache);
}

void lora_bwd(Pass& p, LoraAdapter& grads, int layer, LoraModule m, const float* dy, int64_t lddy, const float* x,
              int64_t ldx, int64_t n, int64_t I, int64_t O, tr::MatView dx, const LoraCall& call) {
  const LoraWeights* w = p.ad.find(layer, m);
  if (!w) return;
  LoraWeights* g = grads.find(layer, m);
  tr::lora_backward(p.ex, dy, lddy, x, ldx, w->A.f32(), w->B.f32(), n, I, O, w->A.dim(0), p.ad.config.scale(),
                    call.keep, p.dropout, call.cache, g->A.f32(), g->B.f32(), dx);
}

bool adapted(const Pass& p, int layer, LoraModule m) { return p.ad.find(layer, m) != nullptr; }

void layer_forward(Pass& p, const DecoderLayer& L, int l, const std::vector<TrainSample>& batch, Vec& x) {
  const int64_t N = p.N, D = p.D, F = p.F, T = p.T;
  const int H = p.H;
  LayerCache& c = p.layers[l];
  auto ln = [&](const Tensor& w, const Tensor& b, Vec& h, Vec& m, Vec& r) {
    h.resize(N * D), m.resize(N), r.resize(N);
    tr::layer_norm_forward(p.ex, x.data(), w.f32(), b.f32(), N, D, 1e-5f, h.data(), m.data(), r.data());
  };
  // Self-attention.
  c.x_in = x;
  ln(L.sa_ln_w, L.sa_ln_b, c.h1, c.m1, c.r1);
  c.qkv.assign(N * 3 * D, 0.0f);
  tr::linear_forward(p.ex, c.h1.data(), D, L.qkv.f32(), N, D, 3 * D, {c.qkv.data(), 3 * D}, 0.0f);
  lora_fwd(p, l, LoraModule::SelfQ, c.h1.data(), D, N, D, D, {c.qkv.data(), 3 * D}, c.q);
  lora_fwd(p, l, LoraModule::SelfK, c.h1.data(), D, N, D, D, {c.qkv.data() + D, 3 * D}, c.k);
  lora_fwd(p, l, LoraModule::SelfV, c.h1.data(), D, N, D, D, {c.qkv.data() + 2 * D, 3 * D}, c.v);
  c.att.assign(N * D, 0.0f);
  c.probs.assign(p.B * H * T * T, 0.0f);
  for (int64_t b = 0; b < p.B; ++b) {
    const float* qkv = c.qkv.data() + b * T * 3 * D;
    tr::attention_forward(p.ex, qkv, 3 * D, qkv + D, 3 * D, qkv + 2 * D, 3 * D, T, T, H, D / H, p.att_scale, true,
                          c.att.data() + b * T * D, D, c.probs.data() + b * H * T * T);
  }
  tr::linear_forward(p.ex, c.att.data(), D, L.o.f32(), N, D, D, {x.data(), D}, 1.0f);
  lora_fwd(p, l, LoraModule::SelfO, c.att.data(), D, N, D, D, {x.data(), D}, c.o);

  // Cross-attention to each sample's text (a null text contributes exactly zero).
  c.x_mid1 = x;
  ln(L.ca_ln_w, L.ca_ln_b, c.h2, c.m2, c.r2);
  c.cq.assign(N * D, 0.0f);
  tr::linear_forward(p.ex, c.h2.data(), D, L.cq.f32(), N, D, D, {c.cq.data(), D}, 0.0f);
  lora_fwd(p, l, LoraModule::CrossQ, c.h2.data(), D, N, D, D, {c.cq.data(), D}, c.cqc);
  c.cross.assign(N * D, 0.0f);
  c.ckv.assign(p.B, {});
  c.cprobs.assign(p.B, {});
  c.ck.assign(p.B, {});
  c.cv.assign(p.B, {});
  for (int64_t b = 0; b < p.B; ++b) {
    const Tensor& text = batch[b].text;
    if (!text.defined()) continue;
    const int64_t Tt = text.dim(0);
    Vec& kv = c.ckv[b];
    kv.assign(Tt * 2 * D, 0.0f);
    tr::linear_forward(p.ex, text.f32(), D, L.ckv.f32(), Tt, D, 2 * D, {kv.data(), 2 * D}, 0.0f);
    lora_fwd(p, l, LoraModule::CrossK, text.f32(), D, Tt, D, D, {kv.data(), 2 * D}, c.ck[b]);
    lora_fwd(p, l, LoraModule::CrossV, text.f32(), D, Tt, D, D, {kv.data() + D, 2 * D}, c.cv[b]);
    c.cprobs[b].assign(H * T * Tt, 0.0f);
    tr::attention_forward(p.ex, c.cq.data() + b * T * D, D, kv.data(), 2 * D, kv.data() + D, 2 * D, T, Tt, H, D / H,
                          p.att_scale, false, c.cross.data() + b * T * D, D, c.cprobs[b].data());
  }
  tr::linear_forward(p.ex, c.cross.data(), D, L.co.f32(), N, D, D, {x.data(), D}, 1.0f);
  lora_fwd(p, l, LoraModule::CrossO, c.cross.data(), D, N, D, D, {x.data(), D}, c.co);

  // Feed-forward.
  c.x_mid2 = x;
  ln(L.ff_ln_w, L.ff_ln_b, c.h3, c.m3, c.r3);
  c.u.assign(N * F, 0.0f);
  tr::linear_forward(p.ex, c.h3.data(), D, L.fc1.f32(), N, D, F, {c.u.data(), F}, 0.0f);
  lora_fwd(p, l, LoraModule::Fc1, c.h3.data(), D, N, D, F, {c.u.data(), F}, c.f1);
  c.g.resize(N * F);
  tr::gelu_forward(p.ex, c.u.data(), c.g.data(), N * F);
  tr::linear_forward(p.ex, c.g.data(), F, L.fc2.f32(), N, F, D, {x.data(), D}, 1.0f);
  lora_fwd(p, l, LoraModule::Fc2, c.g.data(), F, N, F, D, {x.data(), D}, c.f2);
}

// dx: the gradient of the residual stream leaving layer l, turned into the one entering it.
void layer_backward(Pass& p, const DecoderLayer& L, int l, const std::vector<TrainSample>& batch, LoraAdapter& grads,
                    Vec& dx) {
  const int64_t N = p.N, D = p.D, F = p.F, T = p.T;
  const int H = p.H;
  const LayerCache& c = p.layers[l];
  // Feed-forward: x_out = x_mid2 + fc2(gelu(fc1(ln3(x_mid2)))).
  Vec dg(N * F, 0.0f), du(N * F, 0.0f), dh(N * D, 0.0f);
  tr::linear_backward_input(p.ex, dx.data(), D, L.fc2.f32(), N, F, D, {dg.data(), F});
  lora_bwd(p, grads, l, LoraModule::Fc2, dx.data(), D, c.g.data(), F, N, F, D, {dg.data(), F}, c.f2);
  tr::gelu_backward(p.ex, dg.data(), c.u.data(), du.data(), N * F);
  tr::linear_backward_input(p.ex, du.data(), F, L.fc1.f32(), N, D, F, {dh.data(), D});
  lora_bwd(p, grads, l, LoraModule::Fc1, du.data(), F, c.h3.data(), D, N, D, F, {dh.data(), D}, c.f1);
  tr::layer_norm_backward(p.ex, dh.data(), c.x_mid2.data(), L.ff_ln_w.f32(), c.m3.data(), c.r3.data(), N, D,
                          dx.data());

  // Cross-attention: x_mid2 = x_mid1 + co(attn(cq(ln2(x_mid1)), ckv(text))).
  Vec dcross(N * D, 0.0f), dcq(N * D, 0.0f);
  tr::linear_backward_input(p.ex, dx.data(), D, L.co.f32(), N, D, D, {dcross.data(), D});
  lora_bwd(p, grads, l, LoraModule::CrossO, dx.data(), D, c.cross.data(), D, N, D, D, {dcross.data(), D}, c.co);
  const bool kv_adapted = adapted(p, l, LoraModule::CrossK) || adapted(p, l, LoraModule::CrossV);
  for (int64_t b = 0; b < p.B; ++b) {
    const Tensor& text = batch[b].text;
    if (!text.defined()) continue;
    const int64_t Tt = text.dim(0);
    const Vec& kv = c.ckv[b];
    Vec dkv(kv_adapted ? Tt * 2 * D : 0, 0.0f);
    tr::attention_backward(p.ex, dcross.data() + b * T * D, D, c.cq.data() + b * T * D, D, kv.data(), 2 * D,
                           kv.data() + D, 2 * D, c.cprobs[b].data(), T, Tt, H, D / H, p.att_scale,
                           dcq.data() + b * T * D, D, kv_adapted ? dkv.data() : nullptr, 2 * D,
                           kv_adapted ? dkv.data() + D : nullptr, 2 * D);
    if (!kv_adapted) continue;
    lora_bwd(p, grads, l, LoraModule::CrossK, dkv.data(), 2 * D, text.f32(), D, Tt, D, D, {}, c.ck[b]);
    lora_bwd(p, grads, l, LoraModule::CrossV, dkv.data() + D, 2 * D, text.f32(), D, Tt, D, D, {}, c.cv[b]);
  }
  std::fill(dh.begin(), dh.end(), 0.0f);
  tr::linear_backward_input(p.ex, dcq.data(), D, L.cq.f32(), N, D, D, {dh.data(), D});
  lora_bwd(p, grads, l, LoraModule::CrossQ, dcq.data(), D, c.h2.data(), D, N, D, D, {dh.data(), D}, c.cqc);
  tr::layer_norm_backward(p.ex, dh.data(), c.x_mid1.data(), L.ca_ln_w.f32(), c.m2.data(), c.r2.data(), N, D,
                          dx.data());

  // Self-attention: x_mid1 = x_in + o(attn(qkv(ln1(x_in)))).
  Vec datt(N * D, 0.0f), dqkv(N * 3 * D, 0.0f);
  tr::linear_backward_input(p.ex, dx.data(), D, L.o.f32(), N, D, D, {datt.data(), D});
  lora_bwd(p, grads, l, LoraModule::SelfO, dx.data(), D, c.att.data(), D, N, D, D, {datt.data(), D}, c.o);
  for (int64_t b = 0; b < p.B; ++b) {
    const float* qkv = c.qkv.data() + b * T * 3 * D;
    float* d = dqkv.data() + b * T * 3 * D;
    tr::attention_backward(p.ex, datt.data() + b * T * D, D, qkv, 3 * D, qkv + D, 3 * D, qkv + 2 * D, 3 * D,
                           c.probs.data() + b * H * T * T, T, T, H, D / H, p.att_scale, d, 3 * D, d + D, 3 * D,
                           d + 2 * D, 3 * D);
  }
  std::fill(dh.begin(), dh.end(), 0.0f);
  tr::linear_backward_input(p.ex, dqkv.data(), 3 * D, L.qkv.f32(), N, D, 3 * D, {dh.data(), D});
  lora_bwd(p, grads, l, LoraModule::SelfQ, dqkv.data(), 3 * D, c.h1.data(), D, N, D, D, {dh.data(), D}, c.q);
  lora_bwd(p, grads, l, LoraModule::SelfK, dqkv.data() + D, 3 * D, c.h1.data(), D, N, D, D, {dh.data(), D}, c.k);
  lora_bwd(p, grads, l, LoraModule::SelfV, dqkv.data() + 2 * D, 3 * D, c.h1.data(), D, N, D, D, {dh.data(), D}, c.v);
  tr::layer_norm_backward(p.ex, dh.data(), c.x_in.data(), L.sa_ln_w.f32(), c.m1.data(), c.r1.data(), N, D,
                          dx.data());
}

// The whole forward: fills p's caches, returns the logits [N, K * V].
Vec forward(Pass& p, const MusicgenDecoder& dec, const DelayedBatch& db, const std::vector<TrainSample>& batch) {
  const int K = dec.cfg.num_codebooks;
  const int64_t V = dec.cfg.vocab_size;
  MG_CHECK(db.T <= dec.cfg.max_position_embeddings, "training: segments of ", db.T, " frames exceed the decoder's ",
           dec.cfg.max_position_embeddings, " positions; use shorter segments");
  for (const TrainSample& s : batch)
    MG_CHECK(!s.text.defined() || (s.text.ndim() == 2 && s.text.dim(1) == p.D && s.text.dtype == DType::F32),
             "training: a text condition must be host f32 [T_text, ", p.D, "], got ", shape_str(s.text.shape));
  std::vector<const float*> tables;
  std::vector<const int32_t*> ids;
  for (int k = 0; k < K; ++k) {
    tables.push_back(dec.embed[k].f32());
    ids.push_back(db.ids[k].data());
  }
  std::vector<int32_t> pos(p.N);
  for (int64_t r = 0; r < p.N; ++r) pos[r] = int32_t(r % p.T);
  Vec x(p.N * p.D);
  tr::embedding_sum_forward(tables, ids, dec.positions.f32(), pos.data(), p.N, p.D, x.data());
  p.layers.assign(dec.layers.size(), {});
  for (size_t l = 0; l < dec.layers.size(); ++l) layer_forward(p, dec.layers[l], int(l), batch, x);
  p.xf = std::move(x);
  p.hf.resize(p.N * p.D), p.mf.resize(p.N), p.rf.resize(p.N);
  tr::layer_norm_forward(p.ex, p.xf.data(), dec.ln_w.f32(), dec.ln_b.f32(), p.N, p.D, 1e-5f, p.hf.data(),
                         p.mf.data(), p.rf.data());
  Vec logits(p.N * K * V);
  tr::linear_forward(p.ex, p.hf.data(), p.D, dec.heads.f32(), p.N, p.D, K * V, {logits.data(), K * V}, 0.0f);
  return logits;
}

}  // namespace

LoraTrainingModel::LoraTrainingModel(const MusicgenDecoder& dec, std::vector<int> delays)
    : dec_(dec), delays_(std::move(delays)) {
  MG_CHECK(dec.cross_attention, "LoRA training: melody decoders (no cross-attention) are not supported");
  MG_CHECK(int(delays_.size()) == dec.cfg.num_codebooks, "LoRA training: ", delays_.size(), " delays for ",
           dec.cfg.num_codebooks, " codebooks");
  MG_CHECK(dec.heads.dtype == DType::F32 && dec.heads.device == Device::CPU,
           "LoRA training needs the decoder's weights as host f32 (load it on the CPU backend with f32 weights)");
}

LossResult LoraTrainingModel::forward_backward(const cpu::Exec& ex, const LoraAdapter& adapter,
                                               const std::vector<TrainSample>& batch, LoraAdapter* grads,
                                               float grad_scale, std::mt19937_64* rng) const {
  const DelayedBatch db = build_delayed_batch(batch, delays_, dec_.cfg.vocab_size);
  const int K = dec_.cfg.num_codebooks;
  const int64_t V = dec_.cfg.vocab_size;
  const float dropout = grads ? adapter.config.lora_dropout : 0.0f;
  MG_CHECK(dropout == 0.0f || rng, "LoRA training: dropout ", dropout, " needs a random generator");
  Pass p{ex, adapter, dropout, rng, db.B * db.T, db.B, db.T, dec_.cfg.hidden_size, dec_.cfg.ffn_dim,
         dec_.cfg.num_attention_heads, 0.0f, {}, {}, {}, {}, {}};
  p.att_scale = 1.0f / std::sqrt(float(p.D / p.H));
  Vec logits = forward(p, dec_, db, batch);
  LossResult res;
  Vec dlogits(grads ? logits.size() : 0);
  res.loss = tr::cross_entropy_forward_backward(ex, logits.data(), db.targets.data(), p.N, K, V, grad_scale,
                                                grads ? dlogits.data() : nullptr, &res.per_codebook);
  if (!grads) return res;
  logits.clear();
  logits.shrink_to_fit();
  Vec dh(p.N * p.D, 0.0f), dx(p.N * p.D, 0.0f);
  tr::linear_backward_input(ex, dlogits.data(), K * V, dec_.heads.f32(), p.N, p.D, K * V, {dh.data(), p.D});
  dlogits.clear();
  dlogits.shrink_to_fit();
  tr::layer_norm_backward(ex, dh.data(), p.xf.data(), dec_.ln_w.f32(), p.mf.data(), p.rf.data(), p.N, p.D, dx.data());
  for (int l = int(dec_.layers.size()) - 1; l >= 0; --l) {
    layer_backward(p, dec_.layers[l], l, batch, *grads, dx);
    p.layers[l] = {};  // its activations are no longer needed
  }
  return res;
}

std::vector<float> LoraTrainingModel::logits(const cpu::Exec& ex, const LoraAdapter& adapter,
                                             const std::vector<TrainSample>& batch) const {
  const DelayedBatch db = build_delayed_batch(batch, delays_, dec_.cfg.vocab_size);
  Pass p{ex, adapter, 0.0f, nullptr, db.B * db.T, db.B, db.T, dec_.cfg.hidden_size, dec_.cfg.ffn_dim,
         dec_.cfg.num_attention_heads, 0.0f, {}, {}, {}, {}, {}};
  p.att_scale = 1.0f / std::sqrt(float(p.D / p.H));
  return forward(p, dec_, db, batch);
}

}  // namespace mg::train
