// One model, many sessions, many threads: 4 threads each run their own session over ONE loaded
// model (tiny MusicGen; tiny EnCodec encode + decode), and every output is byte-identical to the
// same request run alone. Run under ThreadSanitizer by scripts/test.sh (build-tsan,
// -DMUSICGEN_SANITIZE=thread), where a data race on shared state fails the test; in the normal
// build it checks the results and that nothing crashes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "encodec.h"
#include "musicgen.h"
#include "test_util.h"

namespace {

constexpr int kThreads = 4;

using Model = std::unique_ptr<musicgen_model, void (*)(musicgen_model*)>;
using Session = std::unique_ptr<musicgen_session, void (*)(musicgen_session*)>;
using CodecModel = std::unique_ptr<encodec_model, void (*)(encodec_model*)>;
using CodecSession = std::unique_ptr<encodec_session, void (*)(encodec_session*)>;

// Each session gets 2 threads of its own, so the sessions' thread pools run at the same time too.
Session new_session(const musicgen_model* m) {
  musicgen_session_params sp = musicgen_session_default_params();
  sp.n_threads = 2;
  musicgen_session* s = nullptr;
  EXPECT_EQ(musicgen_session_create(m, &sp, &s), MUSICGEN_OK) << musicgen_last_error();
  return Session(s, musicgen_session_free);
}

CodecSession new_codec_session(const encodec_model* m) {
  encodec_session_params sp = encodec_session_default_params();
  sp.n_threads = 2;
  encodec_session* s = nullptr;
  EXPECT_EQ(encodec_session_create(m, &sp, &s), MUSICGEN_OK) << musicgen_last_error();
  return CodecSession(s, encodec_session_free);
}

// Request i: its own prompt and seed, sampled (not greedy), so each session's RNG state matters.
std::vector<float> generate(musicgen_session* s, int i) {
  static const char* const kPrompts[kThreads] = {"80s pop with synths", "calm piano", "", "drum and bass"};
  musicgen_generate_params p = musicgen_generate_default_params();
  p.prompt = kPrompts[i];
  p.duration_s = 0.4f;
  p.seed = 100 + uint64_t(i);
  p.top_k = 50;
  musicgen_audio a{};
  if (musicgen_session_generate(s, &p, &a) != MUSICGEN_OK) {
    ADD_FAILURE() << "request " << i << ": " << musicgen_last_error();
    return {};
  }
  std::vector<float> out(a.samples, a.samples + a.n_samples * a.channels);
  musicgen_audio_free(&a);
  return out;
}

// Clip i: a different tone per thread, encoded at the highest bandwidth and decoded again.
std::vector<float> roundtrip(encodec_session* s, const encodec_model* m, int i) {
  const int sr = encodec_model_sample_rate(m), ch = encodec_model_channels(m);
  const int64_t n = sr / 4;
  encodec_audio* in = nullptr;
  EXPECT_EQ(encodec_audio_create(sr, ch, n, &in), MUSICGEN_OK);
  for (int c = 0; c < ch; ++c) {
    float* x = encodec_audio_channel_data(in, c);
    for (int64_t t = 0; t < n; ++t) x[t] = 0.3f * float(std::sin(0.01 * double((i + 1) * (c + 1)) * double(t)));
  }
  encodec_codes* codes = nullptr;
  encodec_audio* out = nullptr;
  std::vector<float> y;
  if (encodec_session_encode(s, in, 0, &codes) == MUSICGEN_OK && encodec_session_decode(s, codes, &out) == MUSICGEN_OK) {
    for (int c = 0; c < encodec_audio_channels(out); ++c) {
      const float* d = encodec_audio_channel_data_const(out, c);
      y.insert(y.end(), d, d + encodec_audio_frames(out));
    }
  } else {
    ADD_FAILURE() << "clip " << i << ": " << musicgen_last_error();
  }
  encodec_audio_free(out);
  encodec_codes_free(codes);
  encodec_audio_free(in);
  return y;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return !a.empty() && a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

Model load_musicgen() {
  musicgen_model_params mp = musicgen_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  musicgen_model* m = nullptr;
  const std::string dir = mgtest::data_dir() + "/models/musicgen_tiny";
  EXPECT_EQ(musicgen_model_load(dir.c_str(), &mp, &m), MUSICGEN_OK) << musicgen_last_error();
  return Model(m, musicgen_model_free);
}

}  // namespace

TEST(SessionsThreads, FourMusicgenSessionsOnOneModelMatchRunsAlone) {
  Model model = load_musicgen();
  ASSERT_NE(model, nullptr);
  std::vector<std::vector<float>> alone(kThreads), together(kThreads);
  {
    Session s = new_session(model.get());
    for (int i = 0; i < kThreads; ++i) alone[i] = generate(s.get(), i);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      Session s = new_session(model.get());
      together[i] = generate(s.get(), i);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_TRUE(same_bytes(together[i], alone[i])) << "request " << i;
  EXPECT_FALSE(same_bytes(alone[0], alone[1])) << "different requests should give different audio";
}

TEST(SessionsThreads, FourEncodecSessionsOnOneModelMatchRunsAlone) {
  encodec_model_params mp = encodec_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  encodec_model* raw = nullptr;
  const std::string dir = mgtest::data_dir() + "/models/encodec_24khz_tiny";
  ASSERT_EQ(encodec_model_load(dir.c_str(), &mp, &raw), MUSICGEN_OK) << musicgen_last_error();
  CodecModel model(raw, encodec_model_free);
  std::vector<std::vector<float>> alone(kThreads), together(kThreads);
  {
    CodecSession s = new_codec_session(model.get());
    for (int i = 0; i < kThreads; ++i) alone[i] = roundtrip(s.get(), model.get(), i);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      CodecSession s = new_codec_session(model.get());
      together[i] = roundtrip(s.get(), model.get(), i);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_TRUE(same_bytes(together[i], alone[i])) << "clip " << i;
}

// A MusicGen model's codec serves EnCodec sessions while MusicGen sessions generate with the model.
TEST(SessionsThreads, MusicgenAndItsCodecSessionsTogether) {
  Model model = load_musicgen();
  ASSERT_NE(model, nullptr);
  const encodec_model* codec = musicgen_model_codec(model.get());
  std::vector<float> gen_alone, codec_alone, gen_together, codec_together;
  {
    Session s = new_session(model.get());
    CodecSession c = new_codec_session(codec);
    gen_alone = generate(s.get(), 0);
    codec_alone = roundtrip(c.get(), codec, 1);
  }
  std::thread a([&] {
    Session s = new_session(model.get());
    gen_together = generate(s.get(), 0);
  });
  std::thread b([&] {
    CodecSession c = new_codec_session(codec);
    codec_together = roundtrip(c.get(), codec, 1);
  });
  a.join();
  b.join();
  EXPECT_TRUE(same_bytes(gen_together, gen_alone));
  EXPECT_TRUE(same_bytes(codec_together, codec_alone));
}
