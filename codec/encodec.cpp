// The EnCodec model (encodec's model.py / HF's EncodecModel): segments, renormalisation, the
// SEANet halves and the RVQ, plus the windowed pass that keeps memory bounded on long audio.
//
// Windowed processing of the unsegmented models (24 kHz, 32 kHz), and how it relates to the
// whole-file pass the reference does:
//  - Every SEANet is [LSTM-free convs] -> LSTM (+skip) -> [LSTM-free convs]. Convolutions have a
//    finite receptive field (seanet_timing computes it from kernels, strides and paddings), so
//    each window of code frames is run on its input extended by that many frames on both sides
//    (clipped at the file's ends, where the real edge padding then applies exactly as in the
//    whole-file pass; windows start on a hop boundary so every stride lines up). The outputs kept
//    depend only on inputs inside the extended window: the same numbers as the whole-file pass.
//  - The LSTM runs at the frame rate over a buffer of all frames (C x T floats: 123 MB for 10 min
//    of the full 32 kHz model), chunk by chunk with its state carried over: the backend's own LSTM
//    op, started from the (h, c) the previous chunk left on the device, so the same kernel and the
//    same recurrence as one whole-sequence call.
//  - What can differ is float rounding only: a GEMM may sum in another order for another matrix
//    width (the convolutions of a window, the LSTM's input projection of a chunk); the recurrent
//    step itself does not depend on where a chunk starts. Measured on the tiny models
//    (tests/parity/encodec_test.cpp, windows of a few frames): identical codes and decoded audio
//    within ~1e-6 relative error.
//  - Inputs of at most one window go through exactly the whole-file path.
//  - The encoder and the decoder run the same three phases (run_windowed: convs by window, LSTM
//    by chunk, convs by window); only what feeds the first (audio, or the RVQ's decoded codes) and
//    what takes the last (the RVQ's encode, or the audio) differ.
// The 48 kHz model is segmented by the reference itself (1 s, GroupNorm over the segment), so it
// runs segment by segment, with a running overlap-add.
#include "codec/encodec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <utility>

#include "kernels/host_buffer_cache.h"

namespace mg {

namespace {

// Columns [a, b) of a host [C, T] tensor, as a new [C, b - a] tensor (any dtype).
Tensor slice_cols(const Tensor& x, int64_t a, int64_t b) {
  const int64_t C = x.dim(0), T = x.dim(1), n = b - a;
  const size_t es = dtype_size(x.dtype);
  Tensor out = Tensor::empty(x.dtype, {C, n});
  for (int64_t c = 0; c < C; ++c)
    std::memcpy(static_cast<char*>(out.data) + size_t(c * n) * es,
                static_cast<const char*>(x.data) + size_t(c * T + a) * es, size_t(n) * es);
  return out;
}

// dst[:, at : at + n] = src[:, from : from + n] for host [C, *] tensors of one dtype.
void put_cols(Tensor& dst, int64_t at, const Tensor& src, int64_t from, int64_t n) {
  const int64_t C = dst.dim(0), Td = dst.dim(1), Ts = src.dim(src.ndim() - 1);
  const size_t es = dtype_size(dst.dtype);
  for (int64_t c = 0; c < C; ++c)
    std::memcpy(static_cast<char*>(dst.data) + size_t(c * Td + at) * es,
                static_cast<const char*>(src.data) + size_t(c * Ts + from) * es, size_t(n) * es);
}

// encodec's _linear_overlap_add, one frame at a time (so a long file never holds all frames).
class OverlapAdd {
 public:
  OverlapAdd(int64_t channels, int64_t first_frame_len, int64_t stride, int64_t total)
      : stride_(stride), out_(Tensor::zeros(DType::F32, {channels, total})), sum_w_(size_t(total), 0.0f) {
    // torch.linspace(0, 1, N + 2)[1:-1] in float32: the first half counts up from 0, the second
    // half down from 1, with step = 1 / (N + 1) computed in float.
    const int64_t N = first_frame_len, steps = N + 2;
    const float step = 1.0f / float(steps - 1);
    weight_.resize(size_t(N));
    for (int64_t i = 1; i <= N; ++i) {
      const float t = i < steps / 2 ? 0.0f + step * float(i) : 1.0f - step * float(steps - i - 1);
      weight_[size_t(i - 1)] = 0.5f - std::fabs(t - 0.5f);
    }
  }
  // frame [C, n] starting at index * stride; a shorter last frame takes the triangle's left part.
  void add(const Tensor& f, int64_t index) {
    const int64_t C = out_.dim(0), total = out_.dim(1), n = f.dim(1), off = index * stride_;
    MG_CHECK(n <= int64_t(weight_.size()) && off + n <= total, "overlap-add: frame ", index, " of ", n,
             " samples does not fit");
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < n; ++t) out_.f32()[c * total + off + t] += weight_[size_t(t)] * f.f32()[c * n + t];
    for (int64_t t = 0; t < n; ++t) sum_w_[size_t(off + t)] += weight_[size_t(t)];
  }
  Tensor finish() {
    const int64_t C = out_.dim(0), total = out_.dim(1);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < total; ++t) out_.f32()[c * total + t] /= sum_w_[size_t(t)];
    return out_;
  }

