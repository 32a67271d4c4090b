#include "weights/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "kernels/quant.h"
#include <nlohmann/json.hpp>

#include "weights/json_config.h"

namespace fs = std::filesystem;

namespace mg {

namespace {

// A real header is a few hundred kB even for multi-GB checkpoints; anything far beyond that is
// a corrupt length field, and refusing it early avoids parsing gigabytes of garbage as JSON.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;
constexpr size_t kMaxDims = 4;  // mg::Tensor's limit

// Every dtype the safetensors format defines, with its element size. Those this library computes
// with map to a DType; the others are validated for size and refused only when read.
struct DTypeSpec {
  const char* name;
  size_t size;
  bool supported;
  DType dtype;
};
constexpr DTypeSpec kDTypes[] = {
    {"F32", 4, true, DType::F32},   {"F16", 2, true, DType::F16},      {"BF16", 2, true, DType::BF16},
    {"I32", 4, true, DType::I32},   {"I64", 8, true, DType::I64},      {"F64", 8, false, DType::F32},
    {"I8", 1, false, DType::F32},   {"U8", 1, false, DType::F32},      {"I16", 2, false, DType::F32},
    {"U16", 2, false, DType::F32},  {"U32", 4, false, DType::F32},     {"U64", 8, false, DType::F32},
    {"BOOL", 1, false, DType::F32}, {"F8_E4M3", 1, false, DType::F32}, {"F8_E5M2", 1, false, DType::F32},
};

const DTypeSpec* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

// Reads a JSON value as a non-negative integer that fits in int64 (shape dims, offsets).
bool as_count(const nlohmann::json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
  } else if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    *out = uint64_t(v);
  } else {
    return false;
  }
  return *out <= uint64_t(std::numeric_limits<int64_t>::max());
}

std::string brief(const nlohmann::json& j) {
  std::string s = j.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// The whole file mapped read-only; unmapped when the last tensor view lets go.
std::shared_ptr<void> map_file(const std::string& path, uint64_t* size_out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  MG_CHECK(fd >= 0, "cannot open safetensors file ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw Error(strcat("cannot stat safetensors file ", path, ": ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(strcat("safetensors path ", path, " is not a regular file"));
  }
  uint64_t size = uint64_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw Error(strcat("safetensors file ", path, " is ", size == 0 ? "empty" : "truncated", " (", size,
                       " bytes): too short for the 8-byte header length"));
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping stays valid without the descriptor
  MG_CHECK(p != MAP_FAILED, "cannot mmap safetensors file ", path, ": ", std::strerror(err));
  *size_out = size;
  return std::shared_ptr<void>(p, [size](void* q) { ::munmap(q, size); });
}

}  // namespace

SafeTensorsFile::~SafeTensorsFile() = default;

// A quantized snapshot (lm/quantize_snapshot.h) stores each quantized weight as a U8 tensor
// [rows, row bytes] and names the scheme in the metadata: those become Q8_0/Q4_0 tensors of their
// logical shape [rows, K]. An unknown scheme, or bytes that are not whole blocks, is an error.
void SafeTensorsFile::apply_quantization(SafeTensorsFile& f) {
  auto it = f.metadata_.find(kQuantizationKey);
  if (it == f.metadata_.end()) return;
  const std::string& scheme = it->second;
  MG_CHECK(scheme == "q8_0" || scheme == "q4_0", "safetensors file ", f.path_, ": unknown quantization scheme '",
           scheme, "' in its metadata (", kQuantizationKey,
           "); this build reads q8_0 and q4_0 (re-create the snapshot with musicgen-cli quantize)");
  const DType t = scheme == "q8_0" ? DType::Q8_0 : DType::Q4_0;
  const int64_t block_bytes = int64_t(dtype_nbytes(t, kQuantBlock));
  for (auto u = f.unsupported_.begin(); u != f.unsupported_.end();) {
    TensorInfo& ti = f.tensors_[u->first];
    if (u->second != "U8" || ti.shape.size() != 2) {
      ++u;
      continue;
    }
    MG_CHECK(ti.shape[1] > 0 && ti.shape[1] % block_bytes == 0, "safetensors file ", f.path_, ": tensor '", ti.name,
             "' has rows of ", ti.shape[1], " bytes, not whole ", scheme, " blocks of ", block_bytes,
             " bytes (a damaged snapshot, or metadata that does not match its data)");
    ti.dtype = t;
    ti.shape[1] = ti.shape[1] / block_bytes * kQuantBlock;
    u = f.unsupported_.erase(u);
  }
}

