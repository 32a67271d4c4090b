#include "codec/ecdc.h"

#include <cstdint>

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

namespace mg {

EcdcModelInfo ecdc_model_info(const std::string& name) {
  if (name == "encodec_24khz") return {name, 24000, 1, 320, 10, 32, 0, 0, false};
  if (name == "encodec_48khz") return {name, 48000, 2, 320, 10, 16, 48000, 47520, true};
  if (name == "encodec_32khz") return {name, 32000, 1, 640, 11, 4, 0, 0, false};
  throw Error(strcat("unknown .ecdc model '", name, "' (known: encodec_24khz, encodec_48khz, encodec_32khz)"));
}

std::string ecdc_model_name(const EncodecConfig& cfg) {
  const EcdcModelInfo mine = ecdc_model_info("", cfg);
  for (const char* name : {"encodec_24khz", "encodec_32khz", "encodec_48khz"}) {
    const EcdcModelInfo k = ecdc_model_info(name);
    if (k.sample_rate == mine.sample_rate && k.channels == mine.channels && k.hop_length == mine.hop_length && k.bits == mine.bits &&
        k.max_codebooks == mine.max_codebooks && k.segment == mine.segment && k.stride == mine.stride &&
        k.normalize == mine.normalize)
      return name;
  }
  throw Error(strcat("this EnCodec model (", cfg.sampling_rate, " Hz, hop ", mine.hop_length, ", ", mine.max_codebooks,
                     " codebooks of ", cfg.codebook_size, ") matches none of the .ecdc model names "
                     "(encodec_24khz, encodec_32khz, encodec_48khz)"));
}

EcdcModelInfo ecdc_model_info(const std::string& name, const EncodecConfig& cfg) {
  EcdcModelInfo i;
  i.name = name;
  i.sample_rate = cfg.sampling_rate;
  i.channels = cfg.audio_channels;
  i.hop_length = cfg.hop_length();
  i.bits = cfg.codebook_nbits();
  i.max_codebooks = cfg.num_quantizers();
  i.segment = cfg.chunk_length().value_or(0);
  i.stride = cfg.chunk_length() ? cfg.chunk_stride().value_or(1) : 0;
  i.normalize = cfg.normalize;
  return i;
}

std::vector<uint8_t> ecdc_pack_bits(const std::vector<int64_t>& values, int bits) {
  std::vector<uint8_t> out;
  uint64_t cur = 0;
  int nbits = 0;
  for (int64_t v : values) {
    cur |= uint64_t(v) << nbits;
    nbits += bits;
    while (nbits >= 8) {
      out.push_back(uint8_t(cur & 0xff));
      cur >>= 8;
      nbits -= 8;
    }
  }
  if (nbits) out.push_back(uint8_t(cur));
  return out;
}

std::vector<int64_t> ecdc_unpack_bits(const uint8_t* data, size_t size, int bits, size_t count, size_t* used) {
  std::vector<int64_t> out;
  out.reserve(count);
  const uint64_t mask = (uint64_t(1) << bits) - 1;
  uint64_t cur = 0;
  int nbits = 0;
  size_t pos = 0;
  while (out.size() < count) {
    while (nbits < bits) {
      MG_CHECK(pos < size, ".ecdc body is truncated: the stream ended after ", out.size(), " of ", count,
               " codes in a segment");
      cur |= uint64_t(data[pos++]) << nbits;
      nbits += 8;
    }
    out.push_back(int64_t(cur & mask));
    cur >>= bits;
    nbits -= bits;
  }
  if (used) *used = pos;
  return out;
}

namespace {

// Segment lengths in samples as compress.py iterates them: range(0, al, stride), min(al - off, segment).
std::vector<int64_t> segment_lengths(const EcdcModelInfo& info, int64_t al) {
  const int64_t seg = info.segment > 0 ? info.segment : al;
  const int64_t stride = info.stride > 0 ? info.stride : al;
  std::vector<int64_t> lens;
  for (int64_t off = 0; off < al; off += stride) lens.push_back(std::min(al - off, seg));
  return lens;
}

int64_t frames_for(const EcdcModelInfo& info, int64_t seg_len) { return (seg_len + info.hop_length - 1) / info.hop_length; }

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

uint32_t get_be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

}  // namespace

std::vector<uint8_t> ecdc_write(const EcdcModelInfo& info, const EncodedAudio& codes) {
  const std::vector<int64_t> lens = segment_lengths(info, codes.length);
  MG_CHECK(lens.size() == codes.segments.size(), ".ecdc write: ", codes.segments.size(), " code segments for ",
           lens.size(), " segments of ", codes.length, " samples");
  MG_CHECK(info.normalize == !codes.scales.empty(), ".ecdc write: model ", info.name,
           info.normalize ? " needs" : " takes no", " per-segment scales");
  for (char ch : info.name) MG_CHECK(ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\', "model name not plain ASCII");
  // json.dumps({'m': .., 'al': .., 'nc': .., 'lm': False}) with Python's default separators.
  const std::string meta = strcat("{\"m\": \"", info.name, "\", \"al\": ", codes.length, ", \"nc\": ",
                                  codes.num_codebooks, ", \"lm\": false}");
  std::vector<uint8_t> out = {'E', 'C', 'D', 'C', 0};
  put_be32(out, uint32_t(meta.size()));
  out.insert(out.end(), meta.begin(), meta.end());
  for (size_t s = 0; s < lens.size(); ++s) {
    const Tensor& c = codes.segments[s];
    const int64_t T = frames_for(info, lens[s]);
    MG_CHECK(c.ndim() == 2 && c.dim(0) == codes.num_codebooks && c.dim(1) == T && c.dtype == DType::I64,
             ".ecdc write: segment ", s, " codes are ", shape_str(c.shape), ", expected [", codes.num_codebooks,
             ", ", T, "] i64");
    if (info.normalize) {
      uint32_t bits;
      std::memcpy(&bits, &codes.scales[s], 4);
      put_be32(out, bits);
    }
    std::vector<int64_t> order;  // time outer, codebook inner
    order.reserve(size_t(T) * codes.num_codebooks);
    for (int64_t t = 0; t < T; ++t)
      for (int k = 0; k < codes.num_codebooks; ++k) {
        const int64_t v = c.ptr<int64_t>()[k * T + t];
        MG_CHECK(v >= 0 && v < (int64_t(1) << info.bits), ".ecdc write: code ", v, " does not fit ", info.bits, " bits");
        order.push_back(v);
      }
    std::vector<uint8_t> packed = ecdc_pack_bits(order, info.bits);
    out.insert(out.end(), packed.begin(), packed.end());
  }
  return out;
}

uint64_t ecdc_body_bytes(const EcdcModelInfo& info, int64_t audio_length, int num_codebooks) {
  MG_CHECK(audio_length > 0 && num_codebooks > 0, "ecdc_body_bytes: bad length ", audio_length, " or codebooks ",
           num_codebooks);
  // Closed form of the segment loop (a hostile length must not make us iterate for long):
  // segment i has min(seg, al - i * stride) samples; all but the last one or two are full.
  const int64_t seg = info.segment > 0 ? info.segment : audio_length;
  const int64_t stride = info.stride > 0 ? info.stride : audio_length;
  const int64_t n_seg = (audio_length + stride - 1) / stride;
  const int64_t n_full = audio_length >= seg ? std::min(n_seg, (audio_length - seg) / stride + 1) : 0;
  auto seg_bytes = [&](int64_t len) {
    const uint64_t bits = uint64_t(frames_for(info, len)) * uint64_t(num_codebooks) * uint64_t(info.bits);
    return (bits + 7) / 8 + (info.normalize ? 4 : 0);
  };
  uint64_t total = uint64_t(n_full) * seg_bytes(seg);
  for (int64_t i = n_full; i < n_seg; ++i) total += seg_bytes(std::min(seg, audio_length - i * stride));
  return total;
}

EcdcHeader ecdc_read_header(const std::vector<uint8_t>& bytes, size_t* body_offset) {
  MG_CHECK(bytes.size() >= 9, "not an .ecdc file: ", bytes.size(), " bytes is shorter than the 9-byte header");
  MG_CHECK(std::memcmp(bytes.data(), "ECDC", 4) == 0, "not an .ecdc file: bad magic (expected 'ECDC')");
  MG_CHECK(bytes[4] == 0, "unsupported .ecdc version ", int(bytes[4]), " (only version 0 exists)");
  const uint32_t n = get_be32(bytes.data() + 5);
  MG_CHECK(uint64_t(9) + n <= bytes.size(), ".ecdc header: metadata length ", n, " runs past the end of the file (",
           bytes.size(), " bytes)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes.begin() + 9, bytes.begin() + 9 + n);
  } catch (const std::exception& e) {
    throw Error(strcat(".ecdc header: metadata is not valid JSON: ", e.what()));
  }
  // An integer field: a float such as 5e24 (JSON numbers beyond uint64 parse as doubles) must not
  // reach get<int64_t>, whose conversion of an out-of-range double is undefined behaviour.
  auto integer = [&](const char* key) -> int64_t {
    const nlohmann::json& v = j.at(key);
    MG_CHECK(v.is_number_integer(), ".ecdc header: ", key, " must be an integer, found ", v.dump());
    if (v.is_number_unsigned())
      MG_CHECK(v.get<uint64_t>() <= uint64_t(INT64_MAX), ".ecdc header: ", key, " ", v.dump(), " is out of range");
    return v.get<int64_t>();
  };
  EcdcHeader h;
  try {
    h.model = j.at("m").get<std::string>();
    h.audio_length = integer("al");
    const int64_t nc = integer("nc");
    MG_CHECK(nc > 0 && nc <= 4096, ".ecdc header: codebook count ", nc, " is out of range");
    h.num_codebooks = int(nc);
    h.lm = j.at("lm").get<bool>();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(strcat(".ecdc header: metadata needs m (string), al, nc (integers) and lm (bool): ", e.what()));
  }
  MG_CHECK(h.audio_length > 0 && h.audio_length < (int64_t(1) << 40), ".ecdc header: audio length ", h.audio_length,
           " is out of range (must be positive and below 2^40 samples)");
  MG_CHECK(h.num_codebooks > 0, ".ecdc header: codebook count ", h.num_codebooks, " must be positive");
  if (body_offset) *body_offset = 9 + n;
  return h;
}

EncodedAudio ecdc_read(const std::vector<uint8_t>& bytes, EcdcHeader* header_out) {
  size_t pos = 0;
  EcdcHeader h = ecdc_read_header(bytes, &pos);
  if (header_out) *header_out = h;
  MG_CHECK(!h.lm, "entropy-coded .ecdc is not supported yet (this file has \"lm\": true, written by "
                  "encodec -l): re-compress it without the LM (encodec without -l, or encodec-tool compress)");
  const EcdcModelInfo info = ecdc_model_info(h.model);
  MG_CHECK(h.num_codebooks <= info.max_codebooks, ".ecdc header: ", h.num_codebooks, " codebooks, but ", h.model,
           " has ", info.max_codebooks);
  // The body size follows from the header alone: check it before allocating anything, so a
  // hostile "al" cannot make us reserve gigabytes for a file of a few bytes.
  const uint64_t need = ecdc_body_bytes(info, h.audio_length, h.num_codebooks);
  MG_CHECK(need <= bytes.size() - pos, ".ecdc body is truncated: ", h.audio_length, " samples at ", h.num_codebooks,
           " codebooks need ", need, " bytes after the header, the file has ", bytes.size() - pos);
  EncodedAudio out;
  out.length = h.audio_length;
  out.num_codebooks = h.num_codebooks;
  for (int64_t len : segment_lengths(info, h.audio_length)) {
    const int64_t T = frames_for(info, len);
    if (info.normalize) {
      MG_CHECK(pos + 4 <= bytes.size(), ".ecdc body is truncated: segment ", out.segments.size(), " has no scale");
      uint32_t bits = get_be32(bytes.data() + pos);
      float scale;
      std::memcpy(&scale, &bits, 4);
      out.scales.push_back(scale);
      pos += 4;
    }
    size_t used = 0;
    std::vector<int64_t> v = ecdc_unpack_bits(bytes.data() + pos, bytes.size() - pos, info.bits,
                                              size_t(T) * h.num_codebooks, &used);
    pos += used;
    Tensor c = Tensor::empty(DType::I64, {h.num_codebooks, T});
    for (int64_t t = 0; t < T; ++t)
      for (int k = 0; k < h.num_codebooks; ++k) c.ptr<int64_t>()[k * T + t] = v[size_t(t) * h.num_codebooks + k];
    out.segments.push_back(c);
  }
  return out;
}

}  // namespace mg
