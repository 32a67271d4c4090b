// EnCodec block by block (EncodecModel::encode_stream / decode_stream, EncodecDecodeStream): what
// encode() and decode() run, with the input pulled (or pushed) and the output pushed in blocks, so
// that memory stays bounded by the window whatever the length (docs/ARCHITECTURE.md, "Windowed
// EnCodec").
//
// The unsegmented models (24 kHz, 32 kHz) run every SEANet as [convs] -> LSTM (+skip) -> [convs]
// in one pass over windows of code frames (W = window_frames() for encode() / decode()):
//  1. window [f0, f1) of the convolutions before the LSTM, on its input extended by their receptive
//     field (window_range), as soon as the input reaches far enough;
//  2. its frames through the LSTM, the state carried from the previous window (so the LSTM's chunks
//     are the phase-1 windows);
//  3. every window of the convolutions after the LSTM whose extended input is now through the LSTM.
// Only the input, the LSTM's output and the convolutions' margins are held. The windows, their
// extents and the LSTM chunks are exactly those of a whole pass with the same window sizes over
// input of the same length: the length matters only near the end, and a window is computed before
// the end is known only when the input already reaches its extent computed as if it never ended
// (which is then its real extent). So the numbers do not depend on how the input arrives. One state
// machine (StreamingPass) does this for the pulling passes and the pushed decoder alike.
// The 48 kHz model is segmented by the reference itself: one 1 s segment at a time, its decoded
// frames through a running overlap-add whose finished samples leave at once.
#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "codec/encodec.h"
#include "kernels/host_buffer_cache.h"

namespace mg {

namespace {

constexpr int64_t kUnknown = -1;
constexpr int64_t kHuge = int64_t(1) << 60;  // "past any window's reach" while the end is unknown

// Columns [begin(), end()) of a long host [C, *] sequence (any dtype): appended at the end,
// dropped from the front, read by slices.
class ColumnQueue {
 public:
  int64_t begin() const { return begin_; }
  int64_t end() const { return begin_ + n_; }
  int64_t rows() const { return int64_t(rows_.size()); }

  void append(const Tensor& x) {
    if (rows_.empty()) {
      dtype_ = x.dtype;
      es_ = dtype_size(x.dtype);
      rows_.resize(size_t(x.dim(0)));
    }
    MG_CHECK(x.ndim() == 2 && x.dim(0) == rows() && x.dtype == dtype_, "stream: block ", shape_str(x.shape),
             " does not continue a ", rows(), "-row sequence");
    const int64_t n = x.dim(1);
    for (int64_t c = 0; c < rows(); ++c) {
      const char* p = static_cast<const char*>(x.data) + size_t(c * n) * es_;
      rows_[size_t(c)].insert(rows_[size_t(c)].end(), p, p + size_t(n) * es_);
    }
    n_ += n;
  }

  Tensor slice(int64_t a, int64_t b) const {
    MG_CHECK(a >= begin_ && a <= b && b <= end(), "stream: columns [", a, ", ", b, ") are not held (", begin_, " to ",
             end(), ")");
    Tensor out = Tensor::empty(dtype_, {rows(), b - a});
    for (int64_t c = 0; c < rows(); ++c)
      std::memcpy(static_cast<char*>(out.data) + size_t(c * (b - a)) * es_,
                  rows_[size_t(c)].data() + size_t(a - begin_) * es_, size_t(b - a) * es_);
    return out;
  }

  void drop_before(int64_t a) {
    a = std::clamp(a, begin_, end());
    for (auto& r : rows_) r.erase(r.begin(), r.begin() + ptrdiff_t(size_t(a - begin_) * es_));
    n_ -= a - begin_;
    begin_ = a;
  }