std::shared_ptr<SafeTensorsFile> SafeTensorsFile::open(const std::string& path) {
  std::shared_ptr<SafeTensorsFile> f(new SafeTensorsFile());
  f->path_ = path;
  uint64_t file_size = 0;
  f->mapping_ = map_file(path, &file_size);
  const uint8_t* base = static_cast<const uint8_t*>(f->mapping_.get());

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];  // little-endian
  MG_CHECK(header_len <= kMaxHeaderBytes, "safetensors file ", path, ": header length ", header_len,
           " bytes exceeds the ", kMaxHeaderBytes, "-byte limit (corrupt or not a safetensors file)");
  MG_CHECK(header_len <= file_size - 8, "safetensors file ", path, ": header length ", header_len,
           " runs past the end of the file (", file_size, " bytes)");
  f->data_ = base + 8 + header_len;
  f->data_size_ = file_size - 8 - header_len;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base + 8, base + 8 + header_len);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(strcat("safetensors file ", path, ": header (", header_len,
                       " bytes) is not valid JSON at byte ", e.byte, ": ", e.what()));
  } catch (const nlohmann::json::exception& e) {
    // A number beyond double's range (1e999) is out_of_range, not parse_error (found by fuzzing).
    throw Error(strcat("safetensors file ", path, ": header (", header_len, " bytes) is not valid JSON: ", e.what()));
  }
  MG_CHECK(header.is_object(), "safetensors file ", path, ": header must be a JSON object, found ",
           header.type_name());

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& e = it.value();
    if (name == "__metadata__") {
      MG_CHECK(e.is_object(), "safetensors file ", path, ": __metadata__ must be an object of strings");
      for (auto m = e.begin(); m != e.end(); ++m) {
        MG_CHECK(m.value().is_string(), "safetensors file ", path, ": __metadata__ value for '", m.key(),
                 "' is not a string: ", brief(m.value()));
        f->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto where = [&] { return strcat(" for tensor '", name, "' in ", path); };
    MG_CHECK(e.is_object(), "header entry is not an object", where());

    auto dt = e.find("dtype");
    MG_CHECK(dt != e.end() && dt->is_string(), "missing or non-string dtype", where());
    const std::string dtype_str = dt->get<std::string>();
    const DTypeSpec* spec = find_dtype(dtype_str);
    MG_CHECK(spec != nullptr, "unknown dtype ", dtype_str, where());

    auto sh = e.find("shape");
    MG_CHECK(sh != e.end() && sh->is_array(), "missing shape or shape is not a list", where());
    MG_CHECK(sh->size() <= kMaxDims, "shape ", brief(*sh), " has more than ", kMaxDims, " dims", where());
    Shape shape;
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : *sh) {
      uint64_t v = 0;
      MG_CHECK(as_count(d, &v), "shape ", brief(*sh), " is not a list of non-negative integers", where());
      shape.push_back(int64_t(v));
      if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / v) overflow = true;
      numel *= v;
    }

    auto off = e.find("data_offsets");
    MG_CHECK(off != e.end() && off->is_array() && off->size() == 2,
             "data_offsets must be a list of two integers", where());
    uint64_t begin = 0, end = 0;
    MG_CHECK(as_count((*off)[0], &begin) && as_count((*off)[1], &end), "data_offsets ", brief(*off),
             " are not non-negative integers", where());
    MG_CHECK(begin <= end, "data_offsets ", brief(*off), ": begin > end", where());
    MG_CHECK(end <= f->data_size_, "data_offsets ", brief(*off), " end past the data section (",
             f->data_size_, " bytes)", where());
    overflow = overflow || (numel != 0 && spec->size > std::numeric_limits<uint64_t>::max() / numel);
    MG_CHECK(!overflow && numel * spec->size == end - begin, "byte count mismatch: data_offsets span ",
             end - begin, " bytes but shape ", shape_str(shape), " of ", dtype_str, " needs ",
             overflow ? std::string("more than 2^64") : std::to_string(numel * spec->size), where());

    if (!spec->supported) f->unsupported_[name] = dtype_str;
    f->tensors_[name] = TensorInfo{name, spec->dtype, shape, begin, end};
  }

  apply_quantization(*f);

  // Tensors must not share bytes. Holes are tolerated (the spec forbids them, but they cannot
  // make a read wrong); empty tensors occupy no bytes and cannot overlap anything.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& kv : f->tensors_)
    if (kv.second.end > kv.second.begin) by_offset.push_back(&kv.second);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->name < b->name;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    const TensorInfo* cur = by_offset[i];
    MG_CHECK(prev->end <= cur->begin, "overlapping tensors '", prev->name, "' [", prev->begin, ", ",
             prev->end, ") and '", cur->name, "' [", cur->begin, ", ", cur->end, ") in ", path);
  }
  return f;
}

