// The .ecdc container (codec/ecdc.h) written and read block by block, for files of any length:
// the same bytes as ecdc_write / ecdc_read, with only a block of codes in memory.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "codec/atomic_file.h"
#include "codec/ecdc.h"

namespace mg {

// Writes through AtomicFile (nothing appears at `path` until finish() succeeds). The header holds
// the audio length, which is known only at the end of a stream: it is written with
// `expected_length` (the input's header says it), and finish() rewrites the file with the real
// length when that differs.
class EcdcWriter {
 public:
  EcdcWriter(const std::string& path, const EcdcModelInfo& info, int num_codebooks, int64_t expected_length);
  // A CodeBlockSink (codec/encodec.h): codes [num_codebooks, n] of segment `segment`.
  void add(int64_t segment, const Tensor& codes, float scale);
  // Checks the segments against `length`, fixes the header if needed, and renames into place.
  void finish(int64_t length);

 private:
  std::vector<uint8_t> header(int64_t length) const;
  void end_segment();
  void flush();

  std::string path_;
  EcdcModelInfo info_;
  int num_codebooks_;
  int64_t expected_length_;
  AtomicFile out_;
  std::vector<uint8_t> pending_;          // bytes not written yet
  std::vector<int64_t> segment_frames_;   // frames written per segment
  uint64_t bits_ = 0;                     // the bit packer's partial byte(s)
  int nbits_ = 0;
  size_t header_bytes_ = 0;
};

// Reads the header (errors as ecdc_read_header's); open_body() then checks the rest as ecdc_read
// does ("lm": true refused, codebooks, the body size against the file size) before any code is read.
class EcdcReader {
 public:
  explicit EcdcReader(const std::string& path);
  void open_body();
  const EcdcHeader& header() const { return header_; }
  const EcdcModelInfo& info() const { return info_; }
  // A CodeBlockSource (codec/encodec.h): the next `frames` frames of the current segment.
  Tensor next(int64_t frames, float* scale);

 private:
  uint8_t byte();
  int64_t segment_frames(int64_t segment) const;

  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0, body_ = 0;
  EcdcHeader header_;
  EcdcModelInfo info_;
  int64_t segment_ = 0, frame_ = 0;  // position: frame `frame_` of segment `segment_`
  uint64_t bits_ = 0;
  int nbits_ = 0;
};

}  // namespace mg
