// read_audio's bounds on hostile or huge inputs (codec/audio_file.h, docs/LIMITS.md), on files
// made here: a 2-hour WAV (sparse: its samples take no disk), a header that claims 2 hours over
// 48 KB of samples, a 1 Hz header. Each is refused or read with the memory its real samples need,
// checked in a child process through its peak resident memory (ru_maxrss).
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "codec/audio_file.h"
#include "test_util.h"

namespace {

std::string make_wav(const std::string& name, uint32_t rate, uint32_t declared_bytes, uint32_t real_bytes,
                     int64_t file_bytes = 0) {
  const std::string path = mgtest::test_case_dir() + "/" + name;
  mgtest::write_wav_file(path, rate, declared_bytes, real_bytes, file_bytes);
  return path;
}

// Runs `body` in a child; returns its peak resident memory in MB, or -1 when it did not exit 0.
long child_peak_mb(const std::function<bool()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    bool ok = false;
    try {
      ok = body();
    } catch (...) {
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    if (!ok) _exit(1);
    const long mb = ru.ru_maxrss / 1024;
    _exit(int(std::min(mb, 250L)));  // exit statuses stop at 255: 250 means "250 MB or more"
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) == 1) return -1;
  return WEXITSTATUS(status);
}

}  // namespace

TEST(AudioLimits, TwoHourFileIsRefusedFromItsHeader) {
  const uint32_t two_hours = 2 * 3600 * 24000 * 2;  // 345.6 MB of 16-bit samples at 24 kHz
  const std::string path = make_wav("two_hours.wav", 24000, two_hours, 0, 44 + int64_t(two_hours));
  const std::string err = mgtest::error_of([&] { mg::read_audio(path); });
  EXPECT_EQ(err, "cannot read audio from " + path + ": its header says 7200 s, at most 3600 s (one hour) are read; "
                 "cut the file first (e.g. ffmpeg -t 3600)");
  const long mb = child_peak_mb([&] {
    try {
      mg::read_audio(path);
    } catch (const mg::AudioDataError&) {
      return true;
    }
    return false;
  });
  EXPECT_GE(mb, 0) << "not refused as AudioDataError";
  EXPECT_LT(mb, 200) << "refusing it took " << mb << " MB";
}

TEST(AudioLimits, HeaderClaimingTwoHoursOverShortDataReadsWhatIsThere) {
  const std::string path = make_wav("liar.wav", 24000, 2 * 3600 * 24000 * 2, 48000);
  const long mb = child_peak_mb([&] { return mg::read_audio(path).num_frames() == 24000; });
  EXPECT_GE(mb, 0) << "not read as the 24000 frames that are there";
  EXPECT_LT(mb, 200) << "reading 48 KB took " << mb << " MB";
}

TEST(AudioLimits, OneHertzHeaderIsRefused) {
  const std::string path = make_wav("one_hz.wav", 1, 48000, 48000);
  const std::string err = mgtest::error_of([&] { mg::read_audio(path); });
  EXPECT_EQ(err, "cannot read audio from " + path + ": its header says 1 Hz; sample rates from 1000 to 768000 Hz are "
                 "read (a damaged or hostile header?)");
  EXPECT_THROW(mg::read_audio(path), mg::AudioDataError);
}

// libsndfile refuses a 0 Hz header itself ("SF_INFO struct incomplete"): the error says the rate,
// as for any rate out of bounds (1e9 Hz used to read as "input audio has no samples"), for the
// whole-file and the streaming reader alike.
TEST(AudioLimits, ZeroAndGigahertzHeadersSayTheirRate) {
  for (uint32_t rate : {0u, 1000000000u}) {
    const std::string path = make_wav("rate_" + std::to_string(rate) + ".wav", rate, 48000, 48000);
    const std::string want = "cannot read audio from " + path + ": its header says " + std::to_string(rate) +
                             " Hz; sample rates from 1000 to 768000 Hz are read (a damaged or hostile header?)";
    EXPECT_EQ(mgtest::error_of([&] { mg::read_audio(path); }), want);
    EXPECT_EQ(mgtest::error_of([&] { mg::AudioReader r(path); }), want);
  }
}

// A garbage .mp3 used to read as "File does not exist or is not a regular file (possibly a pipe?)".
TEST(AudioLimits, GarbageMp3SaysItCannotBeDecoded) {
  const std::string path = mgtest::test_case_dir() + "/garbage.mp3";
  std::string bytes(5000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 7919) % 256);
  std::ofstream(path, std::ios::binary) << bytes;
  for (const std::string& err : {mgtest::error_of([&] { mg::read_audio(path); }),
                                 mgtest::error_of([&] { mg::AudioReader r(path); })}) {
    EXPECT_EQ(err.rfind("cannot read audio from " + path + ": it is not an audio file this build can decode, or it "
                        "is damaged", 0),
              0u)
        << err;
    EXPECT_EQ(err.find("File does not exist"), std::string::npos) << err;
    EXPECT_NE(err.find("; use a valid WAV, FLAC, OGG or MP3 file"), std::string::npos) << err;
  }
}

TEST(AudioLimits, AnHourIsStillRead) {
  // 8 kHz keeps the sparse file small in memory: 3600 s * 8000 = 28.8 M frames, 115 MB as floats.
  const uint32_t bytes = 3600u * 8000u * 2u;
  const std::string path = make_wav("hour.wav", 8000, bytes, 0, 44 + int64_t(bytes));
  const long mb = child_peak_mb([&] { return mg::read_audio(path).num_frames() == 3600 * 8000; });
  EXPECT_GE(mb, 0);
}

TEST(AudioLimits, LimitedReadRefusesALongerFileFromItsHeader) {
  const uint32_t two_hours = 2 * 3600 * 24000 * 2;
  const std::string path = make_wav("long_prompt.wav", 24000, two_hours, 0, 44 + int64_t(two_hours));
  const std::string err = mgtest::error_of([&] { mg::read_audio_limited(path, 12, false); });
  EXPECT_EQ(err, "cannot read audio from " + path + ": its header says 7200 s, at most 12 s can be used here; cut the "
                 "file first (e.g. ffmpeg -t 12)");
}

TEST(AudioLimits, LimitedReadCutsAndNeverDecodesTheRest) {
  const uint32_t two_hours = 2 * 3600 * 24000 * 2;
  const std::string path = make_wav("long_melody.wav", 24000, two_hours, 96000, 44 + int64_t(two_hours));
  const long mb = child_peak_mb([&] { return mg::read_audio_limited(path, 12, true).num_frames() == 12 * 24000; });
  EXPECT_GE(mb, 0) << "not cut to 12 s";
  EXPECT_LT(mb, 200) << "cutting took " << mb << " MB";
  EXPECT_EQ(mgtest::error_of([&] { mg::read_audio_limited(path, 0, true); }),
            "cannot read audio from " + path + ": the most to read must be in (0, 3600] s, found 0");
}
