#include "random_model.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include "conditioning/tokenizer.h"
#include "kernels/common.h"
#include "kernels/tensor.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace mgtools {
namespace {

constexpr const char* kManifestFormat = "libmusicgen random-model manifest 1";
constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kTokenizerFile = "spiece.model";
constexpr uintmax_t kMaxTextFile = 1u << 20;

const char* dtype_spelling(mg::DType t) {
  switch (t) {
    case mg::DType::F32: return "F32";
    case mg::DType::F16: return "F16";
    case mg::DType::BF16: return "BF16";
    case mg::DType::I32: return "I32";
    case mg::DType::I64: return "I64";
  }
  return "?";
}

size_t dtype_bytes(const std::string& d, const std::string& tensor) {
  if (d == "F32" || d == "I32") return 4;
  if (d == "F16" || d == "BF16") return 2;
  if (d == "I64") return 8;
  throw mg::Error(mg::strcat("tensor '", tensor, "': dtype ", d, " is not one make-random-model writes"));
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MG_CHECK(f, "cannot read ", path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Text that can go into JSON verbatim: valid UTF-8 without NUL bytes (nlohmann refuses invalid
// UTF-8 when dumping, and a binary file is no use as a string anyway).
bool is_utf8_text(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    const int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (extra < 0 || (extra > 0 && i + size_t(extra) >= s.size())) return false;
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + size_t(k)]) >> 6) != 2) return false;
    i += size_t(extra) + 1;
  }
  return true;
}

// ---- deterministic values: a counter-based generator, so any thread can make any element ----

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Element i of the stream `stream` (seed and name mixed), uniform in [-bound, bound).
inline float uniform_at(uint64_t stream, int64_t i, double bound) {
  const uint64_t r = splitmix64(stream ^ (uint64_t(i) * 0xd1342543de82ef95ull));
  const double u = double(r >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
  return float((2.0 * u - 1.0) * bound);
}

uint64_t stream_of(uint64_t seed, const std::string& key) { return splitmix64(seed) ^ fnv1a(key); }

double fan_in_bound(const std::vector<int64_t>& shape) {
  int64_t fan_in = 1;
  for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
  return 1.0 / std::sqrt(double(std::max<int64_t>(fan_in, 1)));
}

const ManifestTensor* find_tensor(const Manifest& m, const std::string& name) {
  for (const auto& t : m.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

// A weight_g's weight_v under either checkpoint spelling ("" when `name` is no weight_g).
std::string weight_v_of(const std::string& name) {
  static const std::pair<const char*, const char*> spellings[] = {
      {".weight_g", ".weight_v"},
      {".parametrizations.weight.original0", ".parametrizations.weight.original1"}};
  for (const auto& [g, v] : spellings)
    if (ends_with(name, g)) return name.substr(0, name.size() - std::strlen(g)) + v;
  return "";
}

}  // namespace

// ---- manifests ----

Manifest describe_snapshot(const std::string& dir) {
  const fs::path root(dir);
  MG_CHECK(fs::is_directory(root), "describe: ", dir, " is not a folder");
  const fs::path weights = root / kWeightsFile;
  MG_CHECK(fs::exists(weights), "describe: ", weights.string(),
           " is missing (only single-file snapshots are described)");
  Manifest m;
  m.source = fs::absolute(root).lexically_normal().filename().string();
  if (m.source.empty()) m.source = fs::absolute(root).lexically_normal().parent_path().filename().string();

  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    const std::string name = p.filename().string();
    if (name == kWeightsFile) continue;
    if (name == kTokenizerFile) {
      m.tokenizer_file = name;
      continue;
    }
    if (fs::file_size(p) < kMaxTextFile) {
      std::string text = read_file(p.string());
      if (is_utf8_text(text)) {
        m.text_files.emplace_back(name, std::move(text));
        continue;
      }
    }
    m.omitted_files.push_back(name);
  }

  const auto st = mg::SafeTensorsFile::open(weights.string());
  for (const auto& [k, v] : st->metadata()) m.metadata[k] = v;
  std::vector<mg::TensorInfo> infos;
  for (const auto& name : st->names()) infos.push_back(st->info(name));
  // File order (by data offset), as the checkpoint was written.
  std::sort(infos.begin(), infos.end(), [](const auto& a, const auto& b) { return a.begin < b.begin; });
  for (const auto& i : infos) m.tensors.push_back({i.name, dtype_spelling(i.dtype), i.shape});
  return m;
}

std::string manifest_to_json(const Manifest& m) {
  json files = json::object();
  for (const auto& [name, text] : m.text_files) files[name] = text;
  std::ostringstream o;
  o << "{\n";
  o << "  \"format\": " << json(kManifestFormat).dump() << ",\n";
  o << "  \"source\": " << json(m.source).dump() << ",\n";
  o << "  \"weights_file\": " << json(kWeightsFile).dump() << ",\n";
  o << "  \"tokenizer_file\": " << (m.tokenizer_file.empty() ? json(nullptr) : json(m.tokenizer_file)).dump()
    << ",\n";
  o << "  \"omitted_files\": " << json(m.omitted_files).dump() << ",\n";
  o << "  \"metadata\": " << m.metadata.dump() << ",\n";
  std::string files_text = files.dump(2);  // nested one level: indent its lines by two more spaces
  for (size_t p = files_text.find('\n'); p != std::string::npos; p = files_text.find('\n', p + 1))
    files_text.insert(p + 1, "  ");
  o << "  \"text_files\": " << files_text << ",\n";
  o << "  \"tensors\": [\n";
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const auto& t = m.tensors[i];
    o << "    " << json{{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}}.dump()
      << (i + 1 < m.tensors.size() ? ",\n" : "\n");
  }
  o << "  ]\n}\n";
  return o.str();
}

