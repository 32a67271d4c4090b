// EnCodec, the resampler and the .ecdc container block by block (codec/encodec_stream.cpp,
// codec/resample.h StreamResampler, codec/ecdc_stream.h) against their whole-signal forms on the
// tiny models: windows of a few frames and ragged input blocks, so a 2 s fixture crosses many
// window boundaries. Codes and .ecdc bytes must be equal, decoded audio within 1e-5, resampled
// audio exactly equal.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "codec/convert_audio.h"
#include "codec/ecdc.h"
#include "codec/ecdc_stream.h"
#include "codec/encodec.h"
#include "codec/resample.h"
#include "kernels/host_buffer_cache.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace {

using mg::Tensor;

mg::Backend& cpu() {
  static std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(2);
  return *be;
}

std::unique_ptr<mg::EncodecModel> load(const std::string& name) {
  return mg::EncodecModel::load(cpu(), mgtest::data_dir() + "/models/" + name);
}

// A test signal [C, L]: a chirp with some noise, different per channel.
Tensor signal(int64_t C, int64_t L, int rate) {
  Tensor x = Tensor::empty(mg::DType::F32, {C, L});
  const std::vector<float> noise = mgtest::random_vector(size_t(C * L), 7);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < L; ++t) {
      const double s = double(t) / rate;
      x.f32()[c * L + t] = float(0.4 * std::sin(2 * M_PI * (220.0 * (c + 1) + 300.0 * s) * s) + 0.05 * noise[size_t(c * L + t)]);
    }
  return x;
}

// Columns [a, b) of a host [C, T] tensor.
Tensor cols(const Tensor& x, int64_t a, int64_t b) {
  const int64_t C = x.dim(0), T = x.dim(1);
  const size_t es = mg::dtype_size(x.dtype);
  Tensor out = Tensor::empty(x.dtype, {C, b - a});
  for (int64_t c = 0; c < C; ++c)
    std::memcpy(static_cast<char*>(out.data) + size_t(c * (b - a)) * es,
                static_cast<const char*>(x.data) + size_t(c * T + a) * es, size_t(b - a) * es);
  return out;
}

// Ragged block sizes, so that nothing lines up with a window or a hop.
int64_t block_size(int64_t i) { return 97 + (i * 7919) % 1500; }

struct Streamed {
  mg::EncodedAudio codes;
  std::vector<uint8_t> ecdc;
};

// encode_stream of x in ragged blocks, collected as EncodedAudio and written by an EcdcWriter whose
// header first announces `expected` samples.
Streamed encode_streamed(const mg::EncodecModel& m, const Tensor& x, double kbps, int64_t expected,
                         const std::string& path) {
  int64_t at = 0, i = 0;
  auto in = [&]() -> Tensor {
    if (at >= x.dim(1)) return Tensor();
    const int64_t n = std::min(block_size(i++), x.dim(1) - at);
    at += n;
    return cols(x, at - n, at);
  };
  Streamed s;
  s.codes.num_codebooks = m.num_codebooks_for_bandwidth(kbps);
  const mg::EcdcModelInfo info = mg::ecdc_model_info(mg::ecdc_model_name(m.config()), m.config());
  mg::EcdcWriter writer(path, info, s.codes.num_codebooks, expected);
  auto sink = [&](int64_t segment, const Tensor& c, float scale) {
    writer.add(segment, c, scale);
    if (int64_t(s.codes.segments.size()) <= segment) {
      s.codes.segments.push_back(c);
      if (m.config().normalize) s.codes.scales.push_back(scale);
    } else {  // the one segment of an unsegmented model, in blocks
      Tensor& all = s.codes.segments.back();
      Tensor joined = Tensor::empty(mg::DType::I64, {c.dim(0), all.dim(1) + c.dim(1)});
      for (int64_t k = 0; k < c.dim(0); ++k) {
        std::memcpy(joined.ptr<int64_t>() + k * joined.dim(1), all.ptr<int64_t>() + k * all.dim(1), size_t(all.dim(1)) * 8);
        std::memcpy(joined.ptr<int64_t>() + k * joined.dim(1) + all.dim(1), c.ptr<int64_t>() + k * c.dim(1),
                    size_t(c.dim(1)) * 8);
      }
      all = joined;
    }
  };
  s.codes.length = m.encode_stream(cpu(), in, kbps, sink);
  writer.finish(s.codes.length);
  const std::string bytes = mgtest::slurp(path);
  s.ecdc.assign(bytes.begin(), bytes.end());
  return s;
}