 private:
  int64_t stride_;
  Tensor out_;
  std::vector<float> sum_w_;
  std::vector<float> weight_;
};

// The input range [a, b) (in coarse steps, of n in all) for the outputs [f0, f1): extended by the
// margin, and never shorter than 2 * margin + 8 steps (or the whole input). The floor matters at
// the file's ends: there the reference pads by reflection, which on an input no longer than the pad
// takes encodec's zero-extend path (pad1d); a window cut short near the end would take that path
// where the whole-file pass does not, and reflect from other samples.
std::pair<int64_t, int64_t> window_range(int64_t f0, int64_t f1, int64_t margin, int64_t n) {
  const int64_t min_len = 2 * margin + 8;
  int64_t a = std::max<int64_t>(0, f0 - margin), b = std::min(n, f1 + margin);
  if (b - a < min_len) {
    if (a == 0) b = std::min(n, min_len);
    else a = std::max<int64_t>(0, b - min_len);
  }
  return {a, b};
}

}  // namespace

EncodecModel::EncodecModel(Backend& be, const EncodecConfig& cfg) : be_(be), cfg_(cfg) {
  window_frames_ = int64_t(cfg.frame_rate()) * 5;
}

void EncodecModel::set_window_frames(int64_t frames) {
  MG_CHECK(frames >= 1, "EnCodec: window of ", frames, " frames must be at least 1");
  window_frames_.store(frames, std::memory_order_relaxed);
}

std::unique_ptr<EncodecModel> EncodecModel::load(Backend& be, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  MG_CHECK(fs::exists(path, ec), "EnCodec model folder '", path, "' does not exist");
  // A MusicGen snapshot holds its codec under "audio_encoder" (config) and "audio_encoder." (weights).
  const std::string dir = fs::is_directory(path, ec) ? path : fs::path(path).parent_path().string();
  MG_CHECK(fs::exists(fs::path(dir) / "config.json", ec), "'", dir,
           "' is not a model snapshot: it has no config.json (expected an EnCodec or MusicGen folder from "
           "the Hugging Face Hub)");
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
  MG_CHECK(known, "bandwidth ", kbps, " kbps is not one this model supports (", list, " kbps)");
  return cfg_.num_quantizers_for_bandwidth(kbps);
}

Tensor EncodecModel::encode_embeddings(Backend& be, const Tensor& x) const {
  return seanet_forward(be, encoder_, be.upload(x));
}

Tensor EncodecModel::decode_segment(Backend& be, const Tensor& codes) const {
  return seanet_forward(be, decoder_, rvq_decode(be, rvq_, codes));
}

namespace {

// The LSTM layer of `net` over the host buffer buf[C, T], in place, `chunk` frames at a time with
// the state carried on the device from chunk to chunk (one chunk: the whole sequence at once).
void lstm_in_place(Backend& be, const Seanet& net, size_t li, Tensor& buf, int64_t chunk) {
  const int64_t T = buf.dim(1);
  LstmState state;
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t t1 = std::min(T, t0 + chunk);
    Tensor x = be.transpose(be.upload(slice_cols(buf, t0, t1)));  // [n, C]
    Tensor y = seanet_lstm_forward(be, net.layers[li], x, &state);
    put_cols(buf, t0, be.download(be.transpose(y)), 0, t1 - t0);
  }
}