 private:
  std::vector<std::vector<char>> rows_;
  DType dtype_ = DType::F32;
  size_t es_ = 4;
  int64_t begin_ = 0, n_ = 0;
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

// What feeds phase 1 of a StreamingPass.
struct FrameInput {
  // The device input of the layers before the LSTM for frames [a, b) (T: kUnknown or known).
  std::function<Tensor(int64_t a, int64_t b, int64_t T)> get;
  // Frames before `a` will not be asked for again.
  std::function<void(int64_t a)> release;
};

// Window sizes in frames: the first one, then each twice the last, up to `max` (first == max: fixed).
struct Growth {
  int64_t first, max;
  int64_t next(int64_t size) const { return std::min(max, 2 * size); }
};

// The three phases (see the head of this file) over `net` as a state machine that whoever has the
// input drives: the pull-driven passes (encode_stream, decode_stream) read the input up to
// input_needed() and step; the push-driven decoder (EncodecDecodeStream) steps whenever the frames
// pushed so far reach input_needed(), and with the frame count once the codes end. Phase 1 runs
// windows sized by `lstm` (the LSTM's chunks), phase 3 windows sized by `window`; a whole pass uses
// one fixed size for both (a stream starts small, to start early, and grows, to pay the margins
// less often). `out_frames(T)`: how many frames phase 3 produces; `output(f0, f1, a, y)` gets y,
// the device output of the extended window starting at frame a, whose frames [f0, f1) are the ones
// to keep. `down` / `up`: the strides the layers before / after the LSTM must have; `what` names
// the net in errors.
class StreamingPass {
 public:
  using OutFrames = std::function<int64_t(int64_t T)>;
  using Output = std::function<void(int64_t f0, int64_t f1, int64_t a, const Tensor& y)>;

  StreamingPass(Backend& be, const Seanet& net, Growth lstm, Growth window, int64_t down, int64_t up,
                const char* what, FrameInput in, OutFrames out_frames, Output output)
      : be_(be), net_(net), li_(seanet_lstm_index(net)), lstm_(lstm), window_(window), Wp_(lstm.first),
        W_(window.first), what_(what), in_(std::move(in)), out_frames_(std::move(out_frames)),
        output_(std::move(output)) {
    pre_ = seanet_timing(net, 0, li_);
    post_ = seanet_timing(net, li_ + 1, net.layers.size());
    MG_CHECK(pre_.down == down && pre_.up == 1 && post_.down == 1 && post_.up == up, what, ": unexpected strides");
    MG_CHECK(lstm.first >= 1 && lstm.max >= lstm.first && window.first >= 1 && window.max >= window.first, what,
             ": windows of ", lstm.first, " to ", lstm.max, " and ", window.first, " to ", window.max,
             " frames (must be >= 1, the first no larger than the largest)");
  }

  // Input frames [0, input_needed()) are read by the next phase-1 window, computed as if the input
  // went on for ever while its length is unknown: once that many frames exist, the window is the one
  // a whole pass computes, whatever the length turns out to be.
  int64_t input_needed() const { return pre_range(T_ == kUnknown ? kHuge : T_).second; }

  // The next phase-1 window and every phase-3 window it makes ready. T: the frame count, or kUnknown
  // while the input goes on (it then holds at least input_needed() frames). False once all is done.
  bool step(int64_t T) {
    if (T_ == kUnknown) T_ = T;
    const int64_t n = T_ == kUnknown ? kHuge : T_;
    if (f0_ >= n) {
      post_windows();
      MG_CHECK(T_ != kUnknown && g0_ >= out_frames_(T_), what_, ": the stream stopped at frame ", g0_);
      return false;
    }
    const int64_t f1 = std::min(n, f0_ + Wp_);
    const auto [a, b] = pre_range(n);
    Tensor y = be_.download(seanet_forward_range(be_, net_, 0, li_, in_.get(a, b, T_)));
    y = y.reshape({y.dim(1), y.dim(2)});
    in_.release(f1 - pre_min());
    Tensor x = be_.transpose(be_.upload(slice_cols(y, f0_ - a, f1 - a)));  // [n, C]
    mid_.append(be_.download(be_.transpose(seanet_lstm_forward(be_, net_.layers[li_], x, &state_))));
    done_ = f1;
    f0_ = f1;
    Wp_ = lstm_.next(Wp_);
    post_windows();
    return true;
  }

  // Frames of input before the first phase-3 window runs (when the input is longer than that).
  int64_t first_output_after_frames() const {
    const int64_t need = window_range(0, window_.first, post_.margin, kHuge).second;  // LSTM frames
    int64_t f0 = 0, size = lstm_.first;
    for (; f0 + size < need; size = lstm_.next(size)) f0 += size;
    return window_range(f0, f0 + size, pre_.margin, kHuge).second;
  }

 private:
  int64_t pre_min() const { return 2 * pre_.margin + 8; }  // window_range's floors
  int64_t post_min() const { return 2 * post_.margin + 8; }
  std::pair<int64_t, int64_t> pre_range(int64_t n) const {
    return window_range(f0_, std::min(n, f0_ + Wp_), pre_.margin, n);
  }

