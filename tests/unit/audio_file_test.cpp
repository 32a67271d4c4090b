// codec/audio_file: reading errors, write/read round trips per format and subtype, clipping, and
// the promise that a failed write leaves no file (neither the output nor its temporary); plus the
// audio half of the C API (include/encodec.h), which wraps these functions.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>

#include <unistd.h>

#include "codec/audio_file.h"
#include "encodec.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

// A fresh empty folder per test, so "nothing was left behind" is a listing of it.
std::string fresh_dir(const std::string& name) {
  fs::path p = fs::path(mgtest::temp_dir()) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Two channels of distinct, deterministic music-like samples in (-0.9, 0.9).
mg::AudioBuffer test_buffer(int rate = 32000, int64_t frames = 4000) {
  mg::AudioBuffer b = mg::AudioBuffer::zeros(rate, 2, frames);
  for (int64_t i = 0; i < frames; ++i) {
    b.channels[0][size_t(i)] = float(0.6 * std::sin(2 * M_PI * 440.0 * double(i) / rate));
    b.channels[1][size_t(i)] = float(0.3 * std::sin(2 * M_PI * 1000.0 * double(i) / rate + 0.5) + 0.1);
  }
  return b;
}

using mgtest::error_of;

// A float WAV written straight through libsndfile, bypassing write_audio's checks.
void write_raw_float_wav(const std::string& path, const std::vector<float>& interleaved, int channels) {
  SF_INFO info{};
  info.samplerate = 16000;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  sf_writef_float(f, interleaved.data(), sf_count_t(interleaved.size() / size_t(channels)));
  sf_close(f);
}

// ---------------------------------------------------------------- reading errors

TEST(ReadAudio, MissingFileNamesThePath) {
  const std::string msg = error_of([] { mg::read_audio("/no/such/dir/x.wav"); });
  EXPECT_NE(msg.find("cannot read audio from /no/such/dir/x.wav"), std::string::npos) << msg;
}

TEST(ReadAudio, UnreadableFileGivesTheSndfileMessage) {
  const std::string dir = fresh_dir("unreadable");
  const std::string path = dir + "/garbage.wav";
  std::ofstream(path) << "this is not audio at all, just text pretending to be a wav file";
  const std::string msg = error_of([&] { mg::read_audio(path); });
  EXPECT_NE(msg.find("cannot read audio from " + path + ": "), std::string::npos) << msg;
  EXPECT_GT(msg.size(), ("cannot read audio from " + path + ": ").size()) << "no libsndfile reason: " << msg;
  EXPECT_NE(error_of([&] { mg::read_audio(dir); }).find("folder"), std::string::npos);
}

TEST(ReadAudio, EmptyFileHasNoSamples) {
  const std::string path = fresh_dir("empty") + "/empty.wav";
  mg::write_audio(path, mg::AudioBuffer::zeros(16000, 1, 0));
  EXPECT_EQ(error_of([&] { mg::read_audio(path); }), path + " has no samples");
}

TEST(ReadAudio, NonFiniteSampleIsLocated) {
  const std::string path = fresh_dir("nan") + "/nan.wav";
  std::vector<float> interleaved(20, 0.25f);
  interleaved[2 * 5 + 1] = std::numeric_limits<float>::quiet_NaN();  // channel 1, frame 5
  write_raw_float_wav(path, interleaved, 2);
  EXPECT_EQ(error_of([&] { mg::read_audio(path); }), path + " has a non-finite sample at channel 1, frame 5");
  EXPECT_THROW(mg::read_audio(path), mg::AudioDataError);
}

TEST(ReadAudio, DecodesSharedMp3AndWav) {
  const std::string dir = mgtest::test_audio_dir();
  MG_REQUIRE_TEST_AUDIO(dir);
  const mg::AudioBuffer mp3 = mg::read_audio(dir + "/sep_drums_1.mp3");
  EXPECT_EQ(mp3.sample_rate, 32000);
  EXPECT_EQ(mp3.num_channels(), 1);
  EXPECT_NEAR(mp3.seconds(), 10.1, 0.1);
  const mg::AudioBuffer wav = mg::read_audio(dir + "/CJ_Beatbox_Loop_05_90.wav");
  EXPECT_EQ(wav.sample_rate, 44100);
  EXPECT_EQ(wav.num_channels(), 2);
  EXPECT_EQ(wav.num_frames(), 470400);
}

// ---------------------------------------------------------------- round trips

struct RoundTrip {
  const char* ext;
  mg::AudioSubtype subtype;
  double tolerance;  // max |read - written|
};

class AudioRoundTrip : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(AudioRoundTrip, ReadsBackWhatWasWritten) {
  const RoundTrip rt = GetParam();
  const std::string dir = fresh_dir(std::string("rt") + rt.ext + mg::audio_subtype_name(rt.subtype));
  const std::string path = dir + "/out" + rt.ext;
  const mg::AudioBuffer in = test_buffer();
  mg::write_audio(path, in, {rt.subtype});
  EXPECT_EQ(listing(dir), std::vector<std::string>{"out" + std::string(rt.ext)}) << "a temporary file was left";
  const mg::AudioBuffer back = mg::read_audio(path);
  EXPECT_EQ(back.sample_rate, in.sample_rate);
  ASSERT_EQ(back.num_channels(), in.num_channels());
  ASSERT_EQ(back.num_frames(), in.num_frames());
  for (int c = 0; c < in.num_channels(); ++c)
    EXPECT_LE(mgtest::max_abs_diff(back.channels[size_t(c)], in.channels[size_t(c)]), rt.tolerance) << "channel " << c;
}

INSTANTIATE_TEST_SUITE_P(
    Formats, AudioRoundTrip,
    ::testing::Values(RoundTrip{".wav", mg::AudioSubtype::PCM16, 1.0 / 32768},
                      RoundTrip{".wav", mg::AudioSubtype::PCM24, 1.0 / 8388608},
                      RoundTrip{".wav", mg::AudioSubtype::Float, 0.0},
                      RoundTrip{".flac", mg::AudioSubtype::PCM16, 1.0 / 32768},
                      RoundTrip{".flac", mg::AudioSubtype::PCM24, 1.0 / 8388608}),
    [](const ::testing::TestParamInfo<RoundTrip>& info) {
      return std::string(info.param.ext + 1) + "_" + mg::audio_subtype_name(info.param.subtype);
    });

// Lossy codecs: the rate and channels survive, the length within one codec frame, and the signal
// stays close (they cut high frequencies and shift phase a little, so no sample-exact check).
TEST(AudioRoundTripLossy, OggAndMp3KeepTheSignal) {
  for (const char* ext : {".ogg", ".mp3"}) {
    SCOPED_TRACE(ext);
    const std::string dir = fresh_dir(std::string("lossy") + (ext + 1));
    const std::string path = dir + "/out" + ext;
    const mg::AudioBuffer in = test_buffer(32000, 32000);
    mg::write_audio(path, in);
    EXPECT_EQ(listing(dir).size(), 1u);
    const mg::AudioBuffer back = mg::read_audio(path);
    EXPECT_EQ(back.sample_rate, in.sample_rate);
    ASSERT_EQ(back.num_channels(), 2);
    EXPECT_NEAR(double(back.num_frames()), double(in.num_frames()), 2304.0);
    // Energy of the middle second's first channel: 0.6 amplitude sine -> mean square 0.18.
    double e = 0;
    for (int64_t i = 8000; i < 24000; ++i) e += double(back.channels[0][size_t(i)]) * back.channels[0][size_t(i)];
    EXPECT_NEAR(e / 16000, 0.18, 0.02);
  }
}

TEST(WriteAudio, IntegerSubtypesClipToUnitRange) {
  const std::string path = fresh_dir("clip") + "/clip.wav";
  const mg::AudioBuffer in{16000, {{1.5f, -2.0f, 1.0f, -1.0f, 0.5f}}};
  mg::write_audio(path, in, {mg::AudioSubtype::PCM16});
  const std::vector<float> back = mg::read_audio(path).channels[0];
  const std::vector<float> expected = {32767.0f / 32768, -1.0f, 32767.0f / 32768, -1.0f, 0.5f};
  EXPECT_EQ(back, expected);
  // float keeps out-of-range samples as they are
  mg::write_audio(path, in, {mg::AudioSubtype::Float});
  EXPECT_EQ(mg::read_audio(path).channels[0], in.channels[0]);
}

// ---------------------------------------------------------------- no half files

TEST(WriteAudio, FailuresLeaveNoFile) {
  const std::string dir = fresh_dir("nohalf");
  mg::AudioBuffer nan_buf = test_buffer();
  nan_buf.channels[1][123] = std::numeric_limits<float>::infinity();

  // A bad buffer: refused with the sample's position, nothing on disk.
  std::string msg = error_of([&] { mg::write_audio(dir + "/nan.wav", nan_buf); });
  EXPECT_NE(msg.find("non-finite sample at channel 1, frame 123"), std::string::npos) << msg;
  // Requests the format cannot meet.
  EXPECT_THROW(mg::write_audio(dir + "/x.aiff", test_buffer()), mg::AudioRequestError);
  EXPECT_THROW(mg::write_audio(dir + "/x.flac", test_buffer(), {mg::AudioSubtype::Float}), mg::AudioRequestError);
  EXPECT_THROW(mg::write_audio(dir + "/x.mp3", test_buffer(96000)), mg::Error);  // no 96 kHz in MPEG audio
  // Ragged channels.
  mg::AudioBuffer ragged = test_buffer();
  ragged.channels[1].pop_back();
  EXPECT_THROW(mg::write_audio(dir + "/ragged.wav", ragged), mg::AudioDataError);
  EXPECT_EQ(listing(dir), std::vector<std::string>{}) << "a failed write left a file";

  // A folder that does not exist, and one we may not write (root ignores permissions: skip that).
  EXPECT_NE(error_of([&] { mg::write_audio(dir + "/missing/out.wav", test_buffer()); }).find("temporary file"),
            std::string::npos);
  if (::geteuid() != 0) {
    const std::string ro = fresh_dir("readonly");
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_THROW(mg::write_audio(ro + "/out.wav", test_buffer()), mg::Error);
    fs::permissions(ro, fs::perms::owner_all);
    EXPECT_EQ(listing(ro), std::vector<std::string>{});
  }
}

TEST(WriteAudio, FailedOverwriteKeepsTheOldFile) {
  const std::string dir = fresh_dir("overwrite");
  const std::string path = dir + "/keep.wav";
  const mg::AudioBuffer good = test_buffer();
  mg::write_audio(path, good, {mg::AudioSubtype::Float});
  mg::AudioBuffer bad = test_buffer(32000, 8000);
  bad.channels[0][7000] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(mg::write_audio(path, bad), mg::Error);
  EXPECT_EQ(listing(dir), std::vector<std::string>{"keep.wav"});
  EXPECT_EQ(mg::read_audio(path).channels, good.channels);
}

// A full disk at any point (header, samples, the encoder's last frames at close): every format
// reports the system's reason, keeps the old file and leaves no temporary. The failure is injected
// through AtomicFile's test hook; atomic_file_test also fills a real tmpfs where it may mount one.
TEST(WriteAudio, FullDiskIsReportedForEveryFormat) {
  const mg::AudioBuffer buf = test_buffer(32000, 32000);
  for (const std::string ext : {".wav", ".flac", ".ogg", ".mp3"}) {
    const std::string dir = fresh_dir("full-disk" + ext), path = dir + "/out" + ext;
    mg::write_audio(path, buf);
    const std::string before = mgtest::slurp(path);
    for (long after : {0L, 10L, 2000L, long(before.size()) - 1}) {
      setenv("MUSICGEN_TEST_FAIL_WRITE_AFTER", std::to_string(after).c_str(), 1);
      const std::string err = error_of([&] { mg::write_audio(path, buf); });
      unsetenv("MUSICGEN_TEST_FAIL_WRITE_AFTER");
      EXPECT_NE(err.find("No space left on device"), std::string::npos) << ext << " after " << after << ": " << err;
      EXPECT_EQ(mgtest::slurp(path), before) << ext;
      EXPECT_EQ(listing(dir), std::vector<std::string>{"out" + ext}) << ext << ": a temporary was left";
    }
  }
}

// A FIFO, and a link to a device, are refused before anything is written, and left as they were.
TEST(WriteAudio, RefusesOutputsThatAreNotRegularFiles) {
  const std::string dir = fresh_dir("not-regular"), fifo = dir + "/pipe.wav";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { mg::write_audio(fifo, test_buffer()); }).find("FIFO"), std::string::npos);
  fs::create_symlink("/dev/full", dir + "/full.wav");
  EXPECT_NE(error_of([&] { mg::write_audio(dir + "/full.wav", test_buffer()); }).find("link to a character device"),
            std::string::npos);
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"full.wav", "pipe.wav"}));
  EXPECT_TRUE(fs::is_fifo(fifo));
}

