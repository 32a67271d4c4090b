// Hostile and broken safetensors files, built byte by byte: each must be refused with an mg::Error
// that names the file and the specific problem, never a crash or an out-of-bounds read (this
// binary is meant to stay clean under valgrind / -fsanitize=address). Plus the WeightStore error
// texts that model loaders rely on.
#include "weights/safetensors.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "test_util.h"

namespace {

std::string write_file(const std::string& name, const std::string& bytes) {
  std::string path = mgtest::temp_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  return path;
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((n >> (8 * i)) & 0xff);
  return s;
}

// A file with this exact header text and data section.
std::string make_st(const std::string& name, const std::string& header, const std::string& data) {
  return write_file(name, le64(header.size()) + header + data);
}

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(&s[0], v.begin(), s.size());
  return s;
}

// Opening `path` must throw an mg::Error whose text holds the file name and every `needles`.
void expect_rejected(const std::string& path, std::initializer_list<const char*> needles) {
  std::string base = path.substr(path.rfind('/') + 1);
  try {
    auto f = mg::SafeTensorsFile::open(path);
    FAIL() << "accepted " << base;
  } catch (const mg::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(base), std::string::npos) << "message does not name the file: " << msg;
    for (const char* n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
  }
}

using mgtest::error_of;

TEST(SafetensorsReader, ValidHandWrittenFile) {
  // Header of odd length: data is misaligned, so the reader must copy rather than hand out a
  // misaligned float pointer.
  std::string hdr = R"({"__metadata__":{"k":"v"},"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]},)"
                    R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  if (hdr.size() % 4 == 0) hdr += ' ';  // trailing spaces are legal header padding
  std::string data = floats({1.5f, -2.0f});
  int64_t v = -42;
  data.append(reinterpret_cast<const char*>(&v), 8);
  std::string path = make_st("valid.safetensors", hdr, data);
  auto f = mg::SafeTensorsFile::open(path);
  EXPECT_EQ(f->names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f->metadata().at("k"), "v");
  mg::Tensor a = f->get("a");
  EXPECT_EQ(a.shape, mg::Shape{2});
  EXPECT_EQ(a.to_vector(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % alignof(float), 0u);  // copied, not a misaligned view
  mg::Tensor b = f->get("b");
  EXPECT_EQ(b.shape, mg::Shape{});
  EXPECT_EQ(b.ptr<int64_t>()[0], -42);
  EXPECT_EQ(f->info("b").begin, 8u);
  EXPECT_TRUE(f->has("a"));
  EXPECT_FALSE(f->has("__metadata__"));
  EXPECT_NE(error_of([&] { f->get("c"); }).find("'c' not found"), std::string::npos);
}

TEST(SafetensorsReader, HolesAreTolerated) {
  std::string hdr = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  auto f = mg::SafeTensorsFile::open(make_st("hole.safetensors", hdr, floats({9.0f, 3.0f})));
  EXPECT_EQ(f->get("a").to_vector(), std::vector<float>{3.0f});
}

TEST(SafetensorsReader, MissingFile) {
  expect_rejected(mgtest::temp_dir() + "/does_not_exist.safetensors", {"cannot open"});
}

TEST(SafetensorsReader, EmptyFile) { expect_rejected(write_file("empty.safetensors", ""), {"empty"}); }

TEST(SafetensorsReader, TruncatedHeaderLength) {
  expect_rejected(write_file("trunc_len.safetensors", std::string("\x10\x00\x00", 3)),
                  {"truncated", "8-byte"});
}

TEST(SafetensorsReader, HeaderLengthPastEof) {
  expect_rejected(write_file("len_past_eof.safetensors", le64(64) + "{}"),
                  {"header length 64", "past the end"});
}

TEST(SafetensorsReader, AbsurdHeaderLength) {
  expect_rejected(write_file("huge_len.safetensors", le64(~0ull) + "{}"), {"exceeds"});
}