  // Phase 3 for every window whose extended input is through the LSTM. While T is unknown the
  // input goes on past `done_`, so a window computed as if it never ended is the real one.
  void post_windows() {
    for (;;) {
      if (T_ != kUnknown && g0_ >= out_frames_(T_)) return;
      const int64_t n = T_ == kUnknown ? kHuge : T_;
      const int64_t g1 = std::min(n, g0_ + W_);
      const auto [a, b] = window_range(g0_, g1, post_.margin, n);
      if (b > done_) return;
      Tensor x = be_.upload(mid_.slice(a, b).reshape({1, mid_.rows(), b - a}));
      output_(g0_, g1, a, seanet_forward_range(be_, net_, li_ + 1, net_.layers.size(), x));
      g0_ = g1;
      W_ = window_.next(W_);
      mid_.drop_before(g0_ - post_min());  // the next window starts at most post_min - 1 frames earlier
    }
  }

  Backend& be_;
  const Seanet& net_;
  size_t li_;
  Growth lstm_, window_;
  int64_t Wp_, W_;  // the sizes of the next phase-1 and phase-3 windows
  const char* what_;
  FrameInput in_;
  OutFrames out_frames_;
  Output output_;
  SeanetTiming pre_, post_;
  ColumnQueue mid_;  // the LSTM's output, [C, frames]
  LstmState state_;
  int64_t T_ = kUnknown, f0_ = 0, done_ = 0, g0_ = 0;
};

// A whole pass pulling its input: `prepare(frames)` makes the input below `frames` readable (all of
// it if it ends first) and returns the number of frames T once the end has been reached, else
// kUnknown (and then T > frames).
void run_streaming(StreamingPass& pass, const std::function<int64_t(int64_t frames)>& prepare) {
  while (pass.step(prepare(pass.input_needed()))) {
  }
}

}  // namespace

int64_t EncodecModel::encode_stream(Backend& be, const AudioBlockSource& in, double kbps,
                                    const CodeBlockSink& out) const {
  const HostBufferReuse reuse;  // large activations are reused between windows (host_buffer_cache.h)
  const int nq = num_codebooks_for_bandwidth(kbps);
  return cfg_.chunk_length() ? encode_segments(be, in, nq, out) : encode_windowed(be, in, nq, out);
}

namespace {

// The audio source as a queue of samples, checked block by block.
struct AudioQueue {
  const AudioBlockSource& source;
  int channels;
  ColumnQueue q;
  bool ended = false;

