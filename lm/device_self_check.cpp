// See device_self_check.h.
#include "lm/device_self_check.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "codec/device_self_check.h"
#include "kernels/device_check.h"

namespace mg {
namespace {

// The tensors of one layer (undefined ones, the cross-attention of melody models, included).
std::vector<Tensor*> layer_tensors(DecoderLayer& L) {
  return {&L.sa_ln_w, &L.sa_ln_b, &L.qkv, &L.o,       &L.ca_ln_w, &L.ca_ln_b, &L.cq,
          &L.ckv,     &L.co,      &L.ff_ln_w, &L.ff_ln_b, &L.fc1, &L.fc2};
}

int64_t layer_bytes(const DecoderLayer& layer) {
  DecoderLayer L = layer;  // handles only: the data stays where it is
  int64_t n = 0;
  for (Tensor* t : layer_tensors(L)) n += t->defined() ? int64_t(t->nbytes()) : 0;
  return n;
}

Tensor to_host(Backend& device, const Tensor& t) { return t.defined() ? device.download(t) : Tensor(); }

// `dec` with only layers [first, first + n) (handles: nothing is copied).
MusicgenDecoder with_layers(const MusicgenDecoder& dec, size_t first, size_t n) {
  MusicgenDecoder d = dec;
  d.layers.assign(dec.layers.begin() + long(first), dec.layers.begin() + long(first + n));
  d.cfg.num_hidden_layers = int(n);
  return d;
}

// A fixed input in [-0.5, 0.5) (the same on every run): the self-check's text.
Tensor fixed_text(int64_t T, int64_t D) {
  Tensor t = Tensor::empty(DType::F32, {T, D});
  uint32_t x = 12345u;
  for (int64_t i = 0; i < T * D; ++i) {
    x = x * 1664525u + 1013904223u;
    t.f32()[i] = float(x >> 8) / float(1u << 24) - 0.5f;
  }
  return t;
}

// The logits of one step of `dec` on `be`: rows {fixed text, null}, two columns of fixed codes.
std::vector<float> one_step(Backend& be, const MusicgenDecoder& dec) {
  const int K = dec.cfg.num_codebooks, V = dec.cfg.vocab_size;
  const int64_t S = 2;
  std::vector<Tensor> text = {be.upload(fixed_text(3, dec.cfg.hidden_size)), Tensor()};
  DecoderState st = decoder_start(be, dec, text, S);
  std::vector<std::vector<std::vector<int>>> codes(text.size());
  for (size_t r = 0; r < codes.size(); ++r) {
    codes[r].assign(size_t(K), std::vector<int>(size_t(S)));
    for (int k = 0; k < K; ++k)
      for (int64_t s = 0; s < S; ++s) codes[r][size_t(k)][size_t(s)] = int((131 * k + 29 * s + 7 * r) % (V + 1));
  }
  Tensor logits = decoder_step(be, dec, st, codes);
  be.synchronize();
  return logits.to_vector();
}

}  // namespace

void check_decoder_on_device(const MusicgenDecoder& dec, Backend& device, int64_t host_bytes) {
  MG_CHECK(!dec.layers.empty(), "device self-check: the decoder has no layers");
  auto cpu = make_cpu_backend(0);
  // What every group shares, on the host once.
  MusicgenDecoder host = with_layers(dec, 0, 0);
  for (Tensor& e : host.embed) e = to_host(device, e);
  host.heads = to_host(device, dec.heads);
  host.ln_w = to_host(device, dec.ln_w);
  host.ln_b = to_host(device, dec.ln_b);
  host.positions = to_host(device, dec.positions);
  const size_t per_group = size_t(std::max<int64_t>(1, host_bytes / std::max<int64_t>(1, layer_bytes(dec.layers[0]))));
  for (size_t first = 0; first < dec.layers.size(); first += per_group) {
    const size_t n = std::min(per_group, dec.layers.size() - first);
    const MusicgenDecoder on_device = with_layers(dec, first, n);
    MusicgenDecoder on_host = host;
    on_host.cfg.num_hidden_layers = int(n);
    for (size_t l = first; l < first + n; ++l) {
      DecoderLayer L = dec.layers[l];
      for (Tensor* t : layer_tensors(L)) *t = to_host(device, *t);
      on_host.layers.push_back(std::move(L));
    }
    const std::string what = strcat("one decode step of the loaded model (layers ", first, " to ", first + n - 1,
                                    " of ", dec.layers.size(), ")");
    expect_matches_cpu(what, device, one_step(device, on_device), one_step(*cpu, on_host), cuda::Fault::StepCheck);
  }
}

void check_musicgen_on_device(const MusicGen& model, Backend& device, const std::string& path) {
  check_decoder_on_device(model.decoder(), device);
  check_codec_on_device(model.codec(), device, path);
}

}  // namespace mg
