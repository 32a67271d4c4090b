// safetensors files, memory-mapped: tensors are CPU views into the mapping (no copy), and the
// mapping lives as long as any tensor taken from it. Every header field is bounds-checked before
// use, so a truncated or hostile file gives an mg::Error that names the file and the problem.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/tensor.h"

namespace mg {

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
};

// The metadata key naming a quantized snapshot's scheme ("q8_0" or "q4_0"); its quantized tensors
// are U8 [rows, row bytes] in kernels/quant.h's block layout and read back as Q8_0/Q4_0 [rows, K].
constexpr const char* kQuantizationKey = "musicgen.quantization";

class SafeTensorsFile {
 public:
  // Maps and validates `path`. Throws mg::Error (file name + what is wrong) on any problem.
  static std::shared_ptr<SafeTensorsFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;   // throws when absent
  std::vector<std::string> names() const;                   // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // A CPU view of the tensor; keeps the mapping alive.
  Tensor get(const std::string& name) const;
  // Drops this process's resident pages of the tensor's bytes (the whole pages inside them), for a
  // loader that has converted or copied the tensor: a converting load then stays near the size of
  // what it keeps, not of the file. The bytes stay readable: a later access reads them from the file
  // again (the mapping is private and never written). Returns the bytes released.
  uint64_t release(const std::string& name) const;

  ~SafeTensorsFile();

 private:
  SafeTensorsFile() = default;
  static void apply_quantization(SafeTensorsFile& f);
  std::string path_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  // Tensors whose dtype the format defines but this library does not compute with (F64, U8, BOOL,
  // ...): their bytes are still validated at open, and only info()/get() on them fail, so one stray
  // buffer does not make a whole checkpoint unreadable. name -> dtype as spelled in the header.
  std::map<std::string, std::string> unsupported_;
  std::shared_ptr<void> mapping_;  // munmap on release
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t data_size_ = 0;
};

// Throws mg::Error naming the tensor, the file, the value and its index when the CPU tensor `t`
// (f32, f16 or bf16; other dtypes pass) holds a NaN or an infinity.
void check_weight_finite(const Tensor& t, const std::string& name, const std::string& source);

// A checkpoint: one model.safetensors, or shards listed in model.safetensors.index.json, seen
// through an optional name prefix (e.g. "audio_encoder." for the codec inside a MusicGen snapshot).
class WeightStore {
 public:
  // `path` is a .safetensors file, an index .json, or a folder holding model.safetensors or
  // model.safetensors.index.json.
  static WeightStore open(const std::string& path);

  WeightStore with_prefix(const std::string& prefix) const;  // names are looked up as prefix+name
  // This store with some of its tensors replaced by host tensors (names as get() takes them from
  // this store, e.g. a LoRA-merged weight): get() returns the replacement, names()/has() are
  // unchanged, and a name the checkpoint lacks is an error.
  WeightStore with_replaced(const std::map<std::string, Tensor>& tensors) const;
  bool has(const std::string& name) const;
  std::vector<std::string> names() const;                    // without the prefix, sorted
  // The tensor; absence is an error naming the tensor and the checkpoint.
  Tensor get(const std::string& name) const;
  // As get(), and a shape mismatch is an error naming the tensor, the expected and found shape, as
  // is a NaN or infinity in an f32/f16/bf16 tensor (check_weight_finite): the loaders read every
  // weight through this, so a damaged file is refused at load, not turned into silent audio.
  Tensor get(const std::string& name, const Shape& expected) const;
  // SafeTensorsFile::release for the tensor's bytes in the checkpoint (a replaced tensor's too: its
  // replacement is a copy). Call it once the tensor is converted or copied; views of it stay valid.
  uint64_t release(const std::string& name) const;
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::string prefix_;
  std::shared_ptr<std::map<std::string, std::shared_ptr<SafeTensorsFile>>> by_name_;  // full name -> file
  std::shared_ptr<const std::map<std::string, Tensor>> replaced_;  // full name -> replacement
};

// Loads every tensor of a small safetensors file into memory-mapped views (goldens in tests).
std::map<std::string, Tensor> load_safetensors(const std::string& path);

}  // namespace mg