// The three phases of a windowed SEANet pass over T code frames, W frames at a time:
//  1. the convolutions before the LSTM, window by window, each on its input extended by their
//     receptive field (`input(a, b)`: the layer list's input for frames [a, b), on the device),
//     into a host buffer at the frame rate;
//  2. the LSTM over that buffer, chunk by chunk, its state carried over;
//  3. the convolutions after it, window by window, over frames [0, out_frames) only: `output(f0,
//     f1, a, y)` gets y, the device output for the extended window starting at frame a, whose
//     frames [f0, f1) are the ones to keep.
// `down` / `up`: the strides the layers before / after the LSTM must have (the encoder
// down-samples first, the decoder up-samples last); `what` names the net in the error.
void run_windowed(Backend& be, const Seanet& net, int64_t T, int64_t W, int64_t out_frames, int64_t down, int64_t up,
                  const char* what, const std::function<Tensor(int64_t a, int64_t b)>& input,
                  const std::function<void(int64_t f0, int64_t f1, int64_t a, const Tensor& y)>& output) {
  const size_t li = seanet_lstm_index(net), n = net.layers.size();
  const SeanetTiming pre = seanet_timing(net, 0, li), post = seanet_timing(net, li + 1, n);
  MG_CHECK(pre.down == down && pre.up == 1 && post.down == 1 && post.up == up, what, ": unexpected strides");
  Tensor buf;
  for (int64_t f0 = 0; f0 < T; f0 += W) {
    const int64_t f1 = std::min(T, f0 + W);
    const auto [a, b] = window_range(f0, f1, pre.margin, T);
    Tensor y = be.download(seanet_forward_range(be, net, 0, li, input(a, b)));
    y = y.reshape({y.dim(1), y.dim(2)});
    if (!buf.defined()) buf = Tensor::empty(DType::F32, {y.dim(0), T});
    put_cols(buf, f0, y, f0 - a, f1 - f0);
  }
  lstm_in_place(be, net, li, buf, W);
  for (int64_t f0 = 0; f0 < out_frames; f0 += W) {
    const int64_t f1 = std::min(T, f0 + W);
    const auto [a, b] = window_range(f0, f1, post.margin, T);
    Tensor x = be.upload(slice_cols(buf, a, b).reshape({1, buf.dim(0), b - a}));
    output(f0, f1, a, seanet_forward_range(be, net, li + 1, n, x));
  }
}

}  // namespace

Tensor EncodecModel::encode_windowed(Backend& be, const Tensor& audio, int nq) const {
  const int64_t C = audio.dim(0), L = audio.dim(1), hop = cfg_.hop_length();
  const int64_t T = (L + hop - 1) / hop;
  auto input = [&](int64_t a, int64_t b) {
    const int64_t end = std::min(L, b * hop);
    return be.upload(slice_cols(audio, a * hop, end).reshape({1, C, end - a * hop}));
  };
  // The embeddings go through the RVQ window by window (cheap at the frame rate).
  Tensor codes = Tensor::empty(DType::I64, {nq, T});
  auto output = [&](int64_t f0, int64_t f1, int64_t a, Tensor emb) {
    if (a != f0 || emb.cols() != f1 - f0) emb = be.narrow_last(emb, f0 - a, f1 - f0);
    put_cols(codes, f0, rvq_encode(be, rvq_, emb, nq), 0, f1 - f0);
  };
  run_windowed(be, encoder_, T, window_frames(), T, hop, 1, "EnCodec encoder", input, output);
  return codes;
}

Tensor EncodecModel::decode_windowed(Backend& be, const Tensor& codes, int64_t length) const {
  const int64_t T = codes.dim(1), hop = cfg_.hop_length();
  MG_CHECK(T >= 1, "EnCodec decode: no code frames");
  const int64_t L = std::min(length, T * hop);
  auto input = [&](int64_t a, int64_t b) { return rvq_decode(be, rvq_, slice_cols(codes, a, b)); };
  Tensor out;
  auto output = [&](int64_t f0, int64_t f1, int64_t a, const Tensor& dev) {
    Tensor y = be.download(dev);
    y = y.reshape({y.dim(1), y.dim(2)});
    if (!out.defined()) out = Tensor::empty(DType::F32, {y.dim(0), L});
    put_cols(out, f0 * hop, y, (f0 - a) * hop, std::min(f1 * hop, L) - f0 * hop);
  };
  // Only the windows that reach into the first L samples are decoded past the LSTM.
  run_windowed(be, decoder_, T, window_frames(), (L + hop - 1) / hop, 1, hop, "EnCodec decoder", input, output);
  return out;
}