TEST(SafetensorsReader, HeaderNotJson) {
  expect_rejected(make_st("not_json.safetensors", "{\"a\": [1, 2", ""), {"not valid JSON"});
  expect_rejected(make_st("garbage.safetensors", std::string("\xff\xfe\x00\x01", 4), ""), {"not valid JSON"});
}

TEST(SafetensorsReader, HeaderNotObject) {
  expect_rejected(make_st("array_header.safetensors", "[1,2,3]", ""), {"must be a JSON object"});
  expect_rejected(make_st("entry_not_object.safetensors", R"({"t": 5})", ""), {"'t'", "not an object"});
}

TEST(SafetensorsReader, OffsetsPastEnd) {
  std::string hdr = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_rejected(make_st("offsets_past_end.safetensors", hdr, floats({1.0f})), {"'t'", "end past the data"});
}

TEST(SafetensorsReader, BeginAfterEnd) {
  std::string hdr = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})";
  expect_rejected(make_st("begin_gt_end.safetensors", hdr, floats({1, 2, 3})), {"'t'", "begin > end"});
}

TEST(SafetensorsReader, BadOffsets) {
  std::string hdr = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})";
  expect_rejected(make_st("one_offset.safetensors", hdr, floats({1})), {"'t'", "two integers"});
  hdr = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})";
  expect_rejected(make_st("neg_offset.safetensors", hdr, floats({1})), {"'t'", "non-negative"});
  hdr = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0.0,4.0]}})";
  expect_rejected(make_st("float_offset.safetensors", hdr, floats({1})), {"'t'", "non-negative integers"});
}

TEST(SafetensorsReader, OverlappingTensors) {
  std::string hdr = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_rejected(make_st("overlap.safetensors", hdr, floats({1, 2, 3})), {"overlapping", "'x'", "'y'"});
  // Identical ranges are an overlap too.
  hdr = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
        R"("y":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})";
  expect_rejected(make_st("alias.safetensors", hdr, floats({1})), {"overlapping"});
}

TEST(SafetensorsReader, ByteCountMismatch) {
  std::string hdr = R"({"t":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})";
  expect_rejected(make_st("bytecount.safetensors", hdr, floats({1, 2})),
                  {"'t'", "byte count mismatch: data_offsets span 8 bytes but shape [3] of F16 needs 6"});
  // A shape whose byte count overflows 64 bits must not wrap around to a "match".
  hdr = R"({"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})";
  expect_rejected(make_st("overflow.safetensors", hdr, ""), {"'t'", "byte count"});
}

TEST(SafetensorsReader, BadDtype) {
  std::string hdr = R"({"t":{"dtype":"Q4_K","shape":[1],"data_offsets":[0,4]}})";
  expect_rejected(make_st("unknown_dtype.safetensors", hdr, floats({1})), {"unknown dtype Q4_K", "'t'"});
  hdr = R"({"t":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})";
  expect_rejected(make_st("numeric_dtype.safetensors", hdr, floats({1})), {"dtype", "'t'"});
}

TEST(SafetensorsReader, UnsupportedDtypeFailsOnlyWhenRead) {
  // F64/U8/BOOL are legal safetensors: the file opens (so one stray buffer does not make a
  // checkpoint unreadable) and reading that tensor names dtype, tensor and file.
  std::string hdr = R"({"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
                    R"("m":{"dtype":"BOOL","shape":[2],"data_offsets":[8,10]},)"
                    R"("ok":{"dtype":"U8","shape":[6],"data_offsets":[10,16]}})";
  std::string path = make_st("f64.safetensors", hdr, std::string(16, '\0'));
  auto f = mg::SafeTensorsFile::open(path);
  EXPECT_TRUE(f->has("d"));
  std::string msg = error_of([&] { f->get("d"); });
  EXPECT_NE(msg.find("unsupported dtype F64 for tensor 'd' in"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f64.safetensors"), std::string::npos) << msg;
  msg = error_of([&] { f->info("m"); });
  EXPECT_NE(msg.find("unsupported dtype BOOL for tensor 'm'"), std::string::npos) << msg;
  // ... but their sizes are still checked at open.
  hdr = R"({"d":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})";
  expect_rejected(make_st("f64_bad_size.safetensors", hdr, std::string(8, '\0')), {"'d'", "byte count"});
}

TEST(SafetensorsReader, BadShape) {
  std::string hdr = R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})";
  expect_rejected(make_st("neg_shape.safetensors", hdr, floats({1})), {"'t'", "non-negative integers"});
  hdr = R"({"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})";
  expect_rejected(make_st("float_shape.safetensors", hdr, floats({1})), {"'t'", "non-negative integers"});
  hdr = R"({"t":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})";
  expect_rejected(make_st("string_shape.safetensors", hdr, floats({1})), {"'t'", "shape"});
  hdr = R"({"t":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]}})";
  expect_rejected(make_st("five_dims.safetensors", hdr, floats({1})), {"'t'", "more than 4 dims"});
  hdr = R"({"t":{"dtype":"F32","data_offsets":[0,4]}})";
  expect_rejected(make_st("no_shape.safetensors", hdr, floats({1})), {"'t'", "missing shape"});
}

