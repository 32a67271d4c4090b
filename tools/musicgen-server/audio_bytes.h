// Audio <-> bytes for HTTP bodies. The C API reads and writes files (libsndfile picks the format
// from the extension on write and from the content on read), so encoded bodies pass through a
// private temporary folder of the server; streamed audio is plain 16-bit PCM made here.
#pragma once

#include <cstdint>
#include <string>

#include "musicgen.h"

namespace mgserver {

// A private folder (mkdtemp under $TMPDIR or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // A fresh file name inside the folder ending in `suffix` (".wav", ".ecdc", ...).
  std::string unique_name(const std::string& suffix) const;

 private:
  std::string path_;
};

bool read_file_bytes(const std::string& path, std::string* out);
bool write_file_bytes(const std::string& path, const std::string& bytes);

// Any file musicgen_audio_read reads -> audio; false with *error set when it cannot be decoded.
bool read_audio_bytes(const std::string& bytes, const TempDir& tmp, musicgen_audio* out, std::string* error);
// Audio -> a wav (16-bit PCM), flac, ogg or mp3 file's bytes; false with *error set on failure.
bool encode_audio(const musicgen_audio& audio, const std::string& format, const TempDir& tmp, std::string* out,
                  std::string* error);

// A 44-byte 16-bit PCM WAV header whose RIFF and data sizes are 0xFFFFFFFF: length not known yet.
std::string wav_stream_header(int sample_rate, int channels);
// Planar float (channel c at planar + c * n) -> interleaved little-endian int16, clamped to [-1, 1].
void append_pcm16(const float* planar, int64_t n, int channels, std::string& out);

}  // namespace mgserver
