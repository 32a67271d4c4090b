// .ecdc interop with Meta's encodec package (goldens from tools/reference/make_ecdc_goldens.py):
// files the package wrote (24 kHz, 48 kHz; 32 kHz by the script's checked re-implementation) must
// be reproduced byte for byte by our writer from the same codes and scales, read back to the same
// codes, and decode like the EnCodec goldens; entropy-coded and hostile files must be refused with
// a clear message.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec/ecdc.h"
#include "codec/encodec.h"
#include "kernels/ops.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

std::string dir() { return mgtest::golden_dir() + "/ecdc"; }

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

const nlohmann::json& index_json() {
  static const nlohmann::json j = [] {
    std::ifstream f(dir() + "/index.json");
    return f ? nlohmann::json::parse(f) : nlohmann::json();
  }();
  return j;
}

// The goldens are committed: a missing index is a broken checkout, so the test fails.
#define REQUIRE_ECDC_GOLDENS()                                                                        \
  do {                                                                                                \
    if (!index_json().is_object()) FAIL() << "committed golden tests/data/golden/ecdc/index.json is missing"; \
  } while (0)

// The codes and scales a golden file holds, from its .safetensors and .json.
mg::EncodedAudio expected_codes(const std::string& name) {
  const auto t = mg::load_safetensors(dir() + "/" + name + ".safetensors");
  std::ifstream f(dir() + "/" + name + ".json");
  const nlohmann::json meta = nlohmann::json::parse(f);
  mg::EncodedAudio e;
  e.length = meta.at("al").get<int64_t>();
  e.num_codebooks = meta.at("nc").get<int>();
  if (t.count("codes")) {
    e.segments.push_back(t.at("codes").clone());
  } else {
    for (int i = 0; t.count("codes_seg" + std::to_string(i)); ++i) e.segments.push_back(t.at("codes_seg" + std::to_string(i)).clone());
  }
  if (t.count("scales")) e.scales = t.at("scales").to_vector();
  return e;
}

std::vector<int64_t> ints(const mg::Tensor& t) {
  return std::vector<int64_t>(t.ptr<int64_t>(), t.ptr<int64_t>() + t.numel());
}

std::vector<std::string> cases_expecting(const std::string& expect_prefix) {
  std::vector<std::string> out;
  for (const auto& [name, c] : index_json().at("cases").items())
    if (c.value("expect", "").rfind(expect_prefix, 0) == 0) out.push_back(name);
  return out;
}

// Trap: key order and spacing of the JSON header, big-endian lengths and scales, LSB-first
// packing with no per-frame alignment, one flush per segment. Any of these off by a bit still
// round-trips through our own reader; only byte equality with the package's files catches it.
TEST(EcdcGolden, OurWriterReproducesThePackagesFilesByteForByte) {
  REQUIRE_ECDC_GOLDENS();
  const auto names = cases_expecting("ok");
  ASSERT_FALSE(names.empty());
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const Bytes want = read_bytes(dir() + "/" + name + ".ecdc");
    const mg::EncodedAudio codes = expected_codes(name);
    const mg::EcdcHeader h = mg::ecdc_read_header(want);
    EXPECT_EQ(mg::ecdc_write(mg::ecdc_model_info(h.model), codes), want);
  }
}

// Trap: reading their files: segment count and frames per segment follow from "al" alone.
TEST(EcdcGolden, TheirFilesReadBackToTheSameCodes) {
  REQUIRE_ECDC_GOLDENS();
  for (const std::string& name : cases_expecting("ok")) {
    SCOPED_TRACE(name);
    const mg::EncodedAudio want = expected_codes(name);
    const mg::EncodedAudio got = mg::ecdc_read(read_bytes(dir() + "/" + name + ".ecdc"));
    EXPECT_EQ(got.length, want.length);
    EXPECT_EQ(got.num_codebooks, want.num_codebooks);
    ASSERT_EQ(got.segments.size(), want.segments.size());
    for (size_t s = 0; s < want.segments.size(); ++s) {
      EXPECT_EQ(got.segments[s].shape, want.segments[s].shape);
      EXPECT_EQ(ints(got.segments[s]), ints(want.segments[s]));
    }
    EXPECT_EQ(got.scales, want.scales);
  }
}

