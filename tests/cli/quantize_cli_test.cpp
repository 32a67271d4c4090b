// musicgen-cli quantize and --weights q8|q4 on the tiny model: a quantized snapshot generates the
// same tokens as the conversion at load, it is smaller, and the scheme errors are clear. (The tiny
// model's hidden size, 24, is not a multiple of 32: only its fc2 weights, rows of 96, are whole
// blocks and get quantized; the others stay f32 in both paths. Full-size numbers:
// docs/QUANTIZATION.md.)
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "lm/quantize_snapshot.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;

namespace {

const std::string kCli = std::string(MG_BINARY_DIR) + "/tools/musicgen-cli/musicgen-cli";
const std::string kTiny = mgtest::data_dir() + "/models/musicgen_tiny";

mgtest::RunResult cli(const std::string& args) { return mgtest::run_command(kCli, args); }

// Greedy codes of a short generation (written with --codes-out) as bytes.
std::string greedy_codes(const std::string& model, const std::string& weights, const std::string& dir,
                         const std::string& tag) {
  const std::string codes = dir + "/" + tag + ".ecdc";
  mgtest::RunResult r = cli("-m " + model + " -p \"80s pop\" -d 0.5 --greedy -q --weights " + weights +
                            " --codes-out " + codes + " -o " + dir + "/" + tag + ".wav");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return mgtest::slurp(codes);
}

// Bytes of the decoder weights that the scheme quantizes, in a snapshot's model.safetensors.
uint64_t quantized_weight_bytes(const std::string& snapshot, const mg::DType scheme) {
  auto f = mg::SafeTensorsFile::open(snapshot + "/model.safetensors");
  uint64_t bytes = 0;
  for (const std::string& name : f->names()) {
    const mg::TensorInfo& ti = f->info(name);
    if (!mg::is_quantizable_decoder_weight(name) || ti.shape.back() % 32 != 0) continue;
    (void)scheme;
    bytes += ti.end - ti.begin;
  }
  return bytes;
}

}  // namespace

TEST(QuantizeCli, SnapshotGeneratesWhatLoadTimeConversionDoes) {
  const std::string dir = mgtest::test_case_dir();
  for (const std::string w : {"q8", "q4"}) {
    const std::string snap = dir + "/tiny-" + w;
    mgtest::RunResult r = cli("quantize " + kTiny + " " + snap + " --weights " + w);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(fs::exists(snap + "/config.json") && fs::exists(snap + "/spiece.model")) << "files not copied";
    for (const auto& e : fs::directory_iterator(dir))
      EXPECT_EQ(e.path().filename().string().find(".musicgen-tmp-"), std::string::npos) << "temporary left: " << e.path();
    const std::string converted = greedy_codes(kTiny, w, dir, "conv-" + w);
    const std::string stored = greedy_codes(snap, w, dir, "snap-" + w);
    ASSERT_FALSE(converted.empty());
    EXPECT_EQ(converted, stored) << w << ": the snapshot's tokens differ from the conversion at load";
    auto f = mg::SafeTensorsFile::open(snap + "/model.safetensors");
    EXPECT_EQ(f->metadata().at(mg::kQuantizationKey), w == "q8" ? "q8_0" : "q4_0");
    EXPECT_EQ(f->get("decoder.model.decoder.layers.0.fc2.weight").dtype, w == "q8" ? mg::DType::Q8_0 : mg::DType::Q4_0);
  }
}

TEST(QuantizeCli, QuantizedWeightsAreSmaller) {
  const std::string dir = mgtest::test_case_dir();
  const uint64_t f32 = quantized_weight_bytes(kTiny, mg::DType::F32);
  ASSERT_GT(f32, 0u);
  for (const std::string w : {"q8", "q4"}) {
    const std::string snap = dir + "/tiny-" + w;
    ASSERT_EQ(cli("quantize " + kTiny + " " + snap + " --weights " + w).exit_code, 0);
    const double ratio = double(f32) / double(quantized_weight_bytes(snap, mg::DType::Q8_0));
    // 32 f32 values (128 bytes) per 34-byte (q8_0) or 18-byte (q4_0) block.
    EXPECT_NEAR(ratio, w == "q8" ? 128.0 / 34.0 : 128.0 / 18.0, 1e-6) << w;
    EXPECT_LT(fs::file_size(snap + "/model.safetensors"), fs::file_size(kTiny + "/model.safetensors"));
  }
}

TEST(QuantizeCli, SchemeErrors) {
  const std::string dir = mgtest::test_case_dir();
  const std::string snap = dir + "/tiny-q8";
  ASSERT_EQ(cli("quantize " + kTiny + " " + snap + " --weights q8").exit_code, 0);
  // Another scheme, or none (f32), for a quantized snapshot.
  for (const std::string w : {"q4", "f32"}) {
    mgtest::RunResult r = cli("-m " + snap + " -p x -d 0.2 -q --weights " + w + " -o " + dir + "/x.wav");
    EXPECT_EQ(r.exit_code, 1) << w;
    EXPECT_NE(r.err.find("is a quantized snapshot (q8_0 decoder weights): load it with weights q8"), std::string::npos)
        << r.err;
  }
  // The destination exists already; quantizing a quantized snapshot; an unknown scheme.
  mgtest::RunResult r = cli("quantize " + kTiny + " " + snap + " --weights q4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  r = cli("quantize " + snap + " " + dir + "/twice --weights q4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is already a quantized snapshot"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/twice"));
  r = cli("quantize " + kTiny + " " + dir + "/q5 --weights q5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(fs::exists(dir + "/q5"));
}

TEST(QuantizeCli, TamperedSchemeIsRefused) {
  const std::string dir = mgtest::test_case_dir();
  const std::string snap = dir + "/tiny-q8";
  ASSERT_EQ(cli("quantize " + kTiny + " " + snap + " --weights q8").exit_code, 0);
  // Rewrite the metadata string in place (same length): an unknown scheme, then the other scheme.
  auto tamper = [&](const std::string& from, const std::string& to) {
    std::string bytes = mgtest::slurp(snap + "/model.safetensors");
    const size_t at = bytes.find("\"" + from + "\"");
    ASSERT_NE(at, std::string::npos);
    bytes.replace(at + 1, from.size(), to);
    std::ofstream(snap + "/model.safetensors", std::ios::binary) << bytes;
  };
  tamper("q8_0", "q5_0");
  mgtest::RunResult r = cli("-m " + snap + " -p x -d 0.2 -q --weights q8 -o " + dir + "/x.wav");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown quantization scheme 'q5_0'"), std::string::npos) << r.err;
  tamper("q5_0", "q4_0");
  r = cli("-m " + snap + " -p x -d 0.2 -q --weights q4 -o " + dir + "/x.wav");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not whole q4_0 blocks"), std::string::npos) << r.err;
}
