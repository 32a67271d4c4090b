#include "codec/audio_file.h"

#include <sndfile.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>


#include "codec/atomic_file.h"
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

// Why sf_open refused `path` (which exists and is not a folder), for "cannot read audio from
// <path>: ...". libsndfile's own texts mislead here: a WAV header with a 0 Hz rate or 0 channels
// reads "SF_INFO struct incomplete", a garbage .mp3 "File does not exist or is not a regular file".
std::string open_failure_reason(const std::string& path) {
  unsigned char h[36] = {};
  FILE* fp = std::fopen(path.c_str(), "rb");
  const size_t n = fp ? std::fread(h, 1, sizeof h, fp) : 0;
  if (fp) std::fclose(fp);
  if (n == sizeof h && std::memcmp(h, "RIFF", 4) == 0 && std::memcmp(h + 8, "WAVEfmt ", 8) == 0) {
    const unsigned channels = h[22] | (h[23] << 8);
    const uint32_t rate = uint32_t(h[24]) | uint32_t(h[25]) << 8 | uint32_t(h[26]) << 16 | uint32_t(h[27]) << 24;
    if (rate < uint32_t(kMinAudioSampleRate) || rate > uint32_t(kMaxAudioSampleRate))
      return strcat("its header says ", rate, " Hz; sample rates from ", kMinAudioSampleRate, " to ",
                    kMaxAudioSampleRate, " Hz are read (a damaged or hostile header?)");
    if (channels == 0) return "its header says 0 channels (a damaged or hostile header?)";
  }
  // "File does not exist or is not a regular file" is libsndfile's answer to an undecodable MP3.
  const std::string why = sf_strerror(nullptr);
  const std::string detail = why.rfind("File does not exist", 0) == 0 ? "" : " (libsndfile: " + why + ")";
  return "it is not an audio file this build can decode, or it is damaged" + detail +
         "; use a valid WAV, FLAC, OGG or MP3 file";
}

// `path` opened for reading, its header checked: a missing file, a folder, what libsndfile cannot
// open and a channel count or sample rate out of range are each a clear error.
SndfilePtr open_for_reading(const std::string& path, SF_INFO* info) {
  std::error_code ec;
  MG_CHECK(fs::exists(path, ec), "cannot read audio from ", path, ": no such file");
  MG_CHECK(!fs::is_directory(path, ec), "cannot read audio from ", path, ": it is a folder");
  *info = SF_INFO{};
  SndfilePtr f(sf_open(path.c_str(), SFM_READ, info));
  if (!f) throw Error(strcat("cannot read audio from ", path, ": ", open_failure_reason(path)));
  MG_CHECK(info->channels > 0 && info->samplerate > 0, "cannot read audio from ", path, ": bad header (",
           info->channels, " channels, ", info->samplerate, " Hz)");
  if (info->samplerate < kMinAudioSampleRate || info->samplerate > kMaxAudioSampleRate)
    throw AudioDataError(strcat("cannot read audio from ", path, ": its header says ", info->samplerate,
                                " Hz; sample rates from ", kMinAudioSampleRate, " to ", kMaxAudioSampleRate,
                                " Hz are read (a damaged or hostile header?)"));
  return f;
}

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

// libsndfile writes through these callbacks into the AtomicFile, so every byte it writes (header
// rewrites included) is checked and a failure keeps its errno ("No space left on device") instead
// of libsndfile's generic message. They never throw: libsndfile is C.
AtomicFile& out_of(void* user) { return *static_cast<AtomicFile*>(user); }
sf_count_t vio_length(void* u) { return out_of(u).size(); }
sf_count_t vio_seek(sf_count_t offset, int whence, void* u) { return out_of(u).seek(offset, whence); }
sf_count_t vio_read(void* p, sf_count_t n, void* u) { return out_of(u).read(p, size_t(n)); }
sf_count_t vio_write(const void* p, sf_count_t n, void* u) { return out_of(u).write(p, size_t(n)) ? n : 0; }
sf_count_t vio_tell(void* u) { return out_of(u).tell(); }

// Round-to-nearest of x * 2^(bits-1) after clipping to [-1, 1], saturated to the integer range:
// the float -> PCM rule of ffmpeg (which audiocraft's audio_write pipes through).
inline int32_t float_to_pcm(float x, int bits) {
  const double scale = double(int64_t(1) << (bits - 1));
  double v = std::nearbyint(double(std::clamp(x, -1.0f, 1.0f)) * scale);
  return static_cast<int32_t>(std::min(v, scale - 1.0));
}

