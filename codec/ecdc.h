// The .ecdc container of facebookresearch/encodec (binary.py, compress.py), without the entropy
// LM: 'ECDC', version 0, big-endian u32 JSON length, JSON {"m", "al", "nc", "lm"} written exactly as
// Python's json.dumps writes it, then per segment [big-endian f32 scale if the model normalises]
// and the codes bit-packed LSB-first (time outer, codebook inner), flushed to a byte per segment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codec/encodec.h"

namespace mg {

// What the container needs to know of a model, by the name stored in "m".
struct EcdcModelInfo {
  std::string name;
  int sample_rate = 0;
  int channels = 0;
  int hop_length = 0;       // samples per code frame
  int bits = 0;             // log2(codebook size)
  int max_codebooks = 0;
  int64_t segment = 0;      // samples per segment (0: the whole file is one segment)
  int64_t stride = 0;
  bool normalize = false;   // a big-endian f32 scale precedes each segment's codes
};

// encodec_24khz, encodec_48khz (Meta's tool writes these) and encodec_32khz (MusicGen's codec, same
// container; Meta's tool does not write it). Unknown name: error listing the known ones.
EcdcModelInfo ecdc_model_info(const std::string& name);
// The info of a loaded model, under `name`, checked against the built-in table when the name is known.
EcdcModelInfo ecdc_model_info(const std::string& name, const EncodecConfig& cfg);

// The .ecdc name of a loaded model: the known model whose container parameters (rate, hop, bits,
// codebooks, segmenting) it has. Channel widths do not matter, so the tiny test models map to the
// real names. Error when none matches.
std::string ecdc_model_name(const EncodecConfig& cfg);

struct EcdcHeader {
  std::string model;
  int64_t audio_length = 0;
  int num_codebooks = 0;
  bool lm = false;
};

std::vector<uint8_t> ecdc_write(const EcdcModelInfo& info, const EncodedAudio& codes);
// Reads the header only (for `info`); errors name the problem (bad magic, version, JSON length).
EcdcHeader ecdc_read_header(const std::vector<uint8_t>& bytes, size_t* body_offset = nullptr);
// Bytes of body a valid file has after its header (scales included), from the header alone.
uint64_t ecdc_body_bytes(const EcdcModelInfo& info, int64_t audio_length, int num_codebooks);
// Reads the whole file; `lm: true` files are refused with a clear message.
EncodedAudio ecdc_read(const std::vector<uint8_t>& bytes, EcdcHeader* header_out = nullptr);

// LSB-first bit packing as encodec's BitPacker/BitUnpacker (exposed for the test vectors).
std::vector<uint8_t> ecdc_pack_bits(const std::vector<int64_t>& values, int bits);
std::vector<int64_t> ecdc_unpack_bits(const uint8_t* data, size_t size, int bits, size_t count,
                                      size_t* bytes_used);

}  // namespace mg