Manifest parse_manifest(const std::string& text, const std::string& where) {
  try {
    const json j = json::parse(text);
    MG_CHECK(j.value("format", std::string()) == kManifestFormat, where, ": not a make-random-model manifest (format '",
             j.value("format", std::string()), "', expected '", kManifestFormat, "')");
    Manifest m;
    m.source = j.value("source", std::string());
    if (j.contains("tokenizer_file") && !j["tokenizer_file"].is_null())
      m.tokenizer_file = j["tokenizer_file"].get<std::string>();
    m.omitted_files = j.value("omitted_files", std::vector<std::string>());
    m.metadata = j.value("metadata", json::object());
    for (const auto& [name, t] : j.at("text_files").items()) m.text_files.emplace_back(name, t.get<std::string>());
    for (const auto& t : j.at("tensors")) {
      ManifestTensor mt{t.at("name").get<std::string>(), t.at("dtype").get<std::string>(),
                        t.at("shape").get<std::vector<int64_t>>()};
      for (int64_t d : mt.shape) MG_CHECK(d >= 0, where, ": tensor '", mt.name, "' has a negative dimension");
      dtype_bytes(mt.dtype, mt.name);
      m.tensors.push_back(std::move(mt));
    }
    MG_CHECK(!m.tensors.empty(), where, ": the manifest lists no tensors");
    return m;
  } catch (const json::exception& e) {
    throw mg::Error(mg::strcat(where, ": bad manifest: ", e.what()));
  }
}

Manifest read_manifest(const std::string& path) { return parse_manifest(read_file(path), path); }

// ---- fill rules ----