EncodedAudio EncodecModel::encode(Backend& be, const Tensor& audio, double kbps) const {
  const HostBufferReuse reuse;  // large activations are reused between windows (host_buffer_cache.h)
  MG_CHECK(audio.ndim() == 2 && audio.dim(0) == cfg_.audio_channels && audio.dtype == DType::F32 &&
               audio.device == Device::CPU,
           "EnCodec encode: expected host f32 audio [", cfg_.audio_channels, ", samples], got ", shape_str(audio.shape));
  const int64_t L = audio.dim(1), C = audio.dim(0);
  MG_CHECK(L > 0, "EnCodec encode: the audio has no samples");
  EncodedAudio out;
  out.length = L;
  out.num_codebooks = num_codebooks_for_bandwidth(kbps);
  if (!cfg_.chunk_length()) {
    out.segments.push_back(encode_windowed(be, audio, out.num_codebooks));
    return out;
  }
  const int64_t chunk = *cfg_.chunk_length();
  const int64_t stride = cfg_.chunk_stride().value_or(chunk);
  for (int64_t off = 0; off < L; off += stride) {
    const int64_t n = std::min(chunk, L - off);
    Tensor seg = slice_cols(audio, off, off + n).reshape({1, C, n});
    if (cfg_.normalize) out.scales.push_back(normalize_segment(seg));
    out.segments.push_back(rvq_encode(be, rvq_, encode_embeddings(be, seg), out.num_codebooks));
  }
  return out;
}

float normalize_segment(Tensor& seg) {
  const int64_t C = seg.dim(1), n = seg.dim(2);
  double ss = 0;
  for (int64_t t = 0; t < n; ++t) {
    float m = 0;
    for (int64_t c = 0; c < C; ++c) m += seg.f32()[c * n + t];
    m /= float(C);
    ss += double(m) * m;
  }
  const float scale = float(std::sqrt(float(ss / double(n)))) + 1e-8f;
  for (int64_t i = 0; i < C * n; ++i) seg.f32()[i] /= scale;
  return scale;
}

Tensor linear_overlap_add(const std::vector<Tensor>& frames, int64_t stride) {
  MG_CHECK(!frames.empty(), "linear_overlap_add: no frames");
  const int64_t total = stride * int64_t(frames.size() - 1) + frames.back().dim(1);
  OverlapAdd ola(frames[0].dim(0), frames[0].dim(1), stride, total);
  for (size_t i = 0; i < frames.size(); ++i) ola.add(frames[i], int64_t(i));
  return ola.finish();
}

Tensor EncodecModel::decode(Backend& be, const EncodedAudio& codes) const {
  const HostBufferReuse reuse;
  MG_CHECK(!codes.segments.empty(), "EnCodec decode: no code segments");
  MG_CHECK(cfg_.chunk_length() || codes.segments.size() == 1, "EnCodec decode: ", codes.segments.size(),
           " segments for a model that does not segment");
  MG_CHECK(cfg_.normalize ? codes.scales.size() == codes.segments.size() : codes.scales.empty(), "EnCodec decode: ",
           codes.scales.size(), " scales for ", codes.segments.size(), " segments of a model that ",
           cfg_.normalize ? "normalises" : "does not normalise");
  MG_CHECK(codes.length > 0, "EnCodec decode: audio length ", codes.length, " must be positive");
  for (const Tensor& s : codes.segments)
    MG_CHECK(s.ndim() == 2 && s.dim(0) == codes.num_codebooks && s.dim(0) <= int64_t(rvq_.codebooks.size()),
             "EnCodec decode: code segment ", shape_str(s.shape), " does not have ", codes.num_codebooks,
             " codebooks (the model has ", rvq_.codebooks.size(), ")");
  if (!cfg_.chunk_length()) return decode_windowed(be, codes.segments[0], codes.length);

  const int64_t stride = cfg_.chunk_stride().value_or(1), hop = cfg_.hop_length();
  const int64_t n_seg = int64_t(codes.segments.size());
  const int64_t last_len = codes.segments.back().dim(1) * hop;
  std::unique_ptr<OverlapAdd> ola;
  for (int64_t i = 0; i < n_seg; ++i) {
    Tensor y = be.download(decode_segment(be, codes.segments[size_t(i)]));
    y = y.reshape({y.dim(1), y.dim(2)});
    if (!codes.scales.empty()) {
      const float s = codes.scales[size_t(i)];
      for (int64_t j = 0; j < y.numel(); ++j) y.f32()[j] *= s;
    }
    if (!ola) ola = std::make_unique<OverlapAdd>(y.dim(0), y.dim(1), stride, stride * (n_seg - 1) + last_len);
    ola->add(y, i);
  }
  Tensor full = ola->finish();
  const int64_t T = full.dim(1), L = std::min(codes.length, T);
  return L == T ? full : slice_cols(full, 0, L);
}

}  // namespace mg
