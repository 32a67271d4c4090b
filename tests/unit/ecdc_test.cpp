// The .ecdc container's bit-level rules (encodec-spec.md 6.1 and 6.3), checked against the bytes
// Meta's encodec/binary.py produces. Trap: the payload is LSB-first with no per-frame alignment and
// is flushed once per segment; the header length is BIG-endian and the JSON must have Python's
// json.dumps spacing. Any of these wrong still round-trips through our own reader, so only fixed
// byte vectors catch them.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "codec/ecdc.h"

namespace {

using Bytes = std::vector<uint8_t>;

mg::Tensor codes_tensor(const std::vector<std::vector<int64_t>>& rows) {
  const int64_t K = int64_t(rows.size()), T = int64_t(rows[0].size());
  mg::Tensor t = mg::Tensor::empty(mg::DType::I64, {K, T});
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < T; ++i) t.ptr<int64_t>()[k * T + i] = rows[size_t(k)][size_t(i)];
  return t;
}

std::string error_of(const Bytes& bytes) {
  try {
    mg::ecdc_read(bytes);
  } catch (const mg::Error& e) {
    return e.what();
  }
  return "";
}

// Spec 6.3 test vector: 10-bit values [1, 1023, 512, 3, 7, 0] -> 01 fc 0f e0 00 07 00 00.
TEST(EcdcBits, TenBitVector) {
  const Bytes packed = mg::ecdc_pack_bits({1, 1023, 512, 3, 7, 0}, 10);
  EXPECT_EQ(packed, (Bytes{0x01, 0xfc, 0x0f, 0xe0, 0x00, 0x07, 0x00, 0x00}));
  size_t used = 0;
  EXPECT_EQ(mg::ecdc_unpack_bits(packed.data(), packed.size(), 10, 6, &used),
            (std::vector<int64_t>{1, 1023, 512, 3, 7, 0}));
  EXPECT_EQ(used, packed.size());
}

// Spec 6.3: 11-bit values (32 kHz, 2048 bins) [2047, 1, 1024] -> ff 0f 00 00 01, the last byte
// a partial flush with zero high bits.
TEST(EcdcBits, ElevenBitVectorWithPartialFlush) {
  const Bytes packed = mg::ecdc_pack_bits({2047, 1, 1024}, 11);
  EXPECT_EQ(packed, (Bytes{0xff, 0x0f, 0x00, 0x00, 0x01}));
  size_t used = 0;
  EXPECT_EQ(mg::ecdc_unpack_bits(packed.data(), packed.size(), 11, 3, &used), (std::vector<int64_t>{2047, 1, 1024}));
  EXPECT_EQ(used, 5u);
}

TEST(EcdcBits, TruncatedStreamIsAnError) {
  const Bytes packed = mg::ecdc_pack_bits({5, 6, 7}, 10);  // 30 bits -> 4 bytes
  EXPECT_THROW(mg::ecdc_unpack_bits(packed.data(), 3, 10, 3, nullptr), mg::Error);
}

// Spec 6.1: {'m': 'encodec_24khz', 'al': 24000, 'nc': 2, 'lm': False} ->
// 45 43 44 43 00 00 00 00 39 + the 57 JSON bytes, 66 bytes before the body.
TEST(EcdcHeader, MatchesPythonBytes) {
  mg::EncodedAudio codes;
  codes.length = 24000;
  codes.num_codebooks = 2;
  codes.segments.push_back(mg::Tensor::zeros(mg::DType::I64, {2, 75}));
  const Bytes file = mg::ecdc_write(mg::ecdc_model_info("encodec_24khz"), codes);
  const std::string json = "{\"m\": \"encodec_24khz\", \"al\": 24000, \"nc\": 2, \"lm\": false}";
  ASSERT_EQ(json.size(), 57u);
  ASSERT_GE(file.size(), 66u);
  EXPECT_EQ(Bytes(file.begin(), file.begin() + 9), (Bytes{0x45, 0x43, 0x44, 0x43, 0x00, 0x00, 0x00, 0x00, 0x39}));
  EXPECT_EQ(std::string(file.begin() + 9, file.begin() + 66), json);
  // 75 frames x 2 codebooks x 10 bits = 1500 bits = 187.5 -> 188 bytes.
  EXPECT_EQ(file.size(), 66u + 188u);
  size_t body = 0;
  const mg::EcdcHeader h = mg::ecdc_read_header(file, &body);
  EXPECT_EQ(body, 66u);
  EXPECT_EQ(h.model, "encodec_24khz");
  EXPECT_EQ(h.audio_length, 24000);
  EXPECT_EQ(h.num_codebooks, 2);
  EXPECT_FALSE(h.lm);
}

