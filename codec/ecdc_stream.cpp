#include "codec/ecdc_stream.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace mg {

namespace {

constexpr size_t kFlushBytes = size_t(1) << 16;

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

// Samples of segment i of an `al`-sample file, as compress.py iterates them.
int64_t segment_samples(const EcdcModelInfo& info, int64_t al, int64_t i) {
  if (info.segment <= 0) return al;
  return std::min(info.segment, al - i * info.stride);
}

int64_t segment_count(const EcdcModelInfo& info, int64_t al) {
  return info.segment <= 0 ? 1 : (al + info.stride - 1) / info.stride;
}

int64_t frames_of(const EcdcModelInfo& info, int64_t samples) {
  return (samples + info.hop_length - 1) / info.hop_length;
}

}  // namespace

EcdcWriter::EcdcWriter(const std::string& path, const EcdcModelInfo& info, int num_codebooks, int64_t expected_length)
    : path_(path), info_(info), num_codebooks_(num_codebooks), expected_length_(std::max<int64_t>(1, expected_length)),
      out_(path) {
  MG_CHECK(num_codebooks > 0 && num_codebooks <= info.max_codebooks, ".ecdc write: ", num_codebooks,
           " codebooks, but ", info.name, " has ", info.max_codebooks);
  pending_ = header(expected_length_);
  header_bytes_ = pending_.size();
}

