// A non-standard EnCodec (codebook_size 64: no .ecdc model name matches it) loads and runs through
// the C API as transformers would run it; only writing an .ecdc for it is refused, at that point,
// with an error that says why. The model is the tiny 24 kHz one remade by make-random-model with
// 64-entry codebooks.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "encodec.h"
#include "test_util.h"

using nlohmann::json;

namespace {

const std::string kTool = MG_BINARY_DIR "/tools/make-random-model/make-random-model";

// Remakes encodec_24khz_tiny with `codebook_size` entries per codebook; 14.4 kbps at 75 frames/s x
// 6 bits keeps its 32 codebooks. Returns the snapshot folder.
std::string make_codec(const std::string& dir, int codebook_size) {
  const std::string manifest = dir + "/m.json", out = dir + "/codec";
  auto r = mgtest::run_command(kTool, "describe " + mgtest::data_dir() + "/models/encodec_24khz_tiny " + manifest);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json m = json::parse(mgtest::slurp(manifest));
  json cfg = json::parse(m["text_files"]["config.json"].get<std::string>());
  cfg["codebook_size"] = codebook_size;
  cfg["target_bandwidths"] = {1.8, 3.6, 14.4};
  m["text_files"]["config.json"] = cfg.dump(2);
  for (json& t : m["tensors"])
    if (t["name"].get<std::string>().find(".codebook.embed") != std::string::npos) t["shape"][0] = codebook_size;
  std::ofstream(manifest) << m.dump();
  r = mgtest::run_command(kTool, "make " + manifest + " " + out + " --seed 1");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

}  // namespace

TEST(NonstandardCodec, Codebook64LoadsEncodesDecodesButWritesNoEcdc) {
  const std::string dir = mgtest::test_case_dir();
  const std::string path = make_codec(dir, 64);
  encodec_model_params mp = encodec_model_default_params();
  mp.device = MUSICGEN_DEVICE_CPU;
  encodec_model* m = nullptr;
  encodec_session* s = nullptr;
  ASSERT_EQ(encodec_model_load(path.c_str(), &mp, &m), MUSICGEN_OK) << musicgen_last_error();
  ASSERT_EQ(encodec_session_create(m, nullptr, &s), MUSICGEN_OK) << musicgen_last_error();
  EXPECT_STREQ(encodec_model_name(m), "");
  EXPECT_EQ(encodec_model_num_codebooks(m, 14.4), 32);
  EXPECT_EQ(encodec_model_num_codebooks(m, 1.8), 4);

  encodec_audio* in = nullptr;
  ASSERT_EQ(encodec_audio_create(24000, 1, 4800, &in), MUSICGEN_OK);
  for (int64_t i = 0; i < 4800; ++i) encodec_audio_channel_data(in, 0)[i] = 0.3f * float(std::sin(0.02 * double(i)));
  encodec_codes* codes = nullptr;
  encodec_audio* out = nullptr;
  ASSERT_EQ(encodec_session_encode(s, in, 3.6, &codes), MUSICGEN_OK) << musicgen_last_error();
  EXPECT_EQ(encodec_codes_num_codebooks(codes), 8);
  const int64_t n = encodec_codes_num_frames(codes, 0) * encodec_codes_num_codebooks(codes);
  for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(encodec_codes_data(codes, 0)[i] >= 0 && encodec_codes_data(codes, 0)[i] < 64);
  ASSERT_EQ(encodec_session_decode(s, codes, &out), MUSICGEN_OK) << musicgen_last_error();
  ASSERT_EQ(encodec_audio_frames(out), 4800);
  for (int64_t i = 0; i < 4800; ++i) ASSERT_TRUE(std::isfinite(encodec_audio_channel_data_const(out, 0)[i]));

  // Writing an .ecdc is what needs a model name: refused there, naming why.
  const std::string ecdc = dir + "/x.ecdc";
  EXPECT_EQ(encodec_codes_write_ecdc(m, codes, ecdc.c_str()), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(musicgen_last_error()).find("cannot write an .ecdc file"), std::string::npos)
      << musicgen_last_error();
  EXPECT_NE(std::string(musicgen_last_error()).find("64"), std::string::npos) << musicgen_last_error();
  uint8_t* bytes = nullptr;
  size_t size = 0;
  EXPECT_EQ(encodec_session_compress(s, in, 0, &bytes, &size), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(bytes, nullptr);
  const std::string wav = dir + "/in.wav";
  ASSERT_EQ(encodec_audio_write(wav.c_str(), in, ENCODEC_SUBTYPE_PCM16), MUSICGEN_OK);
  EXPECT_EQ(encodec_session_compress_file(s, wav.c_str(), ecdc.c_str(), 0), MUSICGEN_ERROR_INVALID_ARGUMENT);
  EXPECT_FALSE(std::ifstream(ecdc).good()) << "no file is left behind";

  encodec_audio_free(out);
  encodec_codes_free(codes);
  encodec_audio_free(in);
  encodec_session_free(s);
  encodec_model_free(m);
}