FillRule fill_rule_for(const Manifest& m, const ManifestTensor& t) {
  const std::string& n = t.name;
  auto constant = [](double v) { return FillRule{FillRule::Constant, "", 0, v}; };
  // EnCodec codebooks: `embed` is what is used; embed_avg / cluster_size is what training keeps,
  // so they are made consistent with it (cluster sizes 1, embed_avg = embed) and `inited` true.
  if (ends_with(n, ".inited") || ends_with(n, ".cluster_size")) return constant(1);
  if (ends_with(n, ".embed_avg"))
    return {FillRule::Uniform, n.substr(0, n.size() - 4), fan_in_bound(t.shape), 0};
  if (t.dtype == "I32" || t.dtype == "I64") return constant(0);
  // Weight norm: g = |v| per output row, so the folded weight is v, uniform in +-1/sqrt(fan_in).
  const std::string v = weight_v_of(n);
  if (!v.empty()) {
    MG_CHECK(find_tensor(m, v) != nullptr, "tensor '", n, "' is a weight-norm g but '", v,
             "' is not in the manifest");
    return {FillRule::RowNormOf, v, 0, 0};
  }
  // Biases (nn.Linear/Conv "bias", LSTM "bias_ih_l0" / "bias_hh_l0") start at zero.
  const std::string last = n.substr(n.rfind('.') + 1);
  if (last == "bias" || last.rfind("bias_", 0) == 0) return constant(0);
  // Norm gains (LayerNorm, T5's RMS layer_norm): 1-D ".weight" tensors.
  if (t.shape.size() <= 1) return constant(last == "weight" ? 1 : 0);
  return {FillRule::Uniform, n, fan_in_bound(t.shape), 0};
}

// ---- writing ----

namespace {

// A run of elements of one tensor, made and written by one thread.
struct Chunk {
  size_t tensor;
  int64_t begin, end;  // element range
};

void store(const std::string& dtype, const float* v, int64_t n, std::vector<char>& out) {
  out.resize(size_t(n) * dtype_bytes(dtype, ""));
  if (dtype == "F32") {
    std::memcpy(out.data(), v, size_t(n) * 4);
  } else if (dtype == "F16" || dtype == "BF16") {
    auto* o = reinterpret_cast<uint16_t*>(out.data());
    for (int64_t i = 0; i < n; ++i) o[i] = dtype == "F16" ? mg::f32_to_f16(v[i]) : mg::f32_to_bf16(v[i]);
  } else if (dtype == "I32") {
    auto* o = reinterpret_cast<int32_t*>(out.data());
    for (int64_t i = 0; i < n; ++i) o[i] = int32_t(v[i]);
  } else {
    auto* o = reinterpret_cast<int64_t*>(out.data());
    for (int64_t i = 0; i < n; ++i) o[i] = int64_t(v[i]);
  }
}

void pwrite_all(int fd, const char* p, size_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, off_t(offset));
    MG_CHECK(w > 0, "cannot write ", path, ": ", std::strerror(errno));
    p += w;
    n -= size_t(w);
    offset += uint64_t(w);
  }
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  MG_CHECK(f << text, "cannot write ", p.string());
}

void check_tokenizer_fits(const Manifest& m, const std::string& spiece) {
  // T5's ids index text_encoder.shared.weight: a tokenizer with more pieces would make ids the
  // embedding refuses.
  for (const auto& t : m.tensors)
    if (ends_with(t.name, "shared.weight") && t.shape.size() == 2) {
      const int vocab = mg::T5Tokenizer::load(spiece)->vocab_size();
      MG_CHECK(vocab <= t.shape[0], "tokenizer ", spiece, " has ", vocab, " pieces but '", t.name, "' has only ",
               t.shape[0], " rows");
    }
}

}  // namespace