std::vector<uint8_t> EcdcWriter::header(int64_t length) const {
  for (char ch : info_.name) MG_CHECK(ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\', "model name not plain ASCII");
  // json.dumps({'m': .., 'al': .., 'nc': .., 'lm': False}) with Python's default separators (as ecdc_write).
  const std::string meta = strcat("{\"m\": \"", info_.name, "\", \"al\": ", length, ", \"nc\": ", num_codebooks_,
                                  ", \"lm\": false}");
  std::vector<uint8_t> out = {'E', 'C', 'D', 'C', 0};
  put_be32(out, uint32_t(meta.size()));
  out.insert(out.end(), meta.begin(), meta.end());
  return out;
}

void EcdcWriter::flush() {
  out_.write_all(pending_.data(), pending_.size());
  pending_.clear();
}

void EcdcWriter::end_segment() {
  if (nbits_ > 0) pending_.push_back(uint8_t(bits_));  // each segment is flushed to a byte
  bits_ = 0;
  nbits_ = 0;
}

void EcdcWriter::add(int64_t segment, const Tensor& codes, float scale) {
  MG_CHECK(codes.ndim() == 2 && codes.dim(0) == num_codebooks_ && codes.dtype == DType::I64, ".ecdc write: codes ",
           shape_str(codes.shape), ", expected [", num_codebooks_, ", frames] i64");
  const int64_t current = int64_t(segment_frames_.size()) - 1;
  MG_CHECK(segment == current || segment == current + 1, ".ecdc write: segment ", segment, " after segment ", current);
  MG_CHECK(segment == 0 || info_.segment > 0, ".ecdc write: model ", info_.name, " has one segment");
  if (segment != current) {
    if (current >= 0) end_segment();
    segment_frames_.push_back(0);
    if (info_.normalize) {
      uint32_t b;
      std::memcpy(&b, &scale, 4);
      put_be32(pending_, b);
    }
  }
  const int64_t T = codes.dim(1), bits = info_.bits;
  const int64_t* c = codes.ptr<int64_t>();
  for (int64_t t = 0; t < T; ++t)  // time outer, codebook inner, LSB first (encodec's BitPacker)
    for (int k = 0; k < num_codebooks_; ++k) {
      const int64_t v = c[k * T + t];
      MG_CHECK(v >= 0 && v < (int64_t(1) << bits), ".ecdc write: code ", v, " does not fit ", bits, " bits");
      bits_ |= uint64_t(v) << nbits_;
      nbits_ += int(bits);
      while (nbits_ >= 8) {
        pending_.push_back(uint8_t(bits_ & 0xff));
        bits_ >>= 8;
        nbits_ -= 8;
      }
    }
  segment_frames_.back() += T;
  if (pending_.size() >= kFlushBytes) flush();
}

void EcdcWriter::finish(int64_t length) {
  MG_CHECK(length > 0, ".ecdc write: audio length ", length, " must be positive");
  end_segment();
  flush();
  const int64_t n_seg = segment_count(info_, length);
  MG_CHECK(int64_t(segment_frames_.size()) == n_seg, ".ecdc write: ", segment_frames_.size(), " code segments for ",
           n_seg, " segments of ", length, " samples");
  for (int64_t i = 0; i < n_seg; ++i) {
    const int64_t want = frames_of(info_, segment_samples(info_, length, i));
    MG_CHECK(segment_frames_[size_t(i)] == want, ".ecdc write: segment ", i, " has ", segment_frames_[size_t(i)],
             " frames, ", length, " samples make ", want);
  }
  const std::vector<uint8_t> head = header(length);
  if (length == expected_length_) {
    out_.commit();
    return;
  }
  if (head.size() == header_bytes_) {  // same digit count: rewrite the header in place
    MG_CHECK(out_.seek(0, SEEK_SET) == 0, "cannot write '", path_, "': seek failed");
    out_.write_all(head.data(), head.size());
    out_.commit();
    return;
  }
  // The body moves: copy it behind the right header into a second temporary file.
  AtomicFile fixed(path_);
  fixed.write_all(head.data(), head.size());
  const int64_t end = out_.size();
  MG_CHECK(out_.seek(int64_t(header_bytes_), SEEK_SET) == int64_t(header_bytes_), "cannot write '", path_,
           "': seek failed");
  std::vector<uint8_t> buf(kFlushBytes);
  for (int64_t at = int64_t(header_bytes_); at < end;) {
    const int64_t n = out_.read(buf.data(), size_t(std::min<int64_t>(int64_t(buf.size()), end - at)));
    MG_CHECK(n > 0, "cannot write '", path_, "': reading back its temporary file failed");
    fixed.write_all(buf.data(), size_t(n));
    at += n;
  }
  fixed.commit();
}

EcdcReader::EcdcReader(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  MG_CHECK(fs::exists(path, ec), "'", path, "' does not exist");
  const uint64_t size = fs::file_size(path, ec);
  MG_CHECK(!ec, "cannot read '", path, "': ", ec.message());
  in_.open(path, std::ios::binary);
  MG_CHECK(in_, "cannot open '", path, "' for reading");
  // The fixed 9 bytes, then the JSON they announce (checked against the file size before it is read).
  std::vector<uint8_t> head(size_t(std::min<uint64_t>(size, 9)));
  in_.read(reinterpret_cast<char*>(head.data()), std::streamsize(head.size()));
  if (head.size() == 9) {
    const uint64_t n = (uint64_t(head[5]) << 24) | (uint64_t(head[6]) << 16) | (uint64_t(head[7]) << 8) | head[8];
    if (9 + n <= size) {
      head.resize(size_t(9 + n));
      in_.read(reinterpret_cast<char*>(head.data() + 9), std::streamsize(n));
    }
  }
  MG_CHECK(!in_.bad(), "error reading '", path, "'");
  size_t body = 0;
  header_ = ecdc_read_header(head, &body);
  size_ = size;
  body_ = body;
}

void EcdcReader::open_body() {
  const uint64_t size = size_, body = body_;
  MG_CHECK(!header_.lm, "entropy-coded .ecdc is not supported yet (this file has \"lm\": true, written by "
                        "encodec -l): re-compress it without the LM (encodec without -l, or encodec-tool compress)");
  info_ = ecdc_model_info(header_.model);
  MG_CHECK(header_.num_codebooks <= info_.max_codebooks, ".ecdc header: ", header_.num_codebooks,
           " codebooks, but ", header_.model, " has ", info_.max_codebooks);
  const uint64_t need = ecdc_body_bytes(info_, header_.audio_length, header_.num_codebooks);
  MG_CHECK(need <= size - body, ".ecdc body is truncated: ", header_.audio_length, " samples at ",
           header_.num_codebooks, " codebooks need ", need, " bytes after the header, the file has ", size - body);
}

int64_t EcdcReader::segment_frames(int64_t segment) const {
  return frames_of(info_, segment_samples(info_, header_.audio_length, segment));
}

uint8_t EcdcReader::byte() {
  const int c = in_.get();
  MG_CHECK(c != std::char_traits<char>::eof(), ".ecdc body of '", path_, "' is truncated (segment ", segment_, ")");
  return uint8_t(c);
}

Tensor EcdcReader::next(int64_t frames, float* scale) {
  MG_CHECK(segment_ < segment_count(info_, header_.audio_length), ".ecdc read: past the last segment");
  const int64_t left = segment_frames(segment_) - frame_;
  MG_CHECK(frames >= 1 && frames <= left, ".ecdc read: ", frames, " frames asked of segment ", segment_, ", which has ",
           left, " left");
  if (frame_ == 0 && info_.normalize) {
    uint32_t b = 0;
    for (int i = 0; i < 4; ++i) b = (b << 8) | byte();
    float s;
    std::memcpy(&s, &b, 4);
    if (scale) *scale = s;
  }
  const int nc = header_.num_codebooks, bits = info_.bits;
  const uint64_t mask = (uint64_t(1) << bits) - 1;
  Tensor out = Tensor::empty(DType::I64, {nc, frames});
  int64_t* c = out.ptr<int64_t>();
  for (int64_t t = 0; t < frames; ++t)
    for (int k = 0; k < nc; ++k) {
      while (nbits_ < bits) {
        bits_ |= uint64_t(byte()) << nbits_;
        nbits_ += 8;
      }
      c[k * frames + t] = int64_t(bits_ & mask);
      bits_ >>= bits;
      nbits_ -= bits;
    }
  frame_ += frames;
  if (frame_ == segment_frames(segment_)) {  // segments are flushed to a byte
    ++segment_;
    frame_ = 0;
    bits_ = 0;
    nbits_ = 0;
  }
  return out;
}

}  // namespace mg
