// Full-size EnCodec check (label `slow`, not in the default run): random-weight encodec_24khz and
// encodec_32khz with the real widths, written by tools/reference/make_fullsize_models.py into
// tools/reference/local/ (90-240 MB each, never committed), against transformers' codes and decoded
// audio for 4 s of real music saved next to them (<name>-check.safetensors).
// Trap: the tiny parity models are 4-8 channels wide, so nothing there would notice a bug that needs
// real widths: GEMM tiles and thread splits that only occur with 64-1024 channels, im2col tiles much
// shorter than the signal, a 1024-wide LSTM, 2048-entry codebooks. Also run with windows of a few
// frames, so the windowed pass (receptive-field margins, carried LSTM state) is checked at real size.
// Skips when the local files are absent (CI): build them with the script above first.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "codec/encodec.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

constexpr double kAudioTol = 1e-4;

void check_model(const std::string& name, int64_t window_frames) {
  const std::string dir = mgtest::source_dir() + "/tools/reference/local/" + name;
  const std::string check = dir + "-check.safetensors";
  if (!std::filesystem::exists(dir) || !std::filesystem::exists(check))
    GTEST_SKIP() << dir << " or its check file is absent: run tools/reference/make_fullsize_models.py";
  auto be = mg::make_cpu_backend(0);
  auto m = mg::EncodecModel::load(*be, dir);
  if (window_frames > 0) m->set_window_frames(window_frames);
  const auto ref = mg::load_safetensors(check);
  const mg::Tensor audio = ref.at("audio");
  for (const char* tag : {"low", "high"}) {
    // The script's "low" and "high": the model's first and last bandwidth.
    const auto& bws = m->config().target_bandwidths;
    const double bw = std::string(tag) == "low" ? bws.front() : bws.back();
    const mg::EncodedAudio enc = m->encode(audio.clone(), bw);
    ASSERT_EQ(enc.segments.size(), 1u);
    const mg::Tensor& codes = enc.segments[0];
    const mg::Tensor want = ref.at(std::string("codes_") + tag);
    ASSERT_EQ(codes.shape, want.shape) << tag;
    int64_t diff = 0;
    for (int64_t i = 0; i < codes.numel(); ++i) diff += codes.ptr<int64_t>()[i] != want.ptr<int32_t>()[i];
    EXPECT_EQ(diff, 0) << name << " " << tag << ": " << diff << " of " << codes.numel() << " codes differ";
    // Decode the reference's codes, so the decoder is checked even if a code differed.
    mg::EncodedAudio rc = enc;
    for (int64_t i = 0; i < codes.numel(); ++i) rc.segments[0].ptr<int64_t>()[i] = want.ptr<int32_t>()[i];
    const mg::Tensor dec = m->decode(rc);
    // transformers returns whole frames; we trim to the input's length as encodec does.
    ASSERT_EQ(dec.dim(1), audio.dim(1));
    const double err = mgtest::rel_err(dec, mgtest::first_cols(ref.at(std::string("decoded_") + tag), dec.dim(1)));
    EXPECT_LE(err, kAudioTol) << name << " " << tag;
    std::printf("%s %s (%g kbps, window %lld): %lld codes, %lld differ; decoded rel err %.2e\n", name.c_str(), tag,
                bw, (long long)window_frames, (long long)codes.numel(), (long long)diff, err);
  }
}

TEST(EncodecFullSize, Model32kHzMatchesTransformers) { check_model("encodec_32khz_random", 0); }
TEST(EncodecFullSize, Model32kHzWindowedMatchesTransformers) { check_model("encodec_32khz_random", 23); }
TEST(EncodecFullSize, Model24kHzMatchesTransformers) { check_model("encodec_24khz_random", 0); }
TEST(EncodecFullSize, Model24kHzWindowedMatchesTransformers) { check_model("encodec_24khz_random", 31); }

}  // namespace