bool SafeTensorsFile::has(const std::string& name) const { return tensors_.count(name) != 0; }

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  MG_CHECK(it != tensors_.end(), "tensor '", name, "' not found in ", path_);
  auto bad = unsupported_.find(name);
  MG_CHECK(bad == unsupported_.end(), "unsupported dtype ", bad->second, " for tensor '", name, "' in ",
           path_, " (supported: F32, F16, BF16, I32, I64)");
  return it->second;
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& kv : tensors_) out.push_back(kv.first);
  return out;
}

Tensor SafeTensorsFile::get(const std::string& name) const {
  const TensorInfo& ti = info(name);
  const uint8_t* p = data_ + ti.begin;
  // The header length is normally padded so that data is 8-byte aligned; a hand-made file may
  // not be, and reading a float through a misaligned pointer is undefined, so copy those.
  const size_t align = dtype_is_quantized(ti.dtype) ? 1 : dtype_size(ti.dtype);  // blocks are read unaligned
  if (reinterpret_cast<uintptr_t>(p) % align != 0) {
    Tensor t = Tensor::empty(ti.dtype, ti.shape);
    std::memcpy(t.data, p, ti.end - ti.begin);
    return t;
  }
  // The mapping is read-only: writing through this view faults, by design (weights are inputs).
  return Tensor::view(const_cast<uint8_t*>(p), ti.dtype, ti.shape, Device::CPU, mapping_);
}

uint64_t SafeTensorsFile::release(const std::string& name) const {
  const TensorInfo& ti = info(name);
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data_ + ti.begin) + page - 1) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(data_ + ti.end) / page * page;
  if (end <= begin) return 0;  // no whole page: the neighbours' bytes share them
  // Only a hint: if the kernel refuses, the pages simply stay resident.
  if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) != 0) return 0;
  return end - begin;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path) {
  auto f = SafeTensorsFile::open(path);
  std::map<std::string, Tensor> out;
  for (const auto& name : f->names()) out[name] = f->get(name);
  return out;
}

// ---------------------------------------------------------------------------------------------
// WeightStore

