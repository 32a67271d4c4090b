#include "audio_bytes.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace mgserver {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/musicgen-server-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary folder under " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::unique_name(const std::string& suffix) const {
  static std::atomic<uint64_t> counter{0};
  return path_ + "/" + std::to_string(counter.fetch_add(1)) + suffix;
}

bool read_file_bytes(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return !f.bad();
}

bool write_file_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  return bool(f);
}

bool read_audio_bytes(const std::string& bytes, const TempDir& tmp, musicgen_audio* out, std::string* error) {
  const std::string path = tmp.unique_name(".upload");
  if (bytes.empty()) {
    *error = "the uploaded file is empty";
    return false;
  }
  if (!write_file_bytes(path, bytes)) {
    *error = "cannot store the upload under " + tmp.path() + " (disk full?)";
    return false;
  }
  const bool ok = musicgen_audio_read(path.c_str(), out) == MUSICGEN_OK;
  if (!ok) *error = std::string("not a readable wav/flac/ogg/mp3 file (") + musicgen_last_error() + ")";
  std::error_code ec;
  fs::remove(path, ec);
  return ok;
}

bool encode_audio(const musicgen_audio& audio, const std::string& format, const TempDir& tmp, std::string* out,
                  std::string* error) {
  const std::string path = tmp.unique_name("." + format);
  bool ok = musicgen_audio_write(&audio, path.c_str()) == MUSICGEN_OK;
  if (!ok) *error = std::string("cannot encode the audio as ") + format + ": " + musicgen_last_error();
  if (ok && !read_file_bytes(path, out)) {
    ok = false;
    *error = "cannot read back the encoded audio from " + path;
  }
  std::error_code ec;
  fs::remove(path, ec);
  return ok;
}

namespace {
void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}
void put_u16(std::string& s, uint16_t v) {
  s.push_back(char(v & 0xff));
  s.push_back(char(v >> 8));
}
}  // namespace

std::string wav_stream_header(int sample_rate, int channels) {
  std::string h = "RIFF";
  put_u32(h, 0xffffffffu);
  h += "WAVEfmt ";
  put_u32(h, 16);
  put_u16(h, 1);  // PCM
  put_u16(h, uint16_t(channels));
  put_u32(h, uint32_t(sample_rate));
  put_u32(h, uint32_t(sample_rate * channels * 2));
  put_u16(h, uint16_t(channels * 2));
  put_u16(h, 16);
  h += "data";
  put_u32(h, 0xffffffffu);
  return h;
}

void append_pcm16(const float* planar, int64_t n, int channels, std::string& out) {
  out.reserve(out.size() + size_t(n * channels * 2));
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < channels; ++c) {
      const float x = std::clamp(planar[c * n + i], -1.0f, 1.0f);
      const int16_t v = int16_t(std::lrint(x * 32767.0f));
      out.push_back(char(uint16_t(v) & 0xff));
      out.push_back(char(uint16_t(v) >> 8));
    }
}

}  // namespace mgserver