// Writes the frames of `buf`; `before`: frames written before this block (for the message).
void write_frames(SNDFILE* f, const AudioBuffer& buf, AudioSubtype subtype, bool lossy, const AtomicFile& out,
                  int64_t before) {
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
    out.check();  // the file's own error (a full disk) says more than the encoder's
    MG_CHECK(written == n, "cannot write '", out.path(), "': the encoder stopped after ", before + start + written,
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

AudioBuffer read_audio(const std::string& path) { return read_audio_limited(path, kMaxAudioSeconds, false); }

AudioBuffer read_audio_limited(const std::string& path, double max_seconds, bool cut) {
  if (!(max_seconds > 0 && max_seconds <= kMaxAudioSeconds))
    throw AudioRequestError(strcat("cannot read audio from ", path, ": the most to read must be in (0, ",
                                   kMaxAudioSeconds, "] s, found ", max_seconds));
  SF_INFO info;
  SndfilePtr f = open_for_reading(path, &info);
  const int64_t max_frames = std::max<int64_t>(1, int64_t(max_seconds * info.samplerate));
  auto too_long = [&](const std::string& how_long) {
    const bool hour = max_seconds == kMaxAudioSeconds;
    return AudioDataError(strcat("cannot read audio from ", path, ": ", how_long, ", at most ", max_seconds,
                                 hour ? " s (one hour) are read" : " s can be used here",
                                 "; cut the file first (e.g. ffmpeg -t ", max_seconds, ")"));
  };
  if (info.frames > max_frames && !cut)
    throw too_long(strcat("its header says ", double(info.frames) / info.samplerate, " s"));

  AudioBuffer buf;
  buf.sample_rate = info.samplerate;
  buf.channels.resize(size_t(info.channels));
  // The frame count of compressed streams (mp3) is an estimate, and any header may lie: reserve no
  // more than the file's bytes could hold at one byte per sample, and read until the decoder stops.
  std::error_code size_ec;
  const int64_t file_bytes = int64_t(fs::file_size(path, size_ec));
  const int64_t reserve =
      std::min({int64_t(info.frames), max_frames, size_ec ? int64_t(0) : file_bytes / info.channels});
  if (reserve > 0)
    for (auto& ch : buf.channels) ch.reserve(size_t(reserve));
  std::vector<float> scratch(size_t(kChunkFrames * info.channels));
  for (;;) {
    sf_count_t n = sf_readf_float(f.get(), scratch.data(), kChunkFrames);
    if (n <= 0) break;
    if (buf.num_frames() + n > max_frames) {
      if (!cut) throw too_long("it holds more than that");
      n = max_frames - buf.num_frames();
    }
    for (int c = 0; c < info.channels; ++c) {
      auto& ch = buf.channels[size_t(c)];
      for (sf_count_t i = 0; i < n; ++i) ch.push_back(scratch[size_t(i * info.channels + c)]);
    }
    if (buf.num_frames() >= max_frames) break;  // cut: the rest is never decoded
  }
  MG_CHECK(sf_error(f.get()) == SF_ERR_NO_ERROR, "cannot read audio from ", path, ": ", sf_strerror(f.get()));
  if (buf.num_frames() == 0) throw AudioDataError(strcat(path, " has no samples"));
  check_audio_buffer(buf, path);
  return buf;
}

struct AudioWriter::File {
  AtomicFile out;
  SF_VIRTUAL_IO vio{vio_length, vio_seek, vio_read, vio_write, vio_tell};
  SndfilePtr sf;
  AudioSubtype subtype;
  bool lossy;
  int channels;
  int64_t frames = 0;
  File(const std::string& path, AudioSubtype s, bool l, int ch) : out(path), subtype(s), lossy(l), channels(ch) {}
};

AudioWriter::AudioWriter(const std::string& path, int sample_rate, int channels, const AudioWriteOptions& options) {
  // Everything that can be checked is checked before the temporary file exists.
  if (sample_rate <= 0) throw AudioDataError(strcat("cannot write ", path, ": the sample rate must be positive, got ", sample_rate));
  if (channels <= 0) throw AudioDataError(strcat("cannot write ", path, ": the audio has no channels"));
  const int format = sndfile_format_for(path, options.subtype);
  const bool lossy = (format & SF_FORMAT_TYPEMASK) == SF_FORMAT_OGG || (format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG;
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = channels;
  info.format = format;
  if (!sf_format_check(&info))
    throw AudioRequestError(strcat("cannot write ", path, ": this libsndfile cannot write ", channels,
                                   " channels at ", sample_rate, " Hz as ", lower_extension(path),
                                   lossy ? "" : strcat(" ", audio_subtype_name(options.subtype))));
  file_ = std::make_unique<File>(path, options.subtype, lossy, channels);
  file_->sf.reset(sf_open_virtual(&file_->vio, SFM_WRITE, &info, &file_->out));
  file_->out.check();
  MG_CHECK(file_->sf, "cannot write '", path, "': ", sf_strerror(nullptr));
  if ((format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG) {
    // Constant 320 kbit/s, the rate audiocraft asks of lame.
    int mode = SF_BITRATE_MODE_CONSTANT;
    double level = 0.0;
    sf_command(file_->sf.get(), SFC_SET_BITRATE_MODE, &mode, sizeof mode);
    sf_command(file_->sf.get(), SFC_SET_COMPRESSION_LEVEL, &level, sizeof level);
  }
}

AudioWriter::~AudioWriter() = default;

void AudioWriter::write(const AudioBuffer& block) {
  MG_CHECK(file_ && file_->sf, "AudioWriter: write after commit");
  MG_CHECK(block.num_channels() == file_->channels, "cannot write ", file_->out.path(), ": a block of ",
           block.num_channels(), " channels in a ", file_->channels, "-channel file");
  for (int c = 0; c < block.num_channels(); ++c) {
    const auto& ch = block.channels[size_t(c)];
    if (ch.size() != block.channels[0].size())
      throw AudioDataError(strcat("cannot write ", file_->out.path(), ": channel ", c, " has ", ch.size(),
                                  " frames but channel 0 has ", block.channels[0].size()));
    for (size_t i = 0; i < ch.size(); ++i)
      if (!std::isfinite(ch[i]))
        throw AudioDataError(strcat("cannot write ", file_->out.path(), ": the audio has a non-finite sample at channel ",
                                    c, ", frame ", file_->frames + int64_t(i)));
  }
  write_frames(file_->sf.get(), block, file_->subtype, file_->lossy, file_->out, file_->frames);
  file_->frames += block.num_frames();
}

void AudioWriter::commit() {
  MG_CHECK(file_ && file_->sf, "AudioWriter: commit twice");
  // Closing flushes the encoder's last frames and rewrites the header: its writes are checked too.
  const int closed = sf_close(file_->sf.release());
  file_->out.check();
  MG_CHECK(closed == 0, "cannot write '", file_->out.path(), "': closing the encoder failed: ", sf_error_number(closed));
  file_->out.commit();
}

void write_audio(const std::string& path, const AudioBuffer& buf, const AudioWriteOptions& options) {
  check_audio_buffer(buf, strcat("cannot write ", path, ": the audio"));
  AudioWriter w(path, buf.sample_rate, buf.num_channels(), options);
  w.write(buf);
  w.commit();
}

struct AudioReader::File {
  SndfilePtr sf;
};

AudioReader::AudioReader(const std::string& path) : path_(path), file_(std::make_unique<File>()) {
  SF_INFO info;
  file_->sf = open_for_reading(path, &info);
  rate_ = info.samplerate;
  channels_ = info.channels;
  header_frames_ = std::max<int64_t>(0, info.frames);
}

AudioReader::AudioReader(AudioReader&&) noexcept = default;
AudioReader::~AudioReader() = default;

bool AudioReader::read(AudioBuffer& block, int64_t max_frames) {
  block.sample_rate = rate_;
  block.channels.assign(size_t(channels_), {});
  const int64_t want = std::clamp<int64_t>(max_frames, 1, kChunkFrames);
  scratch_.resize(size_t(want * channels_));
  const sf_count_t n = sf_readf_float(file_->sf.get(), scratch_.data(), want);
  if (n <= 0) {
    MG_CHECK(sf_error(file_->sf.get()) == SF_ERR_NO_ERROR, "cannot read audio from ", path_, ": ",
             sf_strerror(file_->sf.get()));
    if (frames_read_ == 0) throw AudioDataError(strcat(path_, " has no samples"));
    return false;
  }
  for (int c = 0; c < channels_; ++c) {
    auto& ch = block.channels[size_t(c)];
    ch.resize(size_t(n));
    for (sf_count_t i = 0; i < n; ++i) {
      const float v = scratch_[size_t(i * channels_ + c)];
      if (!std::isfinite(v))
        throw AudioDataError(strcat(path_, " has a non-finite sample at channel ", c, ", frame ", frames_read_ + i));
      ch[size_t(i)] = v;
    }
  }
  frames_read_ += n;
  return true;
}

}  // namespace mg
