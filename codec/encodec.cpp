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
//  - The LSTM runs at the frame rate chunk by chunk (the chunks are the windows), with its state
//    carried over: the backend's own LSTM op, started from the (h, c) the previous chunk left on
//    the device, so the same kernel and the same recurrence as one whole-sequence call.
//  - What can differ is float rounding only: a GEMM may sum in another order for another matrix
//    width (the convolutions of a window, the LSTM's input projection of a chunk); the recurrent
//    step itself does not depend on where a chunk starts. Measured on the tiny models
//    (tests/parity/encodec_test.cpp, windows of a few frames): identical codes and decoded audio
//    within ~1e-6 relative error.
//  - Inputs of at most one window go through exactly the whole-file path.
//  - The encoder and the decoder run the same three phases as one pipeline, window by window
//    (codec/encodec_stream.cpp): the input is pulled and the output pushed in blocks, so a long
//    file is never held whole (encode_stream / decode_stream); encode() and decode() are that
//    pipeline over a tensor in memory.
// The 48 kHz model is segmented by the reference itself (1 s, GroupNorm over the segment), so it
// runs segment by segment, with a running overlap-add.
#include "codec/encodec.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <utility>

#include "kernels/host_buffer_cache.h"

namespace mg {

Tensor slice_cols(const Tensor& x, int64_t a, int64_t b) {
  const int64_t C = x.dim(0), T = x.dim(1), n = b - a;
  const size_t es = dtype_size(x.dtype);
  Tensor out = Tensor::empty(x.dtype, {C, n});
  for (int64_t c = 0; c < C; ++c)
    std::memcpy(static_cast<char*>(out.data) + size_t(c * n) * es,
                static_cast<const char*>(x.data) + size_t(c * T + a) * es, size_t(n) * es);
  return out;
}

namespace {

// dst[:, at : at + n] = src[:, from : from + n] for host [C, *] tensors of one dtype.
void put_cols(Tensor& dst, int64_t at, const Tensor& src, int64_t from, int64_t n) {
  const int64_t C = dst.dim(0), Td = dst.dim(1), Ts = src.dim(src.ndim() - 1);
  const size_t es = dtype_size(dst.dtype);
  for (int64_t c = 0; c < C; ++c)
    std::memcpy(static_cast<char*>(dst.data) + size_t(c * Td + at) * es,
                static_cast<const char*>(src.data) + size_t(c * Ts + from) * es, size_t(n) * es);
}

}  // namespace

EncodecModel::EncodecModel(Backend& be, const EncodecConfig& cfg) : be_(be), cfg_(cfg) {
  window_frames_ = int64_t(cfg.frame_rate()) * 5;
  // Test hook: MUSICGEN_TEST_ENCODEC_WINDOW_FRAMES=N gives every model loaded windows of N frames,
  // so that tests of the tools cross many window boundaries on a short file.
  if (const char* v = std::getenv("MUSICGEN_TEST_ENCODEC_WINDOW_FRAMES")) {
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    if (end != v && *end == 0 && n >= 1) window_frames_ = n;
  }
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

EncodedAudio EncodecModel::encode(Backend& be, const Tensor& audio, double kbps) const {
  const HostBufferReuse reuse;  // large activations are reused between windows (host_buffer_cache.h)
  MG_CHECK(audio.ndim() == 2 && audio.dim(0) == cfg_.audio_channels && audio.dtype == DType::F32 &&
               audio.device == Device::CPU,
           "EnCodec encode: expected host f32 audio [", cfg_.audio_channels, ", samples], got ", shape_str(audio.shape));
  const int64_t L = audio.dim(1);
  MG_CHECK(L > 0, "EnCodec encode: the audio has no samples");
  EncodedAudio out;
  out.num_codebooks = num_codebooks_for_bandwidth(kbps);
  const int64_t hop = cfg_.hop_length();
  // The audio goes in by blocks of a window (no copy of the whole input), the codes come out
  // into one tensor (one segment) or one per segment.
  const int64_t block = std::max<int64_t>(1, window_frames()) * hop;
  int64_t next = 0;
  auto in = [&]() -> Tensor {
    if (next >= L) return Tensor();
    const int64_t end = std::min(L, next + block);
    Tensor x = slice_cols(audio, next, end);
    next = end;
    return x;
  };
  Tensor codes;
  if (!cfg_.chunk_length()) codes = Tensor::empty(DType::I64, {out.num_codebooks, (L + hop - 1) / hop});
  int64_t frames = 0;
  auto sink = [&](int64_t segment, const Tensor& c, float scale) {
    if (codes.defined()) {
      put_cols(codes, frames, c, 0, c.dim(1));
      frames += c.dim(1);
      return;
    }
    out.segments.push_back(c);
    if (cfg_.normalize) out.scales.push_back(scale);
  };
  out.length = encode_stream(be, in, kbps, sink);
  if (codes.defined()) out.segments.push_back(codes);
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

OverlapAdd::OverlapAdd(int64_t channels, int64_t first_frame_len, int64_t stride)
    : stride_(stride), acc_(size_t(channels)) {
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

void OverlapAdd::add(const Tensor& f, int64_t index) {
  const int64_t C = int64_t(acc_.size()), n = f.dim(1), off = index * stride_;
  MG_CHECK(f.dim(0) == C && n <= int64_t(weight_.size()) && off >= base_, "overlap-add: frame ", index, " of ", n,
           " samples does not fit");
  const size_t need = size_t(off + n - base_);
  if (sum_w_.size() < need) {
    sum_w_.resize(need, 0.0f);
    for (auto& a : acc_) a.resize(need, 0.0f);
  }
  const size_t at = size_t(off - base_);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < n; ++t) acc_[size_t(c)][at + size_t(t)] += weight_[size_t(t)] * f.f32()[c * n + t];
  for (int64_t t = 0; t < n; ++t) sum_w_[at + size_t(t)] += weight_[size_t(t)];
}

Tensor OverlapAdd::take(int64_t upto) {
  MG_CHECK(upto >= base_ && upto <= end(), "overlap-add: samples up to ", upto, " are not ready");
  const int64_t C = int64_t(acc_.size()), n = upto - base_;
  Tensor out = Tensor::empty(DType::F32, {C, n});
  for (int64_t c = 0; c < C; ++c) {
    auto& a = acc_[size_t(c)];
    for (int64_t t = 0; t < n; ++t) out.f32()[c * n + t] = a[size_t(t)] / sum_w_[size_t(t)];
    a.erase(a.begin(), a.begin() + n);
  }
  sum_w_.erase(sum_w_.begin(), sum_w_.begin() + n);
  base_ = upto;
  return out;
}

Tensor linear_overlap_add(const std::vector<Tensor>& frames, int64_t stride) {
  MG_CHECK(!frames.empty(), "linear_overlap_add: no frames");
  OverlapAdd ola(frames[0].dim(0), frames[0].dim(1), stride);
  for (size_t i = 0; i < frames.size(); ++i) ola.add(frames[i], int64_t(i));
  return ola.take(ola.end());
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
  if (cfg_.chunk_length()) {
    const int64_t stride = cfg_.chunk_stride().value_or(1);
    MG_CHECK(int64_t(codes.segments.size()) == (codes.length + stride - 1) / stride, "EnCodec decode: ",
             codes.segments.size(), " segments for ", codes.length, " samples, which make ",
             (codes.length + stride - 1) / stride);
  }
  // The codes go in by the blocks decode_stream asks for; the audio comes out into one tensor.
  size_t seg = 0;
  int64_t frame = 0;
  auto in = [&](int64_t frames, float* scale) {
    MG_CHECK(seg < codes.segments.size(), "EnCodec decode: more segments asked for than there are");
    const Tensor& s = codes.segments[seg];
    // A segmenting model asks for each segment whole: its frames follow from the length.
    MG_CHECK(cfg_.chunk_length() ? frame == 0 && frames == s.dim(1) : frame + frames <= s.dim(1),
             "EnCodec decode: segment ", seg, " has ", s.dim(1), " frames, ", codes.length, " samples need ",
             frame + frames);
    if (frame == 0 && !codes.scales.empty()) *scale = codes.scales[seg];
    Tensor c = slice_cols(s, frame, frame + frames);
    frame += frames;
    if (frame == s.dim(1) && cfg_.chunk_length()) seg++, frame = 0;
    return c;
  };
  // At most `length` samples, and no more than the frames hold (an unsegmented model's codes).
  const int64_t most =
      cfg_.chunk_length() ? codes.length : std::min(codes.length, codes.segments[0].dim(1) * cfg_.hop_length());
  Tensor out;
  int64_t at = 0;
  auto sink = [&](const Tensor& y) {
    if (!out.defined()) out = Tensor::empty(DType::F32, {y.dim(0), most});
    MG_CHECK(at + y.dim(1) <= most, "EnCodec decode: more audio than the length");
    put_cols(out, at, y, 0, y.dim(1));
    at += y.dim(1);
  };
  if (cfg_.chunk_length()) {
    decode_stream(be, in, codes.length, sink);
  } else {
    const int64_t T = codes.segments[0].dim(1);
    MG_CHECK(T >= 1, "EnCodec decode: no code frames");
    decode_windowed(be, in, T, std::min(codes.length, T * cfg_.hop_length()), sink);
  }
  return at == most ? out : slice_cols(out, 0, at);
}

}  // namespace mg