uint64_t make_snapshot(const Manifest& m, const std::string& out_dir, const MakeOptions& opt) {
  const fs::path root(out_dir);
  fs::create_directories(root);
  for (const auto& [name, text] : m.text_files) write_text(root / name, text);
  if (!m.tokenizer_file.empty()) {
    MG_CHECK(!opt.spiece_path.empty() && fs::exists(opt.spiece_path), "the manifest names a tokenizer (",
             m.tokenizer_file, ") but none was given or found: --spiece PATH (", opt.spiece_path, ")");
    check_tokenizer_fits(m, opt.spiece_path);
    fs::copy_file(opt.spiece_path, root / m.tokenizer_file, fs::copy_options::overwrite_existing);
  }

  // Header: every tensor with its byte range, in manifest order, then spaces up to a multiple of
  // 8 bytes so that the data section (and every f32 tensor in it) starts 8-byte aligned.
  std::vector<FillRule> rules;
  std::vector<uint64_t> offsets;
  json header = json::object();
  if (!m.metadata.empty()) header["__metadata__"] = m.metadata;
  uint64_t pos = 0;
  for (const auto& t : m.tensors) {
    rules.push_back(fill_rule_for(m, t));
    const uint64_t bytes = uint64_t(numel(t.shape)) * dtype_bytes(t.dtype, t.name);
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {pos, pos + bytes}}};
    offsets.push_back(pos);
    pos += bytes;
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');
  const uint64_t data_start = 8 + head.size(), total = data_start + pos;

  const fs::path final_path = root / kWeightsFile, tmp_path = root / (std::string(kWeightsFile) + ".tmp");
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  MG_CHECK(fd >= 0, "cannot create ", tmp_path.string(), ": ", std::strerror(errno));
  try {
    MG_CHECK(::ftruncate(fd, off_t(total)) == 0, "cannot size ", tmp_path.string(), " to ", total, " bytes: ",
             std::strerror(errno));
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = char((uint64_t(head.size()) >> (8 * i)) & 0xff);  // little endian
    pwrite_all(fd, len, 8, 0, tmp_path.string());
    pwrite_all(fd, head.data(), head.size(), 8, tmp_path.string());

    constexpr int64_t kChunk = 1 << 20;  // elements: 4 MB of f32, small enough to balance the threads
    std::vector<Chunk> chunks;
    for (size_t i = 0; i < m.tensors.size(); ++i) {
      const int64_t n = numel(m.tensors[i].shape);
      for (int64_t b = 0; b < n; b += kChunk) chunks.push_back({i, b, std::min(n, b + kChunk)});
    }
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::string error;
    auto work = [&] {
      std::vector<float> vals;
      std::vector<char> bytes;
      try {
        for (size_t c = next++; c < chunks.size() && !failed; c = next++) {
          const Chunk& ch = chunks[c];
          const ManifestTensor& t = m.tensors[ch.tensor];
          const FillRule& r = rules[ch.tensor];
          vals.resize(size_t(ch.end - ch.begin));
          if (r.kind == FillRule::Constant) {
            std::fill(vals.begin(), vals.end(), float(r.value));
          } else if (r.kind == FillRule::Uniform) {
            const uint64_t s = stream_of(opt.seed, r.key);
            for (int64_t i = ch.begin; i < ch.end; ++i) vals[size_t(i - ch.begin)] = uniform_at(s, i, r.bound);
          } else {  // g[row] = |v[row, ...]|, v remade from its own stream
            const ManifestTensor& v = *find_tensor(m, r.key);
            const FillRule vr = fill_rule_for(m, v);
            MG_CHECK(vr.kind == FillRule::Uniform && !v.shape.empty() && v.shape[0] == numel(t.shape),
                     "tensor '", t.name, "' does not match its weight_v '", v.name, "'");
            const uint64_t s = stream_of(opt.seed, vr.key);
            const int64_t per = numel(v.shape) / v.shape[0];
            for (int64_t row = ch.begin; row < ch.end; ++row) {
              double ss = 0;
              for (int64_t j = 0; j < per; ++j) {
                const double x = uniform_at(s, row * per + j, vr.bound);
                ss += x * x;
              }
              vals[size_t(row - ch.begin)] = float(std::sqrt(ss));
            }
          }
          store(t.dtype, vals.data(), ch.end - ch.begin, bytes);
          pwrite_all(fd, bytes.data(), bytes.size(),
                     data_start + offsets[ch.tensor] + uint64_t(ch.begin) * dtype_bytes(t.dtype, t.name),
                     tmp_path.string());
        }
      } catch (const std::exception& e) {
        if (!failed.exchange(true)) error = e.what();
      }
    };
    const int threads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back(work);
    for (auto& th : pool) th.join();
    MG_CHECK(!failed, error);
    MG_CHECK(::close(fd) == 0, "cannot close ", tmp_path.string(), ": ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    fs::remove(tmp_path);
    throw;
  }
  fs::rename(tmp_path, final_path);
  return total;
}

}  // namespace mgtools