namespace {

std::shared_ptr<std::map<std::string, std::shared_ptr<SafeTensorsFile>>> index_single(
    const std::shared_ptr<SafeTensorsFile>& f) {
  auto m = std::make_shared<std::map<std::string, std::shared_ptr<SafeTensorsFile>>>();
  for (const auto& n : f->names()) (*m)[n] = f;
  return m;
}

// model.safetensors.index.json as transformers writes it: {"metadata": {...}, "weight_map":
// {tensor: shard file name}}, shard names relative to the index's folder.
std::shared_ptr<std::map<std::string, std::shared_ptr<SafeTensorsFile>>> index_sharded(
    const std::string& index_path) {
  JsonConfig idx = JsonConfig::load(index_path);
  JsonConfig wm = idx.sub("weight_map");
  const fs::path folder = fs::path(index_path).parent_path();
  std::map<std::string, std::shared_ptr<SafeTensorsFile>> shards;  // opened once each
  auto m = std::make_shared<std::map<std::string, std::shared_ptr<SafeTensorsFile>>>();
  for (const auto& name : wm.keys()) {
    const std::string shard = wm.req<std::string>(name);
    const fs::path rel(shard);
    // An index must not reach outside its snapshot folder.
    bool escapes = rel.empty() || rel.is_absolute();
    for (const auto& part : rel) escapes = escapes || part == "..";
    MG_CHECK(!escapes, "index ", index_path, ": shard name '", shard, "' for tensor '", name,
             "' is not a file name inside the index's folder");
    auto it = shards.find(shard);
    if (it == shards.end()) it = shards.emplace(shard, SafeTensorsFile::open((folder / rel).string())).first;
    MG_CHECK(it->second->has(name), "tensor '", name, "' is listed in ", index_path, " as stored in ",
             it->second->path(), " but that shard does not contain it");
    (*m)[name] = it->second;
  }
  return m;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

WeightStore WeightStore::open(const std::string& path) {
  WeightStore ws;
  ws.source_ = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    const fs::path index = dir / "model.safetensors.index.json";
    const fs::path single = dir / "model.safetensors";
    if (fs::exists(index, ec)) {
      ws.by_name_ = index_sharded(index.string());
    } else if (fs::exists(single, ec)) {
      ws.by_name_ = index_single(SafeTensorsFile::open(single.string()));
    } else {
      throw Error(strcat("checkpoint folder ", path,
                         " holds neither model.safetensors nor model.safetensors.index.json"));
    }
  } else if (ends_with(path, ".json")) {
    ws.by_name_ = index_sharded(path);
  } else {
    ws.by_name_ = index_single(SafeTensorsFile::open(path));
  }
  return ws;
}

WeightStore WeightStore::with_prefix(const std::string& prefix) const {
  WeightStore ws = *this;
  ws.prefix_ = prefix_ + prefix;
  return ws;
}

WeightStore WeightStore::with_replaced(const std::map<std::string, Tensor>& tensors) const {
  auto all = std::make_shared<std::map<std::string, Tensor>>(replaced_ ? *replaced_ : std::map<std::string, Tensor>{});
  for (const auto& [name, t] : tensors) {
    MG_CHECK(has(name), "cannot replace tensor '", prefix_ + name, "': ", source_, " has no such tensor");
    (*all)[prefix_ + name] = t;
  }
  WeightStore ws = *this;
  ws.replaced_ = std::move(all);
  return ws;
}

bool WeightStore::has(const std::string& name) const {
  return by_name_ && by_name_->count(prefix_ + name) != 0;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  if (!by_name_) return out;
  for (auto it = by_name_->lower_bound(prefix_); it != by_name_->end(); ++it) {
    if (it->first.compare(0, prefix_.size(), prefix_) != 0) break;  // map order: prefix block ends
    out.push_back(it->first.substr(prefix_.size()));
  }
  return out;
}

Tensor WeightStore::get(const std::string& name) const {
  const std::string full = prefix_ + name;
  MG_CHECK(by_name_ != nullptr, "tensor '", full, "' requested from a WeightStore that was never opened");
  if (replaced_) {
    auto r = replaced_->find(full);
    if (r != replaced_->end()) return r->second;
  }
  auto it = by_name_->find(full);
  if (it == by_name_->end()) {
    // Cheap hints for the common mistakes: a wrong or missing prefix ("audio_encoder." vs none),
    // i.e. a stored name that ends with the requested one, or the other way round.
    std::string hint;
    int shown = 0;
    for (const auto& kv : *by_name_) {
      const std::string& s = kv.first;
      if (s == name || ends_with(s, "." + name) || ends_with(full, "." + s)) {
        hint += (shown ? "', '" : "; did you mean '") + s;
        if (++shown == 3) break;
      }
    }
    if (shown) hint += "'?";
    throw Error(strcat("tensor '", full, "' not found in ", source_, hint));
  }
  return it->second->get(full);
}

uint64_t WeightStore::release(const std::string& name) const {
  MG_CHECK(by_name_ != nullptr, "tensor '", prefix_ + name, "' released from a WeightStore that was never opened");
  auto it = by_name_->find(prefix_ + name);
  MG_CHECK(it != by_name_->end(), "cannot release tensor '", prefix_ + name, "': ", source_, " has no such tensor");
  return it->second->release(prefix_ + name);
}

namespace {

// The index of the first NaN or infinity among n IEEE values whose exponent bits are `mask`, or
// -1: without its sign bit, a value is not finite exactly when it is >= mask (exponent all ones).
// Blocks of 4096 are first reduced with a branch-free max, which vectorises (about twice the speed
// of a compare-and-or; the scan runs at memory speed).
template <typename U>
int64_t first_non_finite(const U* p, int64_t n, U mask) {
  constexpr int64_t kBlock = 4096;
  const U magnitude = U(U(~U(0)) >> 1);
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t i1 = std::min(n, i0 + kBlock);
    U top = 0;
    for (int64_t i = i0; i < i1; ++i) top = std::max<U>(top, U(p[i] & magnitude));
    if (top >= mask)
      for (int64_t i = i0; i < i1; ++i)
        if (U(p[i] & magnitude) >= mask) return i;
  }
  return -1;
}

}  // namespace

void check_weight_finite(const Tensor& t, const std::string& name, const std::string& source) {
  int64_t at = -1;
  const int64_t n = t.numel();
  if (t.dtype == DType::F32) at = first_non_finite(static_cast<const uint32_t*>(t.data), n, uint32_t(0x7f800000u));
  else if (t.dtype == DType::F16) at = first_non_finite(static_cast<const uint16_t*>(t.data), n, uint16_t(0x7c00u));
  else if (t.dtype == DType::BF16) at = first_non_finite(static_cast<const uint16_t*>(t.data), n, uint16_t(0x7f80u));
  if (at < 0) return;
  const float v = t.reshape({n}).slice0(at, 1).to_vector()[0];
  throw Error(strcat("tensor '", name, "' in ", source, " holds ", v, " at element ", at,
                     ": the weights are damaged (or were saved from a diverged training); download the model again"));
}

Tensor WeightStore::get(const std::string& name, const Shape& expected) const {
  Tensor t = get(name);
  MG_CHECK(t.shape == expected, "tensor '", prefix_ + name, "' in ", source_, ": expected shape ",
           shape_str(expected), ", found ", shape_str(t.shape));
  if (t.device == Device::CPU) check_weight_finite(t, prefix_ + name, source_);  // once per tensor a loader reads
  return t;
}

}  // namespace mg