TEST(SafetensorsReader, BadMetadata) {
  std::string hdr = R"({"__metadata__":{"n":3}})";
  expect_rejected(make_st("meta_int.safetensors", hdr, ""), {"__metadata__", "'n'"});
}

TEST(SafetensorsReader, FolderIsNotAFile) { expect_rejected(mgtest::temp_dir(), {"not a regular file"}); }

// ---- WeightStore ----

std::string two_tensor_file(const std::string& name, const std::string& a, const std::string& b) {
  std::string hdr = "{\"" + a + R"(":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},")" + b +
                    R"(":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]}})";
  return make_st(name, hdr, floats({1, 2, 3, 4}));
}

TEST(WeightStore, SingleFileErrorsNameTensorAndCheckpoint) {
  std::string path = two_tensor_file("store.safetensors", "audio_encoder.x.weight", "audio_encoder.y.bias");
  mg::WeightStore ws = mg::WeightStore::open(path);
  EXPECT_EQ(ws.source(), path);
  EXPECT_EQ(ws.get("audio_encoder.x.weight", {2}).to_vector(), (std::vector<float>{1, 2}));

  std::string msg = error_of([&] { ws.get("audio_encoder.x.weight", {2, 1}); });
  EXPECT_NE(msg.find("tensor 'audio_encoder.x.weight' in " + path + ": expected shape [2, 1], found [2]"),
            std::string::npos)
      << msg;

  msg = error_of([&] { ws.get("x.weight"); });  // forgot the prefix: the hint names the full key
  EXPECT_NE(msg.find("tensor 'x.weight' not found in " + path), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'audio_encoder.x.weight'"), std::string::npos) << msg;

  mg::WeightStore enc = ws.with_prefix("audio_encoder.");
  EXPECT_EQ(enc.names(), (std::vector<std::string>{"x.weight", "y.bias"}));
  EXPECT_TRUE(enc.has("y.bias"));
  EXPECT_EQ(enc.get("y.bias", {1, 2}).to_vector(), (std::vector<float>{3, 4}));
  msg = error_of([&] { enc.get("z"); });
  EXPECT_NE(msg.find("tensor 'audio_encoder.z' not found"), std::string::npos) << msg;
  EXPECT_TRUE(ws.with_prefix("nothing.").names().empty());
}

TEST(WeightStore, FolderLayouts) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(mgtest::temp_dir()) / "snapshot_single";
  fs::create_directories(dir);
  fs::copy_file(two_tensor_file("tmp_single.safetensors", "a", "b"), dir / "model.safetensors",
                fs::copy_options::overwrite_existing);
  EXPECT_EQ(mg::WeightStore::open(dir.string()).names(), (std::vector<std::string>{"a", "b"}));

  fs::path empty = fs::path(mgtest::temp_dir()) / "snapshot_empty";
  fs::create_directories(empty);
  std::string msg = error_of([&] { mg::WeightStore::open(empty.string()); });
  EXPECT_NE(msg.find("snapshot_empty"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors.index.json"), std::string::npos) << msg;
}

TEST(WeightStore, ShardedIndexErrors) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(mgtest::temp_dir()) / "snapshot_sharded";
  fs::create_directories(dir);
  fs::copy_file(two_tensor_file("tmp_s1.safetensors", "a", "b"), dir / "s1.safetensors",
                fs::copy_options::overwrite_existing);
  fs::copy_file(two_tensor_file("tmp_s2.safetensors", "c", "d"), dir / "s2.safetensors",
                fs::copy_options::overwrite_existing);
  auto write_index = [&](const std::string& body) {
    std::ofstream(dir / "model.safetensors.index.json") << body;
  };
  write_index(R"({"metadata":{"total_size":32},"weight_map":{"a":"s1.safetensors","b":"s1.safetensors",)"
              R"("c":"s2.safetensors"}})");
  mg::WeightStore ws = mg::WeightStore::open(dir.string());
  EXPECT_EQ(ws.names(), (std::vector<std::string>{"a", "b", "c"}));  // the index decides
  EXPECT_EQ(ws.get("c").to_vector(), (std::vector<float>{1, 2}));

  write_index(R"({"weight_map":{"a":"s1.safetensors","zz":"s2.safetensors"}})");
  std::string msg = error_of([&] { mg::WeightStore::open(dir.string()); });
  EXPECT_NE(msg.find("'zz'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors.index.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("s2.safetensors"), std::string::npos) << msg;

  write_index(R"({"weight_map":{"a":"missing.safetensors"}})");
  msg = error_of([&] { mg::WeightStore::open(dir.string()); });
  EXPECT_NE(msg.find("missing.safetensors"), std::string::npos) << msg;

  write_index(R"({"weight_map":{"a":"../s1.safetensors"}})");
  msg = error_of([&] { mg::WeightStore::open(dir.string()); });
  EXPECT_NE(msg.find("inside the index's folder"), std::string::npos) << msg;

  write_index(R"({"metadata":{}})");
  msg = error_of([&] { mg::WeightStore::open((dir / "model.safetensors.index.json").string()); });
  EXPECT_NE(msg.find("weight_map"), std::string::npos) << msg;

  write_index(R"({"weight_map":{"a":5}})");
  msg = error_of([&] { mg::WeightStore::open(dir.string()); });
  EXPECT_NE(msg.find("'weight_map.a'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected string"), std::string::npos) << msg;
}

}  // namespace

// A NaN or infinity in a weight is refused where the loaders read it (WeightStore::get with a
// shape), with the tensor, the file, the value and where: it used to give a WAV of noise.
TEST(SafeTensors, NonFiniteWeightsAreRefusedWithTheirPlace) {
  mg::Tensor f32 = mg::Tensor::zeros(mg::DType::F32, {3, 4000});
  EXPECT_NO_THROW(mg::check_weight_finite(f32, "w", "model.safetensors"));
  f32.f32()[9000] = HUGE_VALF;
  EXPECT_EQ(mgtest::error_of([&] { mg::check_weight_finite(f32, "w", "model.safetensors"); }),
            "tensor 'w' in model.safetensors holds inf at element 9000: the weights are damaged (or were saved from "
            "a diverged training); download the model again");
  mg::Tensor f16 = mg::Tensor::zeros(mg::DType::F16, {100});
  mg::Tensor bf16 = mg::Tensor::zeros(mg::DType::BF16, {100});
  f16.ptr<uint16_t>()[7] = 0x3c00;  // 1.0 passes
  EXPECT_NO_THROW(mg::check_weight_finite(f16, "h", "f"));
  f16.ptr<uint16_t>()[42] = 0x7e00;   // NaN
  bf16.ptr<uint16_t>()[99] = 0xff80;  // -inf
  EXPECT_NE(mgtest::error_of([&] { mg::check_weight_finite(f16, "h", "f"); }).find("holds nan at element 42"),
            std::string::npos);
  EXPECT_NE(mgtest::error_of([&] { mg::check_weight_finite(bf16, "b", "f"); }).find("holds -inf at element 99"),
            std::string::npos);
}
