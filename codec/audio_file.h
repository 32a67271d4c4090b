// Audio files in and out: wav, flac, ogg (Vorbis) and mp3 through libsndfile, as float32 planar
// buffers. Reading gives samples as libsndfile normalises them (integer PCM / 2^(bits-1)); writing
// converts floats to integers itself (see write_audio) so the result does not depend on the
// libsndfile version, and never leaves a half-written file behind.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/common.h"

namespace mg {

// Both are mg::Errors; the subclasses let the C API tell the caller what kind of failure it was.
// AudioDataError: the samples are unusable (no samples, NaN/Inf, ragged channels, bad rate).
// AudioRequestError: the request cannot be met (unknown extension, float in a FLAC file).
// Any other mg::Error from this file is an I/O failure (missing, unreadable, unwritable file).
struct AudioDataError : Error {
  using Error::Error;
};
struct AudioRequestError : Error {
  using Error::Error;
};

// float32 planar audio: channels[c][frame]. Every channel has the same length.
struct AudioBuffer {
  int sample_rate = 0;
  std::vector<std::vector<float>> channels;

  int num_channels() const { return static_cast<int>(channels.size()); }
  int64_t num_frames() const { return channels.empty() ? 0 : static_cast<int64_t>(channels[0].size()); }
  double seconds() const { return sample_rate > 0 ? double(num_frames()) / sample_rate : 0.0; }

  // `channels` silent channels of `frames` samples each.
  static AudioBuffer zeros(int sample_rate, int channels, int64_t frames);
};

// How samples are stored in the written file. Lossy formats (ogg, mp3) ignore it: they always
// encode from the float samples.
enum class AudioSubtype { PCM16, PCM24, Float };

// "pcm16" | "pcm24" | "float" -> subtype; anything else is an mg::Error listing the choices.
AudioSubtype parse_audio_subtype(const std::string& name);
const char* audio_subtype_name(AudioSubtype s);

struct AudioWriteOptions {
  AudioSubtype subtype = AudioSubtype::PCM16;
};

// What read_audio accepts (docs/LIMITS.md): an hour of audio (the longest generation; longer
// files are refused from their header, before a sample is read, and again while reading when a
// header understated its length), and sample rates a real file has: a 1 Hz header on 48 KB of
// samples claims 6.7 hours, and resampled to 32 kHz asked for gigabytes.
constexpr double kMaxAudioSeconds = 3600.0;
constexpr int kMinAudioSampleRate = 1000;
constexpr int kMaxAudioSampleRate = 768000;

// Reads a wav/flac/ogg/mp3 (anything this libsndfile decodes). Throws mg::Error naming the file
// when it is missing, unreadable or unsupported, has no samples, or holds a NaN/Inf sample;
// AudioDataError past the bounds above. Memory: the samples (the header's frame count is not
// trusted for more than the file's size can hold) and one 64 Ki-frame block.
AudioBuffer read_audio(const std::string& path);

// read_audio with a shorter bound: what a caller can use of the file (a continuation must be
// shorter than the generation; a melody is read for the generation's length only). cut = false: a
// longer file is refused (from its header, before a sample is read, when the header says so);
// cut = true: the first max_seconds are read and the rest is never decoded.
AudioBuffer read_audio_limited(const std::string& path, double max_seconds, bool cut);

// Writes `buf` to `path`; the container comes from the extension (.wav .flac .ogg .mp3, any case).
// Integer subtypes clip each sample to [-1, 1] and round x * 2^(bits-1) to the nearest integer
// (saturating at the positive end), as ffmpeg does for audiocraft's writer; float stores the
// samples unchanged. The file is written through AtomicFile (codec/atomic_file.h): under a
// temporary name in the same folder, every write checked, renamed at the end. On any error (bad
// buffer, unwritable folder, full disk, encoder failure) the temporary file is removed and an
// existing file at `path` is left untouched; devices, FIFOs and "-" are refused.
void write_audio(const std::string& path, const AudioBuffer& buf, const AudioWriteOptions& options = {});

// A file read block by block, for inputs of any length (encodec-tool compress and convert): the
// header is checked as read_audio checks it (missing file, folder, sample rate bounds), but no
// length bound applies; every block is checked for NaN/Inf, and a file without a sample is an
// AudioDataError. Memory: one block.
class AudioReader {
 public:
  explicit AudioReader(const std::string& path);
  AudioReader(AudioReader&&) noexcept;
  ~AudioReader();
  int sample_rate() const { return rate_; }
  int channels() const { return channels_; }
  // What the header says: exact for WAV and FLAC, an estimate (or 0) for compressed streams.
  int64_t header_frames() const { return header_frames_; }
  int64_t frames_read() const { return frames_read_; }
  // The next block of at most max_frames frames into `block`; false (block empty) at the end.
  bool read(AudioBuffer& block, int64_t max_frames = int64_t(1) << 16);

 private:
  struct File;
  std::string path_;
  std::unique_ptr<File> file_;
  int rate_ = 0, channels_ = 0;
  int64_t header_frames_ = 0, frames_read_ = 0;
  std::vector<float> scratch_;
};

// write_audio block by block: the blocks (at `sample_rate`, `channels`) go into the temporary file
// as they come; commit() closes the encoder and renames. Destroyed without commit() (an error on
// the way), it leaves nothing at `path`.
class AudioWriter {
 public:
  AudioWriter(const std::string& path, int sample_rate, int channels, const AudioWriteOptions& options = {});
  ~AudioWriter();
  void write(const AudioBuffer& block);
  void commit();

 private:
  struct File;
  std::unique_ptr<File> file_;
};

// Checks the invariants write_audio and the converters rely on: a positive rate, at least one
// channel, equal channel lengths, finite samples. `what` names the buffer in the message.
void check_audio_buffer(const AudioBuffer& buf, const std::string& what);

}  // namespace mg