  // Pulls blocks until the samples reach past `samples` or the source ends.
  void fill(int64_t samples) {
    while (!ended && q.end() <= samples) {
      Tensor x = source();
      if (!x.defined()) {
        ended = true;
        break;
      }
      MG_CHECK(x.ndim() == 2 && x.dim(0) == channels && x.dtype == DType::F32 && x.device == Device::CPU,
               "EnCodec encode: expected host f32 audio blocks [", channels, ", samples], got ", shape_str(x.shape));
      if (x.dim(1) > 0) q.append(x);
    }
  }
};

}  // namespace

int64_t EncodecModel::encode_windowed(Backend& be, const AudioBlockSource& in, int nq, const CodeBlockSink& out) const {
  const int64_t hop = cfg_.hop_length(), C = cfg_.audio_channels;
  AudioQueue audio{in, int(C), {}, false};
  auto prepare = [&](int64_t frames) {
    audio.fill(frames * hop);
    return audio.ended ? (audio.q.end() + hop - 1) / hop : kUnknown;
  };
  FrameInput input;
  input.get = [&](int64_t a, int64_t b, int64_t T) {
    const int64_t end = T == kUnknown ? b * hop : std::min(audio.q.end(), b * hop);
    return be.upload(audio.q.slice(a * hop, end).reshape({1, C, end - a * hop}));
  };
  input.release = [&](int64_t a) { audio.q.drop_before(a * hop); };
  // The embeddings go through the RVQ window by window (cheap at the frame rate).
  auto output = [&](int64_t f0, int64_t f1, int64_t a, Tensor emb) {
    if (a != f0 || emb.cols() != f1 - f0) emb = be.narrow_last(emb, f0 - a, f1 - f0);
    out(0, rvq_encode(be, rvq_, emb, nq), 0.0f);
  };
  const int64_t W = window_frames();
  StreamingPass pass(be, encoder_, {W, W}, {W, W}, hop, 1, "EnCodec encoder", input, [](int64_t T) { return T; },
                     output);
  run_streaming(pass, prepare);
  MG_CHECK(audio.q.end() > 0, "EnCodec encode: the audio has no samples");
  return audio.q.end();
}

int64_t EncodecModel::encode_segments(Backend& be, const AudioBlockSource& in, int nq, const CodeBlockSink& out) const {
  const int64_t C = cfg_.audio_channels, chunk = *cfg_.chunk_length();
  const int64_t stride = cfg_.chunk_stride().value_or(chunk);
  AudioQueue audio{in, int(C), {}, false};
  int64_t off = 0;
  for (int64_t i = 0;; ++i, off += stride) {  // encodec: range(0, length, stride)
    audio.fill(off + chunk - 1);
    if (off >= audio.q.end()) break;
    const int64_t n = std::min(chunk, audio.q.end() - off);
    Tensor seg = audio.q.slice(off, off + n).reshape({1, C, n});
    audio.q.drop_before(off + stride);
    const float scale = cfg_.normalize ? normalize_segment(seg) : 0.0f;
    out(i, rvq_encode(be, rvq_, encode_embeddings(be, seg), nq), scale);
  }
  MG_CHECK(audio.q.end() > 0, "EnCodec encode: the audio has no samples");
  return audio.q.end();
}

void EncodecModel::decode_stream(Backend& be, const CodeBlockSource& in, int64_t length,
                                 const AudioBlockSink& out) const {
  MG_CHECK(length > 0, "EnCodec decode: audio length ", length, " must be positive");
  if (cfg_.chunk_length()) return decode_segments(be, in, length, out);
  const int64_t hop = cfg_.hop_length();
  decode_windowed(be, in, (length + hop - 1) / hop, length, out);
}

namespace {

// Codes in, audio out around a StreamingPass over the decoder: what decode_windowed (pulling) and
// EncodecDecodeStream (pushed) share. Phase 1 RVQ-decodes the queued codes of its window; phase 3's
// samples go to `out`, trimmed to the first L (kUnknown: every frame's hop samples).
struct DecodePass {
  DecodePass(Backend& be, const Seanet& decoder, const Rvq& rvq, int64_t hop, Growth lstm, Growth window,
             int64_t L, AudioBlockSink out)
      : pass(be, decoder, lstm, window, 1, hop, "EnCodec decoder", input(be, rvq),
             // Only the windows that reach into the first L samples are decoded past the LSTM.
             [hop, L](int64_t T) { return L == kUnknown ? T : (L + hop - 1) / hop; },
             [&be, hop, L, out = std::move(out)](int64_t f0, int64_t f1, int64_t a, const Tensor& dev) {
               Tensor y = be.download(dev);
               y = y.reshape({y.dim(1), y.dim(2)});
               const int64_t end = L == kUnknown ? f1 * hop : std::min(f1 * hop, L);
               out(slice_cols(y, (f0 - a) * hop, end - a * hop));
             }) {}
  DecodePass(const DecodePass&) = delete;
  DecodePass& operator=(const DecodePass&) = delete;

  FrameInput input(Backend& be, const Rvq& rvq) {
    FrameInput in;
    in.get = [this, &be, &rvq](int64_t a, int64_t b, int64_t) { return rvq_decode(be, rvq, codes.slice(a, b)); };
    in.release = [this](int64_t a) { codes.drop_before(a); };
    return in;
  }

