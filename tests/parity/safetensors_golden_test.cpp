// Files written by the reference writers (python `safetensors`, transformers' save_pretrained)
// must read back bit for bit: every dtype with its special values, metadata, empty tensors, and a
// 2-shard checkpoint with its index. Goldens: tools/reference/make_weight_goldens.py.
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "codec/encodec_config.h"
#include "test_util.h"
#include "weights/json_config.h"
#include "weights/safetensors.h"

namespace {

using nlohmann::json;

std::string gdir() { return mgtest::golden_dir() + "/weights"; }

json expected() {
  std::ifstream in(gdir() + "/expected.json");
  EXPECT_TRUE(in.good()) << "missing " << gdir() << "/expected.json";
  return json::parse(in);
}

mg::DType dtype_of(const std::string& s) {
  if (s == "f32") return mg::DType::F32;
  if (s == "f16") return mg::DType::F16;
  if (s == "bf16") return mg::DType::BF16;
  if (s == "i32") return mg::DType::I32;
  return mg::DType::I64;
}

uint32_t f32_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

bool f32_bits_are_nan(uint32_t b) { return (b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0; }

// Checks one tensor against its describe() entry: raw bits, and the f32 the reader converts to.
void check_tensor(const std::string& name, const mg::Tensor& t, const json& e) {
  SCOPED_TRACE(name);
  ASSERT_EQ(t.dtype, dtype_of(e["dtype"].get<std::string>()));
  ASSERT_EQ(t.shape, e["shape"].get<mg::Shape>());
  ASSERT_EQ(t.device, mg::Device::CPU);
  if (t.dtype == mg::DType::I32 || t.dtype == mg::DType::I64) {
    auto want = e["values"].get<std::vector<int64_t>>();
    ASSERT_EQ(int64_t(want.size()), t.numel());
    for (size_t i = 0; i < want.size(); ++i) {
      int64_t got = t.dtype == mg::DType::I32 ? t.ptr<int32_t>()[i] : t.ptr<int64_t>()[i];
      EXPECT_EQ(got, want[i]) << "element " << i;
    }
    return;
  }
  auto raw = e["bits"].get<std::vector<uint32_t>>();
  auto as_f32 = e["f32_bits"].get<std::vector<uint32_t>>();
  ASSERT_EQ(int64_t(raw.size()), t.numel());
  std::vector<float> conv = t.to_vector();
  for (size_t i = 0; i < raw.size(); ++i) {
    uint32_t got = t.dtype == mg::DType::F32 ? t.ptr<uint32_t>()[i] : t.ptr<uint16_t>()[i];
    EXPECT_EQ(got, raw[i]) << "raw bits of element " << i;
    // NaN payloads differ between converters (torch's vector path gives 0x7fffffff); NaN-ness must not.
    if (f32_bits_are_nan(as_f32[i]))
      EXPECT_TRUE(std::isnan(conv[i])) << "element " << i;
    else
      EXPECT_EQ(f32_bits(conv[i]), as_f32[i]) << "f32 value of element " << i << " = " << conv[i];
  }
}

TEST(SafetensorsGolden, EveryDtypeWithSpecialValues) {
  json exp = expected()["dtypes"];
  auto f = mg::SafeTensorsFile::open(gdir() + "/dtypes.safetensors");
  std::vector<std::string> want_names;
  for (auto it = exp.begin(); it != exp.end(); ++it) want_names.push_back(it.key());
  EXPECT_EQ(f->names(), want_names);
  for (const auto& n : want_names) check_tensor(n, f->get(n), exp[n]);
  EXPECT_TRUE(f->metadata().empty());
}

TEST(SafetensorsGolden, ViewsAreZeroCopyAndOutliveTheFile) {
  mg::Tensor t;
  {
    auto f = mg::SafeTensorsFile::open(gdir() + "/dtypes.safetensors");
    t = f->get("four_d");
    // The python writer pads the header to 8 bytes, so aligned tensors are views, not copies.
    mg::Tensor again = f->get("four_d");
    EXPECT_EQ(t.data, again.data);
  }
  // The file object is gone; the mapping must live on through the tensor.
  json exp = expected()["dtypes"]["four_d"];
  check_tensor("four_d", t, exp);
}

TEST(SafetensorsGolden, MetadataIsRead) {
  json exp = expected()["metadata"];
  auto f = mg::SafeTensorsFile::open(gdir() + "/metadata.safetensors");
  std::map<std::string, std::string> want = exp["metadata"].get<std::map<std::string, std::string>>();
  EXPECT_EQ(f->metadata(), want);
  EXPECT_EQ(f->names(), std::vector<std::string>{"w"});  // __metadata__ is not a tensor
  check_tensor("w", f->get("w"), exp["w"]);
}

TEST(SafetensorsGolden, EmptyTensorsSitAnywhere) {
  // The writer puts a 0-byte tensor at the same offset as a real one; that is not an overlap.
  json exp = expected()["empty"];
  auto all = mg::load_safetensors(gdir() + "/empty.safetensors");
  ASSERT_EQ(all.size(), exp.size());
  for (auto it = exp.begin(); it != exp.end(); ++it) {
    ASSERT_TRUE(all.count(it.key())) << it.key();
    check_tensor(it.key(), all[it.key()], it.value());
  }
  EXPECT_EQ(all["empty_rows"].numel(), 0);
  EXPECT_TRUE(all["empty_rows"].defined());
}

void check_sharded_store(const mg::WeightStore& ws, const json& exp) {
  const json& tensors = exp["tensors"];
  std::vector<std::string> want;
  for (auto it = tensors.begin(); it != tensors.end(); ++it) want.push_back(it.key());
  ASSERT_EQ(ws.names(), want);
  for (const auto& name : want) {
    SCOPED_TRACE(name);
    const json& e = tensors[name];
    mg::Shape shape = e["shape"].get<mg::Shape>();
    mg::Tensor t = ws.get(name, shape);
    ASSERT_EQ(t.dtype, mg::DType::F32);
    double sum = 0, abs_sum = 0;
    const float* p = t.f32();
    for (int64_t i = 0; i < t.numel(); ++i) {
      sum += p[i];
      abs_sum += std::fabs(p[i]);
    }
    EXPECT_NEAR(sum, e["sum"].get<double>(), 1e-9 * (1 + e["abs_sum"].get<double>()));
    EXPECT_NEAR(abs_sum, e["abs_sum"].get<double>(), 1e-9 * (1 + e["abs_sum"].get<double>()));
    if (t.numel() > 0) {
      uint32_t first;
      std::memcpy(&first, p, 4);
      EXPECT_EQ(first, e["first_bits"].get<uint32_t>());
    }
  }
}

TEST(SafetensorsGolden, ShardedCheckpointFromFolder) {
  json exp = expected()["sharded"];
  ASSERT_EQ(exp["shards"].size(), 2u);
  mg::WeightStore ws = mg::WeightStore::open(gdir() + "/sharded");
  check_sharded_store(ws, exp);
  // Each shard is mapped once: all tensors of a shard share one mapping, two shards two mappings.
  std::map<std::string, const void*> mapping_of_shard;
  for (auto it = exp["tensors"].begin(); it != exp["tensors"].end(); ++it) {
    const void* owner = ws.get(it.key()).owner.get();
    auto ins = mapping_of_shard.emplace(it.value()["shard"].get<std::string>(), owner);
    EXPECT_EQ(ins.first->second, owner) << it.key();
  }
  ASSERT_EQ(mapping_of_shard.size(), 2u);
  EXPECT_NE(mapping_of_shard.begin()->second, mapping_of_shard.rbegin()->second);
}

TEST(SafetensorsGolden, ShardedCheckpointFromIndexFile) {
  json exp = expected()["sharded"];
  mg::WeightStore ws = mg::WeightStore::open(gdir() + "/sharded/model.safetensors.index.json");
  check_sharded_store(ws, exp);
}

TEST(SafetensorsGolden, PrefixedViewOfShardedCheckpoint) {
  json exp = expected()["sharded"];
  mg::WeightStore ws = mg::WeightStore::open(gdir() + "/sharded");
  mg::WeightStore dec = ws.with_prefix("decoder.");
  std::vector<std::string> want;
  for (auto it = exp["tensors"].begin(); it != exp["tensors"].end(); ++it)
    if (it.key().rfind("decoder.", 0) == 0) want.push_back(it.key().substr(8));
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(dec.names(), want);
  EXPECT_TRUE(dec.has("layers.0.conv.bias"));
  EXPECT_FALSE(dec.has("decoder.layers.0.conv.bias"));
  mg::WeightStore lay = dec.with_prefix("layers.0.");  // prefixes compose
  EXPECT_EQ(lay.get("conv.bias").data, ws.get("decoder.layers.0.conv.bias").data);
}

// Derived values (frame rate = ceil, chunk = int() truncation, Python float floor division in
// num_quantizers) must equal HF's properties on a config that save_pretrained wrote.
void check_derived(const mg::EncodecConfig& c, const json& d) {
  EXPECT_EQ(c.hop_length(), d["hop_length"].get<int>());
  EXPECT_EQ(c.frame_rate(), d["frame_rate"].get<int>());
  EXPECT_EQ(c.codebook_nbits(), d["codebook_nbits"].get<int>());
  EXPECT_EQ(c.num_quantizers(), d["num_quantizers"].get<int>());
  EXPECT_EQ(c.codebook_dim, d["codebook_dim"].get<int>());
  if (d["chunk_length"].is_null()) {
    EXPECT_FALSE(c.chunk_length().has_value());
  } else {
    ASSERT_TRUE(c.chunk_length().has_value());
    EXPECT_EQ(*c.chunk_length(), d["chunk_length"].get<int64_t>());
  }
  if (d["chunk_stride"].is_null()) {
    EXPECT_FALSE(c.chunk_stride().has_value());
  } else {
    ASSERT_TRUE(c.chunk_stride().has_value());
    EXPECT_EQ(*c.chunk_stride(), d["chunk_stride"].get<int64_t>());
  }
  for (const auto& pair : d["num_quantizers_for_bandwidth"])
    EXPECT_EQ(c.num_quantizers_for_bandwidth(pair[0].get<double>()), pair[1].get<int>())
        << "bandwidth " << pair[0];
}

TEST(SafetensorsGolden, SavePretrainedEncodecConfig) {
  json exp = expected()["sharded"]["config"];
  mg::EncodecConfig c = mg::load_encodec_config(gdir() + "/sharded");
  EXPECT_EQ(c.sampling_rate, 7999);
  EXPECT_EQ(c.audio_channels, 2);
  EXPECT_TRUE(c.normalize);
  EXPECT_FALSE(c.use_causal_conv);
  EXPECT_FALSE(c.use_conv_shortcut);
  EXPECT_EQ(c.num_lstm_layers, 1);
  check_derived(c, exp);
}

TEST(SafetensorsGolden, MusicgenConfigAudioEncoder) {
  json exp = expected()["musicgen_config"]["audio_encoder"];
  mg::EncodecConfig c = mg::load_musicgen_audio_encoder_config(gdir() + "/musicgen_config");
  EXPECT_EQ(c.sampling_rate, 32000);
  EXPECT_EQ(c.num_filters, 64);
  EXPECT_EQ(c.upsampling_ratios, (std::vector<int>{8, 5, 4, 4}));
  check_derived(c, exp);
  // The generic loader finds the audio_encoder by itself.
  mg::EncodecConfig c2 = mg::load_encodec_config(gdir() + "/musicgen_config/config.json");
  EXPECT_EQ(c2.hop_length(), 640);
}

}  // namespace
