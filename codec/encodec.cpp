#include "codec/encodec.h"

#include <cmath>
#include <cstring>
#include <filesystem>

namespace mg {

std::unique_ptr<EncodecModel> EncodecModel::load(Backend& be, const std::string& path) {
  // A MusicGen snapshot holds its codec under "audio_encoder" (config) and "audio_encoder." (weights).
  const std::string dir = std::filesystem::is_directory(path) ? path : std::filesystem::path(path).parent_path().string();
  JsonConfig j = JsonConfig::load(dir + "/config.json");
  WeightStore weights = WeightStore::open(dir);
  if (j.has("audio_encoder")) weights = weights.with_prefix("audio_encoder.");
  return load(be, load_encodec_config(j), weights);
}

std::unique_ptr<EncodecModel> EncodecModel::load(Backend& be, const EncodecConfig& cfg, const WeightStore& w) {
  std::unique_ptr<EncodecModel> m(new EncodecModel(be, cfg));
  m->encoder_ = load_seanet_encoder(be, w, cfg);
  m->decoder_ = load_seanet_decoder(be, w, cfg);
  m->rvq_ = load_rvq(be, w, cfg);
  return m;
}

int EncodecModel::num_codebooks_for_bandwidth(double kbps) const {
  bool known = false;
  std::string list;
  for (double b : cfg_.target_bandwidths) {
    if (std::fabs(b - kbps) < 1e-9) known = true;
    list += (list.empty() ? "" : ", ") + strcat(b);
  }
  MG_CHECK(known, "bandwidth ", kbps, " kbps is not one this model supports (", list, ")");
  return cfg_.num_quantizers_for_bandwidth(kbps);
}

Tensor EncodecModel::encode_embeddings(const Tensor& x) const { return seanet_forward(be_, encoder_, be_.upload(x)); }

Tensor EncodecModel::decode_segment(const Tensor& codes) const {
  return seanet_forward(be_, decoder_, rvq_decode(be_, rvq_, codes));
}

EncodedAudio EncodecModel::encode(const Tensor& audio, double kbps) const {
  MG_CHECK(audio.ndim() == 2 && audio.dim(0) == cfg_.audio_channels && audio.dtype == DType::F32,
           "EnCodec encode: expected f32 audio [", cfg_.audio_channels, ", samples], got ", shape_str(audio.shape));
  const int64_t L = audio.dim(1), C = audio.dim(0);
  MG_CHECK(L > 0, "EnCodec encode: the audio has no samples");
  EncodedAudio out;
  out.length = L;
  out.num_codebooks = num_codebooks_for_bandwidth(kbps);
  const int64_t chunk = cfg_.chunk_length().value_or(L);
  const int64_t stride = cfg_.chunk_length() ? cfg_.chunk_stride().value_or(L) : L;
  const float* src = audio.f32();
  for (int64_t off = 0; off < L; off += stride) {
    const int64_t n = std::min(chunk, L - off);
    Tensor seg = Tensor::empty(DType::F32, {1, C, n});
    for (int64_t c = 0; c < C; ++c) std::memcpy(seg.f32() + c * n, src + c * L + off, n * sizeof(float));
    if (cfg_.normalize) {
      // scale = sqrt(mean_t(mono^2)) + 1e-8 with mono = sum over channels / C (added after the sqrt).
      double ss = 0;
      for (int64_t t = 0; t < n; ++t) {
        float m = 0;
        for (int64_t c = 0; c < C; ++c) m += seg.f32()[c * n + t];
        m /= float(C);
        ss += double(m) * m;
      }
      const float scale = float(std::sqrt(float(ss / double(n)))) + 1e-8f;
      for (int64_t i = 0; i < C * n; ++i) seg.f32()[i] /= scale;
      out.scales.push_back(scale);
    }
    out.segments.push_back(rvq_encode(be_, rvq_, encode_embeddings(seg), out.num_codebooks));
  }
  return out;
}

Tensor linear_overlap_add(const std::vector<Tensor>& frames, int64_t stride) {
  MG_CHECK(!frames.empty(), "linear_overlap_add: no frames");
  const int64_t C = frames[0].dim(0), N = frames[0].dim(1);
  const int64_t total = stride * int64_t(frames.size() - 1) + frames.back().dim(1);
  // torch.linspace(0, 1, N + 2)[1:-1] in float32: the first half counts up from 0, the second half
  // down from 1, with step = 1 / (N + 1) computed in float.
  const int64_t steps = N + 2;
  const float step = 1.0f / float(steps - 1);
  std::vector<float> weight(N);
  for (int64_t i = 1; i <= N; ++i) {
    float t = i < steps / 2 ? 0.0f + step * float(i) : 1.0f - step * float(steps - i - 1);
    weight[i - 1] = 0.5f - std::fabs(t - 0.5f);
  }
  Tensor out = Tensor::zeros(DType::F32, {C, total});
  std::vector<float> sum_w(total, 0.0f);
  int64_t off = 0;
  for (const Tensor& f : frames) {
    const int64_t n = f.dim(1);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < n; ++t) out.f32()[c * total + off + t] += weight[t] * f.f32()[c * n + t];
    for (int64_t t = 0; t < n; ++t) sum_w[off + t] += weight[t];
    off += stride;
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < total; ++t) out.f32()[c * total + t] /= sum_w[t];
  return out;
}

Tensor EncodecModel::decode(const EncodedAudio& codes) const {
  MG_CHECK(!codes.segments.empty(), "EnCodec decode: no code segments");
  MG_CHECK(cfg_.chunk_length() || codes.segments.size() == 1, "EnCodec decode: ", codes.segments.size(),
           " segments for a model that does not segment");
  MG_CHECK(codes.scales.empty() || codes.scales.size() == codes.segments.size(), "EnCodec decode: ",
           codes.scales.size(), " scales for ", codes.segments.size(), " segments");
  std::vector<Tensor> frames;
  for (size_t i = 0; i < codes.segments.size(); ++i) {
    Tensor y = be_.download(decode_segment(codes.segments[i]));
    y = y.reshape({y.dim(1), y.dim(2)});
    if (!codes.scales.empty()) {
      const float s = codes.scales[i];
      for (int64_t j = 0; j < y.numel(); ++j) y.f32()[j] *= s;
    }
    frames.push_back(y);
  }
  Tensor full = cfg_.chunk_length() ? linear_overlap_add(frames, cfg_.chunk_stride().value_or(1)) : frames[0];
  const int64_t C = full.dim(0), T = full.dim(1), L = std::min(codes.length, T);
  if (L == T) return full;
  Tensor out = Tensor::empty(DType::F32, {C, L});
  for (int64_t c = 0; c < C; ++c) std::memcpy(out.f32() + c * L, full.f32() + c * T, L * sizeof(float));
  return out;
}

}  // namespace mg