// Their files decode with our model to the audio the reference decodes from the same codes.
TEST(EcdcGolden, TheirFilesDecodeLikeTheReference) {
  REQUIRE_ECDC_GOLDENS();
  std::unique_ptr<mg::Backend> be = mg::make_cpu_backend(2);
  for (const std::string& name : cases_expecting("ok")) {
    SCOPED_TRACE(name);
    const nlohmann::json& c = index_json().at("cases").at(name);
    const std::string model_dir = mgtest::source_dir() + "/" + c.at("tiny_model").get<std::string>();
    const std::string golden = mgtest::golden_dir() + "/encodec/" + c.at("encodec_golden_input").get<std::string>() +
                               ".safetensors";
    if (!fs::exists(golden)) continue;
    const auto ref = mg::load_safetensors(golden);
    char tag[32];
    std::snprintf(tag, sizeof tag, "decoded_bw%g", c.at("bandwidth").get<double>());
    if (!ref.count(tag)) continue;
    const auto model = mg::EncodecModel::load(*be, model_dir);
    const mg::Tensor y = model->decode(mg::ecdc_read(read_bytes(dir() + "/" + name + ".ecdc")));
    const mg::Tensor& r = ref.at(tag);
    const int64_t C = y.dim(0), L = y.dim(1);
    ASSERT_EQ(C, r.dim(0));
    std::vector<float> rv;
    for (int64_t ch = 0; ch < C; ++ch) rv.insert(rv.end(), r.f32() + ch * r.dim(1), r.f32() + ch * r.dim(1) + L);
    EXPECT_LE(mgtest::rel_err(y.to_vector(), rv), 1e-4);
  }
}

// Trap: a file written with the entropy-coding LM ("lm": true) must be refused with a message
// that says so, never decoded as if bit-packed (which would give noise).
TEST(EcdcGolden, EntropyCodedFilesAreRefusedClearly) {
  REQUIRE_ECDC_GOLDENS();
  const auto names = cases_expecting("C++: entropy-coded");
  ASSERT_FALSE(names.empty());
  for (const std::string& name : names) {
    try {
      mg::ecdc_read(read_bytes(dir() + "/" + name + ".ecdc"));
      ADD_FAILURE() << name << " was accepted";
    } catch (const mg::Error& e) {
      EXPECT_NE(std::string(e.what()).find("entropy-coded .ecdc is not supported yet"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(mg::ecdc_read_header(read_bytes(dir() + "/" + name + ".ecdc")).lm);
  }
}

// Trap: hostile files (bad magic or version, truncated header / JSON / body / 48 kHz scale, a JSON
// length past the end, broken JSON) that Meta's reader also rejects: an mg::Error naming the
// problem, never a crash or a huge allocation.
TEST(EcdcGolden, HostileFilesGiveClearErrors) {
  REQUIRE_ECDC_GOLDENS();
  const std::map<std::string, std::string> expected_words = {
      {"hostile_bad_magic", "bad magic"},         {"hostile_bad_version", "version"},
      {"hostile_truncated_header", "header"},     {"hostile_json_len_past_end", "past the end"},
      {"hostile_truncated_json", "past the end"},         {"hostile_bad_json", "metadata"},
      {"hostile_truncated_body", "truncated"},    {"hostile_48k_truncated_scale", "truncated"}};
  const auto names = cases_expecting("error");
  ASSERT_FALSE(names.empty());
  for (const std::string& name : names) {
    try {
      mg::ecdc_read(read_bytes(dir() + "/" + name + ".ecdc"));
      ADD_FAILURE() << name << " was accepted";
    } catch (const mg::Error& e) {
      const auto it = expected_words.find(name);
      if (it != expected_words.end())
        EXPECT_NE(std::string(e.what()).find(it->second), std::string::npos) << name << ": " << e.what();
    }
  }
}

}  // namespace