TEST(AudioSubtype, ParsesItsNames) {
  for (auto s : {mg::AudioSubtype::PCM16, mg::AudioSubtype::PCM24, mg::AudioSubtype::Float})
    EXPECT_EQ(mg::parse_audio_subtype(mg::audio_subtype_name(s)), s);
  EXPECT_THROW(mg::parse_audio_subtype("pcm8"), mg::Error);
}

// ---------------------------------------------------------------- C API

TEST(EncodecAudioApi, StatusesAndMessages) {
  const std::string dir = fresh_dir("capi");
  encodec_audio* a = reinterpret_cast<encodec_audio*>(0x1);
  EXPECT_EQ(encodec_audio_read("/no/such/file.wav", &a), MUSICGEN_ERROR_IO);
  EXPECT_EQ(a, nullptr);
  EXPECT_NE(std::string(encodec_last_error()).find("/no/such/file.wav"), std::string::npos);
  EXPECT_EQ(encodec_audio_read(nullptr, &a), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(encodec_audio_create(0, 1, 10, &a), MUSICGEN_ERROR_INVALID_ARGUMENT);

  ASSERT_EQ(encodec_audio_create(44100, 2, 4410, &a), MUSICGEN_OK);
  EXPECT_EQ(encodec_audio_channels(a), 2);
  EXPECT_EQ(encodec_audio_frames(a), 4410);
  EXPECT_EQ(encodec_audio_channel_data(a, 2), nullptr);
  for (int64_t i = 0; i < 4410; ++i) encodec_audio_channel_data(a, 0)[i] = float(std::sin(0.05 * double(i)) * 0.5);

  encodec_audio* mono = nullptr;
  ASSERT_EQ(encodec_audio_convert(a, 32000, 1, &mono), MUSICGEN_OK);
  EXPECT_EQ(encodec_audio_sample_rate(mono), 32000);
  EXPECT_EQ(encodec_audio_channels(mono), 1);
  EXPECT_EQ(encodec_audio_frames(mono), 3200);
  encodec_audio* bad = nullptr;
  EXPECT_EQ(encodec_audio_convert(a, 32000, 3, &bad), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(bad, nullptr);

  const std::string path = dir + "/mono.flac";
  ASSERT_EQ(encodec_audio_write(path.c_str(), mono, ENCODEC_SUBTYPE_PCM24), MUSICGEN_OK) << encodec_last_error();
  EXPECT_EQ(encodec_audio_write((dir + "/m.flac").c_str(), mono, ENCODEC_SUBTYPE_FLOAT),
            MUSICGEN_ERROR_INVALID_ARGUMENT);
  encodec_audio_channel_data(mono, 0)[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(encodec_audio_write((dir + "/nan.wav").c_str(), mono, ENCODEC_SUBTYPE_PCM16), MUSICGEN_ERROR_FORMAT);
  EXPECT_NE(std::string(encodec_last_error()).find("frame 5"), std::string::npos) << encodec_last_error();
  EXPECT_EQ(listing(dir), std::vector<std::string>{"mono.flac"});

  encodec_audio* back = nullptr;
  ASSERT_EQ(encodec_audio_read(path.c_str(), &back), MUSICGEN_OK);
  EXPECT_EQ(encodec_audio_frames(back), 3200);
  EXPECT_STREQ(musicgen_status_string(MUSICGEN_OK), "ok");
  encodec_audio_free(back);
  encodec_audio_free(mono);
  encodec_audio_free(a);
  encodec_audio_free(nullptr);
}

}  // namespace