  ColumnQueue codes;  // host i64 [nq, frames]
  StreamingPass pass;
};

}  // namespace

void EncodecModel::decode_windowed(Backend& be, const CodeBlockSource& in, int64_t T, int64_t L,
                                   const AudioBlockSink& out) const {
  const HostBufferReuse reuse;
  const int64_t W = window_frames();
  MG_CHECK(T >= 1, "EnCodec decode: no code frames");
  DecodePass d(be, decoder_, rvq_, cfg_.hop_length(), {W, W}, {W, W}, L, out);
  run_streaming(d.pass, [&](int64_t frames) {
    while (d.codes.end() < std::min(T, frames)) {
      float scale = 0;
      d.codes.append(in(std::min(T, frames) - d.codes.end(), &scale));
    }
    return T;
  });
}

void EncodecModel::decode_segments(Backend& be, const CodeBlockSource& in, int64_t L, const AudioBlockSink& out) const {
  const HostBufferReuse reuse;
  const int64_t chunk = *cfg_.chunk_length(), stride = cfg_.chunk_stride().value_or(1), hop = cfg_.hop_length();
  const int64_t n_seg = (L + stride - 1) / stride;
  auto frames_of = [&](int64_t i) { return (std::min(chunk, L - i * stride) + hop - 1) / hop; };
  const int64_t total = stride * (n_seg - 1) + frames_of(n_seg - 1) * hop;  // what the overlap-add spans
  std::unique_ptr<OverlapAdd> ola;
  int64_t emitted = 0;
  auto emit = [&](int64_t upto) {
    upto = std::min(upto, L);
    if (upto > emitted) out(ola->take(upto));
    emitted = std::max(emitted, upto);
  };
  for (int64_t i = 0; i < n_seg; ++i) {
    float scale = 1.0f;
    Tensor y = be.download(decode_segment(be, in(frames_of(i), &scale)));
    y = y.reshape({y.dim(1), y.dim(2)});
    if (cfg_.normalize)
      for (int64_t j = 0; j < y.numel(); ++j) y.f32()[j] *= scale;
    if (!ola) ola = std::make_unique<OverlapAdd>(y.dim(0), y.dim(1), stride);
    ola->add(y, i);
    emit(i + 1 < n_seg ? (i + 1) * stride : total);  // the next segment starts at (i + 1) * stride
  }
}

struct EncodecDecodeStream::Impl {
  Impl(const EncodecModel& m, Backend& be, Growth lstm, Growth window, AudioBlockSink out)
      : nq_max(int64_t(m.rvq_.codebooks.size())),
        d(be, m.decoder_, m.rvq_, m.cfg_.hop_length(), lstm, window, kUnknown, std::move(out)) {}
  int64_t pushed() const { return d.codes.end(); }  // frames pushed: every one is queued
  // Large buffers (the windows' activations, the LSTM layers' packed W_hh) are reused from window to
  // window for as long as the stream lives. A scope per push() emptied the cache after each window,
  // so every window faulted its activations in afresh (streaming 10 s of musicgen-small audio: 158k
  // page faults, 105k with this scope). While the stream lives, buffers the generation frees between
  // pushes are kept too: at most kHostCacheBytes, all freed when the last stream (or other scope)
  // ends.
  const HostBufferReuse reuse;
  int64_t nq_max;
  bool finished = false;
  DecodePass d;
};

EncodecDecodeStream::EncodecDecodeStream(const EncodecModel& model, Backend& be, AudioBlockSink out,
                                         const DecodeStreamWindows& w) {
  MG_CHECK(!model.cfg_.chunk_length(), "EnCodec decode stream: this model decodes in overlapping segments of ",
           *model.cfg_.chunk_length(),
           " samples (the 48 kHz model), not a stream of frames: decode its codes with decode() or decode_stream()");
  impl_ = std::make_unique<Impl>(model, be, Growth{w.first_lstm, w.max_lstm}, Growth{w.first_window, w.max_window},
                                 std::move(out));
}

EncodecDecodeStream::~EncodecDecodeStream() = default;

void EncodecDecodeStream::push(const Tensor& codes) {
  MG_CHECK(!impl_->finished, "EnCodec decode stream: push() after finish()");
  MG_CHECK(codes.ndim() == 2 && codes.dtype == DType::I64 && codes.device == Device::CPU && codes.dim(0) >= 1 &&
               codes.dim(0) <= impl_->nq_max && (impl_->pushed() == 0 || codes.dim(0) == impl_->d.codes.rows()),
           "EnCodec decode stream: expected host i64 codes [codebooks (1 to ", impl_->nq_max,
           ", the same each time), frames], got ", shape_str(codes.shape));
  if (codes.dim(1) == 0) return;
  impl_->d.codes.append(codes);
  while (impl_->d.pass.input_needed() <= impl_->pushed()) impl_->d.pass.step(kUnknown);
}

void EncodecDecodeStream::finish() {
  MG_CHECK(!impl_->finished, "EnCodec decode stream: finish() called twice");
  MG_CHECK(impl_->pushed() >= 1, "EnCodec decode stream: no code frames were pushed");
  impl_->finished = true;
  while (impl_->d.pass.step(impl_->pushed())) {
  }
}

int64_t EncodecDecodeStream::frames_pushed() const { return impl_->pushed(); }

int64_t EncodecDecodeStream::first_audio_after_frames() const { return impl_->d.pass.first_output_after_frames(); }

}  // namespace mg
