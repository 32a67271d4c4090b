#include "codec/audio_file.h"

#include <sndfile.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>

#include <fcntl.h>
#include <unistd.h>

#include "kernels/common.h"

namespace fs = std::filesystem;

namespace mg {

namespace {

// Frames moved between libsndfile and our planar buffers per call: bounds the interleaved scratch.
constexpr int64_t kChunkFrames = 1 << 16;

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// libsndfile format flags for `path`'s extension and the requested subtype.
int sndfile_format_for(const std::string& path, AudioSubtype subtype) {
  const std::string ext = lower_extension(path);
  auto pcm = [&](bool allow_float) {
    switch (subtype) {
      case AudioSubtype::PCM16: return SF_FORMAT_PCM_16;
      case AudioSubtype::PCM24: return SF_FORMAT_PCM_24;
      case AudioSubtype::Float:
        if (!allow_float)
          throw AudioRequestError(
              strcat("cannot write ", path, ": ", ext, " files cannot hold float samples (use pcm16 or pcm24)"));
        return SF_FORMAT_FLOAT;
    }
    return SF_FORMAT_PCM_16;
  };
  if (ext == ".wav") return SF_FORMAT_WAV | pcm(true);
  if (ext == ".flac") return SF_FORMAT_FLAC | pcm(false);
  if (ext == ".ogg") return SF_FORMAT_OGG | SF_FORMAT_VORBIS;
  if (ext == ".mp3") return SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
  throw AudioRequestError(strcat("cannot write ", path, ": unknown audio format '", ext,
                     "' (the extension must be .wav, .flac, .ogg or .mp3)"));
}

// The temporary file write_audio fills before renaming it over the destination. Its destructor
// removes the file unless commit() has renamed it, so every exit path (exception included) cleans up.
class TempFile {
 public:
  explicit TempFile(const std::string& final_path) : final_path_(final_path) {
    fs::path dest(final_path);
    fs::path dir = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
    std::random_device rd;
    for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
      char suffix[32];
      std::snprintf(suffix, sizeof suffix, ".%08x.tmp", static_cast<unsigned>(rd()));
      path_ = (dir / ("." + dest.filename().string() + suffix)).string();
      // 0666 so the final file gets the permissions the umask gives any new file.
      fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && errno != EEXIST) break;
    }
    MG_CHECK(fd_ >= 0, "cannot write ", final_path, ": cannot create a temporary file in ", dir.string(), ": ",
             std::strerror(errno));
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }

  int release_fd() { int fd = fd_; fd_ = -1; return fd; }
  void commit() {
    MG_CHECK(::rename(path_.c_str(), final_path_.c_str()) == 0, "cannot write ", final_path_,
             ": renaming the temporary file ", path_, " failed: ", std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string final_path_;
  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Round-to-nearest of x * 2^(bits-1) after clipping to [-1, 1], saturated to the integer range:
// the float -> PCM rule of ffmpeg (which audiocraft's audio_write pipes through).
inline int32_t float_to_pcm(float x, int bits) {
  const double scale = double(int64_t(1) << (bits - 1));
  double v = std::nearbyint(double(std::clamp(x, -1.0f, 1.0f)) * scale);
  return static_cast<int32_t>(std::min(v, scale - 1.0));
}

void write_frames(SNDFILE* f, const AudioBuffer& buf, AudioSubtype subtype, bool lossy, const std::string& path) {
  const int nch = buf.num_channels();
  const int64_t frames = buf.num_frames();
  std::vector<float> fscratch;
  std::vector<int32_t> iscratch;
  std::vector<short> sscratch;
  for (int64_t start = 0; start < frames; start += kChunkFrames) {
    const int64_t n = std::min(kChunkFrames, frames - start);
    sf_count_t written = 0;
    if (lossy || subtype == AudioSubtype::Float) {
      fscratch.resize(size_t(n * nch));
      for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < nch; ++c) fscratch[size_t(i * nch + c)] = buf.channels[c][size_t(start + i)];
      written = sf_writef_float(f, fscratch.data(), n);
    } else if (subtype == AudioSubtype::PCM16) {
      sscratch.resize(size_t(n * nch));
      for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < nch; ++c)
          sscratch[size_t(i * nch + c)] = static_cast<short>(float_to_pcm(buf.channels[c][size_t(start + i)], 16));
      written = sf_writef_short(f, sscratch.data(), n);
    } else {
      // libsndfile keeps the top 24 bits of an int written to a 24-bit file.
      iscratch.resize(size_t(n * nch));
      for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < nch; ++c)
          iscratch[size_t(i * nch + c)] = float_to_pcm(buf.channels[c][size_t(start + i)], 24) * 256;
      written = sf_writef_int(f, iscratch.data(), n);
    }
    MG_CHECK(written == n, "cannot write ", path, ": the encoder stopped after ", start + written, " of ", frames,
             " frames: ", sf_strerror(f));
  }
}

}  // namespace

AudioBuffer AudioBuffer::zeros(int sample_rate, int channels, int64_t frames) {
  AudioBuffer b;
  b.sample_rate = sample_rate;
  b.channels.assign(size_t(std::max(channels, 0)), std::vector<float>(size_t(std::max<int64_t>(frames, 0)), 0.0f));
  return b;
}