void expect_same_codes(const mg::EncodedAudio& a, const mg::EncodedAudio& b) {
  ASSERT_EQ(a.length, b.length);
  ASSERT_EQ(a.segments.size(), b.segments.size());
  ASSERT_EQ(a.scales.size(), b.scales.size());
  for (size_t s = 0; s < a.segments.size(); ++s) {
    ASSERT_EQ(a.segments[s].shape, b.segments[s].shape) << "segment " << s;
    for (int64_t i = 0; i < a.segments[s].numel(); ++i)
      ASSERT_EQ(a.segments[s].ptr<int64_t>()[i], b.segments[s].ptr<int64_t>()[i]) << "segment " << s << " code " << i;
  }
  for (size_t s = 0; s < a.scales.size(); ++s) EXPECT_EQ(a.scales[s], b.scales[s]) << "scale " << s;
}

struct Case {
  const char* model;
  double kbps;
  int64_t window;  // frames
};

class EncodecStream : public ::testing::TestWithParam<Case> {};

TEST_P(EncodecStream, SameCodesBytesAndAudioAsTheWholeFile) {
  const Case c = GetParam();
  auto whole = load(c.model);   // default window (5 s): a 2 s input is one window, the whole-file path
  auto small = load(c.model);
  small->set_window_frames(c.window);
  const int rate = whole->sample_rate();
  const Tensor x = signal(whole->channels(), 2 * rate + 123, rate);
  const mg::EncodedAudio ref = whole->encode(x, c.kbps);
  const std::vector<uint8_t> ref_bytes =
      mg::ecdc_write(mg::ecdc_model_info(mg::ecdc_model_name(whole->config()), whole->config()), ref);
  const std::string dir = mgtest::test_case_dir();

  // Announced length right, wrong with as many digits, wrong with more digits: the same file.
  for (int64_t expected : {ref.length, ref.length + 1, ref.length * 10}) {
    const Streamed s = encode_streamed(*small, x, c.kbps, expected, dir + "/x.ecdc");
    expect_same_codes(s.codes, ref);
    EXPECT_EQ(s.ecdc, ref_bytes) << "announced length " << expected;
  }

  // Decode: the streamed .ecdc reader and decoder against decode() of the whole codes.
  const Tensor y_ref = whole->decode(ref);
  mg::EcdcReader reader(dir + "/x.ecdc");
  reader.open_body();
  std::vector<Tensor> blocks;
  small->decode_stream(cpu(), [&](int64_t n, float* scale) { return reader.next(n, scale); }, ref.length,
                       [&](const Tensor& y) { blocks.push_back(y); });
  int64_t total = 0;
  for (const Tensor& b : blocks) total += b.dim(1);
  ASSERT_EQ(total, y_ref.dim(1));
  double worst = 0;
  int64_t at = 0;
  for (const Tensor& b : blocks) {
    for (int64_t ch = 0; ch < b.dim(0); ++ch)
      for (int64_t t = 0; t < b.dim(1); ++t)
        worst = std::max(worst, double(std::fabs(b.f32()[ch * b.dim(1) + t] - y_ref.f32()[ch * total + at + t])));
    at += b.dim(1);
  }
  EXPECT_LE(worst, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, EncodecStream,
                         ::testing::Values(Case{"encodec_24khz_tiny", 6.0, 3}, Case{"encodec_24khz_tiny", 24.0, 7},
                                           Case{"encodec_32khz_tiny", 2.2, 3}, Case{"encodec_48khz_tiny", 12.0, 3}),
                         [](const auto& info) {
                           return std::string(info.param.model).substr(8, 5) + "_w" + std::to_string(info.param.window) +
                                  "_" + std::to_string(int(info.param.kbps * 10));
                         });

// EncodecDecodeStream: codes pushed in ragged blocks (one frame, several), windows and LSTM chunks
// of a few frames, fixed or growing. The audio equals decode() of all the codes (every frame's hop
// samples) within 1e-5, and starts once the first window's receptive field is in
// (first_audio_after_frames), not at finish().
struct PushCase {
  const char* model;
  double kbps;
  mg::DecodeStreamWindows w;  // frames
};

class EncodecDecodePush : public ::testing::TestWithParam<PushCase> {};

TEST_P(EncodecDecodePush, EqualsDecodeAndStartsEarly) {
  const PushCase c = GetParam();
  auto m = load(c.model);
  const int rate = m->sample_rate();
  const mg::EncodedAudio enc = m->encode(signal(m->channels(), 2 * rate + 123, rate), c.kbps);
  const Tensor codes = enc.segments[0];
  const int64_t T = codes.dim(1), hop = m->config().hop_length();
  mg::EncodedAudio whole = enc;
  whole.length = T * hop;  // no trimming, as MusicGen decodes
  const Tensor ref = m->decode(whole);

  std::vector<Tensor> blocks;
  int64_t pushed = 0, first_audio = -1;
  mg::EncodecDecodeStream s(*m, cpu(), [&](const Tensor& y) {
    if (first_audio < 0) first_audio = pushed;
    blocks.push_back(y);
  }, c.w);
  for (int64_t i = 0; pushed < T; ++i) {
    const int64_t n = std::min(T - pushed, i % 3 == 0 ? int64_t(1) : 1 + i % 5);
    pushed += n;  // before the push: the sink sees how many frames were in when it is called
    s.push(cols(codes, pushed - n, pushed));
  }
  EXPECT_EQ(s.frames_pushed(), T);
  s.finish();
  EXPECT_THROW(s.push(cols(codes, 0, 1)), mg::Error);
  ASSERT_LT(s.first_audio_after_frames(), T);
  EXPECT_GE(first_audio, s.first_audio_after_frames());
  EXPECT_LE(first_audio, s.first_audio_after_frames() + 4);  // the block that crossed it
  double worst = 0;
  int64_t at = 0;
  for (const Tensor& b : blocks) {
    ASSERT_EQ(b.dim(0), ref.dim(0));
    for (int64_t ch = 0; ch < b.dim(0); ++ch)
      for (int64_t t = 0; t < b.dim(1); ++t)
        worst = std::max(worst, double(std::fabs(b.f32()[ch * b.dim(1) + t] - ref.f32()[ch * ref.dim(1) + at + t])));
    at += b.dim(1);
  }
  ASSERT_EQ(at, ref.dim(1));
  EXPECT_LE(worst, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, EncodecDecodePush,
                         ::testing::Values(PushCase{"encodec_24khz_tiny", 6.0, {3, 3, 1, 1}},
                                           PushCase{"encodec_24khz_tiny", 24.0, {7, 7, 3, 3}},
                                           PushCase{"encodec_24khz_tiny", 24.0, {2, 9, 1, 5}},
                                           PushCase{"encodec_32khz_tiny", 2.2, {3, 3, 3, 3}},
                                           // the defaults: audio windows of 25 to 100 frames, LSTM ones of 10 to 50
                                           PushCase{"encodec_32khz_tiny", 2.2, {}}),
                         [](const auto& info) {
                           const mg::DecodeStreamWindows& w = info.param.w;
                           return std::string(info.param.model).substr(8, 5) + "_w" + std::to_string(w.first_window) +
                                  "_" + std::to_string(w.max_window) + "_l" + std::to_string(w.first_lstm) + "_" +
                                  std::to_string(w.max_lstm);
                         });

// The 48 kHz model decodes overlapping segments, not a stream of frames: refused, saying what to use.
TEST(EncodecDecodePush, RefusesTheSegmentingModel) {
  auto m = load("encodec_48khz_tiny");
  try {
    mg::EncodecDecodeStream s(*m, cpu(), [](const Tensor&) {});
    FAIL() << "a segmenting model was accepted";
  } catch (const mg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("decode_stream"), std::string::npos) << e.what();
  }
}

// Trap: a stream must keep its large buffers (the windows' activations) from push to push and free
// them when it ends. With a buffer-reuse scope per push the cache was emptied after every window, so
// each window faulted its activations in afresh (streaming 10 s of musicgen-small audio: 158k page
// faults against 105k); a scope that outlived the stream would hold memory in an idle application.
TEST(EncodecDecodePush, KeepsItsLargeBuffersWhileItLivesAndFreesThemAfter) {
  auto m = load("encodec_32khz_tiny");
  const int rate = m->sample_rate();
  const Tensor codes = m->encode(signal(1, 10 * rate, rate), 2.2).segments[0];
  const int64_t T = codes.dim(1);
  ASSERT_EQ(mg::detail::host_cache_bytes(), 0u);
  {
    // Windows of 4 s: the 4-channel activations of a window are 2 MB, above kHostCacheMinBytes.
    int64_t emitted = 0, pushed = 0;
    mg::EncodecDecodeStream s(*m, cpu(), [&](const Tensor& y) { emitted += y.numel(); }, {200, 200, 50, 50});
    for (; emitted == 0 && pushed < T; ++pushed) s.push(cols(codes, pushed, pushed + 1));
    ASSERT_GT(emitted, 0) << "a first window ran before the last frame";
    EXPECT_GT(mg::detail::host_cache_bytes(), 0u) << "between pushes the windows' buffers are kept";
    s.push(cols(codes, pushed, T));
    s.finish();
  }
  EXPECT_EQ(mg::detail::host_cache_bytes(), 0u) << "the stream's end frees what it kept";
}

// StreamResampler in ragged blocks equals Resampler::resample on the whole signal, bit for bit,
// over more than one GEMM chunk of output rows.
TEST(StreamResampler, EqualsTheWholeSignalExactly) {
  const std::vector<std::pair<int, int>> rates = {{44100, 24000}, {24000, 32000}, {48000, 32000}, {16000, 48000},
                                                 {32000, 32000}};
  const std::vector<float> x = mgtest::random_vector(1500000, 3);
  for (const auto& [from, to] : rates) {
    auto r = std::make_shared<const mg::Resampler>(from, to);
    const std::vector<float> ref = r->resample(x);
    for (int64_t n : {int64_t(x.size()), int64_t(1000), int64_t(7)}) {  // long, short, shorter than the kernel
      const std::vector<float> whole = n == int64_t(x.size()) ? ref : r->resample(x.data(), n);
      mg::StreamResampler s(r);
      std::vector<float> out;
      for (int64_t at = 0, i = 0; at < n; ++i) {
        const int64_t k = std::min(block_size(i) * 13, n - at);
        const std::vector<float> o = s.push(x.data() + at, k);
        out.insert(out.end(), o.begin(), o.end());
        at += k;
      }
      const std::vector<float> o = s.finish();
      out.insert(out.end(), o.begin(), o.end());
      ASSERT_EQ(out.size(), whole.size()) << from << " -> " << to << ", " << n << " samples";
      EXPECT_TRUE(std::equal(out.begin(), out.end(), whole.begin())) << from << " -> " << to << ", " << n << " samples";
    }
  }
}

// AudioConverter (resample, then channels) equals convert_audio on the whole buffer.
TEST(AudioConverter, EqualsConvertAudio) {
  mg::AudioBuffer in;
  in.sample_rate = 44100;
  for (int c = 0; c < 2; ++c) in.channels.push_back(mgtest::random_vector(200000, 11 + c));
  for (int to_ch : {1, 2}) {
    const mg::AudioBuffer ref = mg::convert_audio(in, 24000, to_ch);
    mg::AudioConverter conv(44100, 2, 24000, to_ch);
    std::vector<std::vector<float>> out(static_cast<size_t>(to_ch));
    auto take = [&](const mg::AudioBuffer& b) {
      for (int c = 0; c < to_ch; ++c) out[size_t(c)].insert(out[size_t(c)].end(), b.channels[size_t(c)].begin(), b.channels[size_t(c)].end());
    };
    for (int64_t at = 0, i = 0; at < in.num_frames(); ++i) {
      const int64_t k = std::min(block_size(i) * 5, in.num_frames() - at);
      mg::AudioBuffer b;
      b.sample_rate = 44100;
      for (int c = 0; c < 2; ++c)
        b.channels.emplace_back(in.channels[size_t(c)].begin() + at, in.channels[size_t(c)].begin() + at + k);
      take(conv.push(b));
      at += k;
    }
    take(conv.finish());
    for (int c = 0; c < to_ch; ++c) EXPECT_EQ(out[size_t(c)], ref.channels[size_t(c)]) << to_ch << " channels, channel " << c;
  }
}

}  // namespace
