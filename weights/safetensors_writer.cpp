#include "weights/safetensors_writer.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace mg {

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    default: return nullptr;
  }
}

namespace {

const char* safetensors_dtype(DType t) {
  if (const char* name = safetensors_dtype_name(t)) return name;
  throw Error("safetensors_bytes: a tensor's dtype has no safetensors name (f32, f16, bf16, i32, i64 only)");
}

}  // namespace

std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    MG_CHECK(!name.empty() && name != "__metadata__", "safetensors_bytes: invalid tensor name '", name, "'");
    MG_CHECK(seen.insert(name).second, "safetensors_bytes: tensor '", name, "' given twice");
    MG_CHECK(t.defined() && t.device == Device::CPU, "safetensors_bytes: tensor '", name, "' is not a host tensor");
    const uint64_t n = t.nbytes();
    header[name] = {{"dtype", safetensors_dtype(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string head = header.dump();  // nlohmann's object keeps keys sorted
  while (head.size() % 8 != 0) head.push_back(' ');
  std::string out;
  out.reserve(8 + head.size() + offset);
  const uint64_t hlen = head.size();
  for (int i = 0; i < 8; ++i) out.push_back(char((hlen >> (8 * i)) & 0xff));
  out += head;
  for (const auto& [name, t] : tensors) out.append(static_cast<const char*>(t.data), t.nbytes());
  return out;
}

}  // namespace mg