AudioSubtype parse_audio_subtype(const std::string& name) {
  if (name == "pcm16") return AudioSubtype::PCM16;
  if (name == "pcm24") return AudioSubtype::PCM24;
  if (name == "float") return AudioSubtype::Float;
  throw AudioRequestError(strcat("unknown audio subtype '", name, "' (choose pcm16, pcm24 or float)"));
}

const char* audio_subtype_name(AudioSubtype s) {
  switch (s) {
    case AudioSubtype::PCM16: return "pcm16";
    case AudioSubtype::PCM24: return "pcm24";
    case AudioSubtype::Float: return "float";
  }
  return "?";
}

void check_audio_buffer(const AudioBuffer& buf, const std::string& what) {
  auto fail = [](const std::string& msg) { throw AudioDataError(msg); };
  if (buf.sample_rate <= 0) fail(strcat(what, ": the sample rate must be positive, got ", buf.sample_rate));
  if (buf.num_channels() == 0) fail(strcat(what, ": the buffer has no channels"));
  const size_t frames = buf.channels[0].size();
  for (int c = 0; c < buf.num_channels(); ++c) {
    if (buf.channels[size_t(c)].size() != frames)
      fail(strcat(what, ": channel ", c, " has ", buf.channels[size_t(c)].size(), " frames but channel 0 has ", frames));
    for (size_t i = 0; i < frames; ++i)
      if (!std::isfinite(buf.channels[size_t(c)][i]))
        fail(strcat(what, " has a non-finite sample at channel ", c, ", frame ", i));
  }
}

AudioBuffer read_audio(const std::string& path) {
  std::error_code ec;
  MG_CHECK(fs::exists(path, ec), "cannot read audio from ", path, ": no such file");
  MG_CHECK(!fs::is_directory(path, ec), "cannot read audio from ", path, ": it is a folder");

  SF_INFO info{};
  SndfilePtr f(sf_open(path.c_str(), SFM_READ, &info));
  MG_CHECK(f, "cannot read audio from ", path, ": ", sf_strerror(nullptr));
  MG_CHECK(info.channels > 0 && info.samplerate > 0, "cannot read audio from ", path, ": bad header (",
           info.channels, " channels, ", info.samplerate, " Hz)");

  AudioBuffer buf;
  buf.sample_rate = info.samplerate;
  buf.channels.resize(size_t(info.channels));
  // The frame count of compressed streams (mp3) is an estimate: read until the decoder says stop.
  if (info.frames > 0 && info.frames < (int64_t(1) << 31))
    for (auto& ch : buf.channels) ch.reserve(size_t(info.frames));
  std::vector<float> scratch(size_t(kChunkFrames * info.channels));
  for (;;) {
    sf_count_t n = sf_readf_float(f.get(), scratch.data(), kChunkFrames);
    if (n <= 0) break;
    for (int c = 0; c < info.channels; ++c) {
      auto& ch = buf.channels[size_t(c)];
      for (sf_count_t i = 0; i < n; ++i) ch.push_back(scratch[size_t(i * info.channels + c)]);
    }
  }
  MG_CHECK(sf_error(f.get()) == SF_ERR_NO_ERROR, "cannot read audio from ", path, ": ", sf_strerror(f.get()));
  if (buf.num_frames() == 0) throw AudioDataError(strcat(path, " has no samples"));
  check_audio_buffer(buf, path);
  return buf;
}

void write_audio(const std::string& path, const AudioBuffer& buf, const AudioWriteOptions& options) {
  // Everything that can be checked is checked before the temporary file exists.
  check_audio_buffer(buf, strcat("cannot write ", path, ": the audio"));
  const int format = sndfile_format_for(path, options.subtype);
  const bool lossy = (format & SF_FORMAT_TYPEMASK) == SF_FORMAT_OGG || (format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG;

  SF_INFO info{};
  info.samplerate = buf.sample_rate;
  info.channels = buf.num_channels();
  info.format = format;
  if (!sf_format_check(&info))
    throw AudioRequestError(strcat("cannot write ", path, ": this libsndfile cannot write ", buf.num_channels(),
                                   " channels at ", buf.sample_rate, " Hz as ", lower_extension(path),
                                   lossy ? "" : strcat(" ", audio_subtype_name(options.subtype))));

  TempFile tmp(path);
  {
    // close_desc = SF_TRUE: libsndfile owns the descriptor from here.
    SndfilePtr f(sf_open_fd(tmp.release_fd(), SFM_WRITE, &info, SF_TRUE));
    MG_CHECK(f, "cannot write ", path, ": ", sf_strerror(nullptr));
    if ((format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG) {
      // Constant 320 kbit/s, the rate audiocraft asks of lame.
      int mode = SF_BITRATE_MODE_CONSTANT;
      double level = 0.0;
      sf_command(f.get(), SFC_SET_BITRATE_MODE, &mode, sizeof mode);
      sf_command(f.get(), SFC_SET_COMPRESSION_LEVEL, &level, sizeof level);
    }
    write_frames(f.get(), buf, options.subtype, lossy, path);
    sf_write_sync(f.get());
    SNDFILE* raw = f.release();
    MG_CHECK(sf_close(raw) == 0, "cannot write ", path, ": closing the file failed");
  }
  tmp.commit();
}

}  // namespace mg
