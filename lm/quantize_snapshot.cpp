#include "lm/quantize_snapshot.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <vector>

#include "codec/atomic_file.h"
#include "kernels/quant.h"
#include "weights/safetensors.h"
#include "weights/safetensors_writer.h"

namespace fs = std::filesystem;

namespace mg {

bool is_quantizable_decoder_weight(const std::string& name) {
  static const std::regex re(
      R"(decoder\.(lm_heads\.\d+|model\.decoder\.layers\.\d+\.((self_attn|encoder_attn)\.(q|k|v|out)_proj|fc1|fc2))\.weight)");
  return std::regex_match(name, re);
}

namespace {

const char* safetensors_dtype(DType t) {
  const char* name = safetensors_dtype_name(t);
  return name ? name : "U8";  // quantized blocks
}

// One tensor of the output file: where it comes from and what it becomes.
struct OutTensor {
  std::string name;
  Tensor src;
  DType dtype;     // src.dtype, or the scheme when quantized
  size_t bytes;    // in the file
  size_t align;    // of its element type: the file orders tensors by it, largest first
};

std::vector<OutTensor> plan(const WeightStore& w, DType scheme) {
  std::vector<OutTensor> out;
  for (const std::string& name : w.names()) {
    Tensor t = w.get(name);
    MG_CHECK(!dtype_is_quantized(t.dtype), "quantize: ", w.source(), " is already a quantized snapshot (",
             dtype_name(t.dtype), " tensor '", name, "'); quantize an f32, f16 or bf16 snapshot instead");
    const bool q = is_quantizable_decoder_weight(name) && t.ndim() == 2 && t.cols() % kQuantBlock == 0 &&
                   t.cols() > 0 && t.dtype != DType::I32 && t.dtype != DType::I64;
    const DType dt = q ? scheme : t.dtype;
    out.push_back({name, t, dt, dtype_nbytes(dt, t.numel()), q ? 1 : dtype_size(t.dtype)});
  }
  // Largest alignment first: every tensor starts aligned for its element type (the data section
  // starts 8-byte aligned), so loading maps them all without a copy.
  std::stable_sort(out.begin(), out.end(), [](const OutTensor& a, const OutTensor& b) { return a.align > b.align; });
  return out;
}

std::string header_json(const std::vector<OutTensor>& tensors, DType scheme) {
  nlohmann::json h;
  h["__metadata__"] = {{"format", "pt"},
                       {kQuantizationKey, dtype_name(scheme)},
                       {"musicgen.quantization.layout",
                        "U8 [rows, K/32*block_bytes]: per row K/32 blocks, each an f16 scale then the values (q8_0: 32 "
                        "int8, 34 bytes; q4_0: 16 bytes of nibbles, low = value j, high = value j+16, 18 bytes)"}};
  size_t off = 0;
  for (const OutTensor& t : tensors) {
    Shape shape = t.src.shape;
    if (dtype_is_quantized(t.dtype)) shape = {t.src.dim(0), int64_t(dtype_nbytes(t.dtype, t.src.cols()))};
    h[t.name] = {{"dtype", safetensors_dtype(t.dtype)}, {"shape", shape}, {"data_offsets", {off, off + t.bytes}}};
    off += t.bytes;
  }
  std::string s = h.dump();
  s.append((8 - s.size() % 8) % 8, ' ');  // 8 + header is a multiple of 8: the data starts aligned
  return s;
}

void write_model(const WeightStore& w, DType scheme, const std::string& path) {
  const std::vector<OutTensor> tensors = plan(w, scheme);
  const std::string header = header_json(tensors, scheme);
  AtomicFile f(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  f.write_all(len, 8);
  f.write_all(header.data(), header.size());
  for (const OutTensor& t : tensors) {
    if (dtype_is_quantized(t.dtype)) {
      Tensor q = quantize(t.src, t.dtype);
      f.write_all(q.data, q.nbytes());
    } else {
      f.write_all(t.src.data, t.bytes);
    }
    // Written: its source pages need not stay resident (quantizing musicgen-medium would otherwise
    // end with the whole 8 GB f32 file in this process's memory).
    w.release(t.name);
  }
  f.commit();
}

// Regular files of the source folder other than its weights (config.json, tokenizer, ...).
void copy_other_files(const fs::path& src, const fs::path& dst) {
  for (const fs::directory_entry& e : fs::directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".safetensors" || name == "model.safetensors.index.json") continue;
    fs::copy_file(e.path(), dst / name);
  }
}

}  // namespace

void quantize_snapshot(const std::string& src, const std::string& dst, DType scheme) {
  MG_CHECK(dtype_is_quantized(scheme), "quantize: the scheme must be q8_0 or q4_0, not ", dtype_name(scheme));
  MG_CHECK(fs::is_directory(src), "quantize: source snapshot folder not found: ", src);
  const fs::path out = fs::absolute(fs::path(dst).lexically_normal());
  const fs::path name = out.filename().empty() ? out.parent_path().filename() : out.filename();
  const fs::path parent = out.filename().empty() ? out.parent_path().parent_path() : out.parent_path();
  MG_CHECK(!fs::exists(fs::symlink_status(out)), "quantize: the destination ", dst,
           " already exists; remove it or choose a new folder name");
  MG_CHECK(fs::is_directory(parent), "quantize: the destination's parent folder ", parent.string(), " does not exist");
  WeightStore w = WeightStore::open(src);

  std::string tmpl = (parent / ("." + name.string() + ".musicgen-tmp-XXXXXX")).string();
  MG_CHECK(mkdtemp(tmpl.data()) != nullptr, "quantize: cannot create a temporary folder in ", parent.string(), ": ",
           std::strerror(errno));
  const fs::path tmp = tmpl;
  try {
    // mkdtemp makes it 0700; the snapshot is an ordinary folder (0755, as the umask allows).
    const mode_t mask = ::umask(0);
    ::umask(mask);
    fs::permissions(tmp, static_cast<fs::perms>(0755 & ~mask));
    write_model(w, scheme, (tmp / "model.safetensors").string());
    copy_other_files(src, tmp);
    std::error_code ec;
    fs::rename(tmp, parent / name, ec);
    MG_CHECK(!ec, "quantize: cannot rename ", tmp.string(), " to ", (parent / name).string(), ": ", ec.message());
  } catch (const fs::filesystem_error& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw Error(std::string("quantize: writing ") + dst + " failed: " + e.what());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace mg