// Payload order is time outer, codebook inner: frame 0's codebooks come first.
TEST(EcdcBody, TimeMajorOrderRoundTrips) {
  mg::EncodedAudio codes;
  codes.length = 3 * 640;
  codes.num_codebooks = 2;
  codes.segments.push_back(codes_tensor({{1, 2, 3}, {2047, 1024, 0}}));
  const Bytes file = mg::ecdc_write(mg::ecdc_model_info("encodec_32khz"), codes);
  size_t body = 0;
  mg::ecdc_read_header(file, &body);
  EXPECT_EQ(Bytes(file.begin() + long(body), file.end()), mg::ecdc_pack_bits({1, 2047, 2, 1024, 3, 0}, 11));
  const mg::EncodedAudio back = mg::ecdc_read(file);
  ASSERT_EQ(back.segments.size(), 1u);
  EXPECT_EQ(back.segments[0].to_vector(), std::vector<float>({1, 2, 3, 2047, 1024, 0}));
}

// 48 kHz: a big-endian f32 scale before each segment's codes, and a fresh packer per segment.
TEST(EcdcBody, SegmentsCarryBigEndianScales) {
  const mg::EcdcModelInfo info = mg::ecdc_model_info("encodec_48khz");
  mg::EncodedAudio codes;
  codes.length = 47520 + 320;  // two segments: 48000 samples (150 frames) and 320 (1 frame)
  codes.num_codebooks = 2;
  codes.segments.push_back(mg::Tensor::zeros(mg::DType::I64, {2, 150}));
  codes.segments.push_back(codes_tensor({{1}, {2}}));
  codes.scales = {1.0f, 0.5f};
  const Bytes file = mg::ecdc_write(info, codes);
  size_t body = 0;
  mg::ecdc_read_header(file, &body);
  // segment 0: scale 1.0f = 3f 80 00 00, then 150*2*10 bits = 375 bytes; segment 1: 3f 00 00 00 + 3 bytes.
  ASSERT_EQ(file.size(), body + 4 + 375 + 4 + 3);
  EXPECT_EQ(Bytes(file.begin() + long(body), file.begin() + long(body) + 4), (Bytes{0x3f, 0x80, 0x00, 0x00}));
  const size_t s1 = body + 4 + 375;
  EXPECT_EQ(Bytes(file.begin() + long(s1), file.begin() + long(s1) + 4), (Bytes{0x3f, 0x00, 0x00, 0x00}));
  EXPECT_EQ(Bytes(file.begin() + long(s1) + 4, file.end()), mg::ecdc_pack_bits({1, 2}, 10));
  const mg::EncodedAudio back = mg::ecdc_read(file);
  ASSERT_EQ(back.segments.size(), 2u);
  EXPECT_EQ(back.scales, codes.scales);
  EXPECT_EQ(back.segments[1].to_vector(), std::vector<float>({1, 2}));
}

TEST(EcdcHeader, HostileInputsGiveClearErrors) {
  mg::EncodedAudio codes;
  codes.length = 640;
  codes.num_codebooks = 4;
  codes.segments.push_back(codes_tensor({{1}, {2}, {3}, {4}}));
  const Bytes good = mg::ecdc_write(mg::ecdc_model_info("encodec_32khz"), codes);
  ASSERT_EQ(error_of(good), "");

  Bytes bad_magic = good;
  bad_magic[3] = 'X';
  EXPECT_NE(error_of(bad_magic).find("bad magic"), std::string::npos) << error_of(bad_magic);
  Bytes bad_version = good;
  bad_version[4] = 1;
  EXPECT_NE(error_of(bad_version).find("version 1"), std::string::npos) << error_of(bad_version);
  EXPECT_NE(error_of(Bytes(good.begin(), good.begin() + 6)).find("shorter than"), std::string::npos);
  Bytes past_end = good;
  past_end[5] = 0x7f;
  EXPECT_NE(error_of(past_end).find("past the end"), std::string::npos) << error_of(past_end);
  EXPECT_NE(error_of(Bytes(good.begin(), good.end() - 1)).find("truncated"), std::string::npos);

  auto with_json = [](const std::string& json) {
    Bytes b = {'E', 'C', 'D', 'C', 0, 0, 0, 0, uint8_t(json.size())};
    b.insert(b.end(), json.begin(), json.end());
    b.resize(b.size() + 64, 0);
    return b;
  };
  EXPECT_NE(error_of(with_json("{\"m\": \"encodec_32khz\", \"al\": 640, \"nc\": 5, \"lm\": false}")).find("5 codebooks"),
            std::string::npos);
  EXPECT_NE(error_of(with_json("{\"m\": \"encodec_99khz\", \"al\": 640, \"nc\": 1, \"lm\": false}")).find("unknown"),
            std::string::npos);
  EXPECT_NE(error_of(with_json("{\"m\": \"encodec_24khz\", \"al\": 640, \"nc\": 2, \"lm\": true}"))
                .find("entropy-coded .ecdc"),
            std::string::npos);
  EXPECT_NE(error_of(with_json("[1, 2]")).find("metadata"), std::string::npos);
  EXPECT_NE(error_of(with_json("{\"m\": \"encodec_24khz\", \"al\": 0, \"nc\": 2, \"lm\": false}")).find("audio length"),
            std::string::npos);
}

}  // namespace
