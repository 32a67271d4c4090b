// Loading with conversion (or, for f32 on the CPU, a copy into 2 MiB pages) releases the
// memory-mapped source bytes: a converting load of an f32 snapshot (bf16, q8_0, q4_0) must not keep
// the whole file resident beside what it converted, or musicgen-medium (7.3 GB f32) peaks at file +
// converted size. Residency is read per page from
// /proc/self/pagemap (bit 63: present), which an unprivileged process may read for itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "kernels/ops.h"
#include "lm/transformer.h"
#include "test_util.h"
#include "weights/safetensors.h"
#include "weights/safetensors_writer.h"

namespace {

using mg::DType;
using mg::Tensor;

// Pages of [data, data + bytes) that are wholly inside it, and how many of them are present.
struct Residency {
  int64_t pages = 0, present = 0;
};

Residency residency(const Tensor& t) {
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(t.data) + page - 1) / page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(t.data) + t.nbytes()) / page;
  Residency r;
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return r;
  for (uintptr_t p = b; p < e; ++p) {
    uint64_t entry = 0;
    if (::pread(fd, &entry, sizeof entry, off_t(p * sizeof entry)) != sizeof entry) break;
    ++r.pages;
    r.present += (entry >> 63) & 1;
  }
  ::close(fd);
  return r;
}

bool pagemap_readable() {
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

double touch(const Tensor& t) {  // reads every value: faults the pages in
  double s = 0;
  for (float v : t.to_vector()) s += v;
  return s;
}

void write_file(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors) {
  const std::string bytes = mg::safetensors_bytes(tensors);
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

TEST(WeightRelease, DropsResidentPagesAndKeepsTheBytesReadable) {
  if (!pagemap_readable()) GTEST_SKIP() << "/proc/self/pagemap is not readable here";
  const std::string path = mgtest::test_case_dir() + "/w.safetensors";
  write_file(path, {{"big", mgtest::random_tensor({256, 1024}, 1)}, {"small", mgtest::random_tensor({8}, 2)}});
  const mg::WeightStore w = mg::WeightStore::open(path);
  const Tensor big = w.get("big");
  const double sum = touch(big);
  const Residency before = residency(big);
  ASSERT_GT(before.pages, 200);
  EXPECT_EQ(before.present, before.pages);
  EXPECT_EQ(w.release("big"), uint64_t(before.pages) * uint64_t(::sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(residency(big).present, 0);
  EXPECT_EQ(touch(big), sum);  // read again from the file, the same bytes
  EXPECT_EQ(w.release("small"), 0u);  // no whole page of its own
  EXPECT_NE(mgtest::error_of([&] { w.release("absent"); }).find("no such tensor"), std::string::npos);
}

// A one-layer decoder whose projections span whole pages, as a snapshot holds them.
mg::MusicgenDecoderConfig small_decoder() {
  mg::MusicgenDecoderConfig c;
  c.vocab_size = 63;  // + 1 special token: 64 embedding rows
  c.max_position_embeddings = 16;
  c.num_hidden_layers = 1;
  c.hidden_size = 128;
  c.ffn_dim = 512;
  c.num_attention_heads = 4;
  c.num_codebooks = 2;
  c.pad_token_id = c.bos_token_id = 63;
  return c;
}

std::vector<std::string> linear_names(const mg::MusicgenDecoderConfig& c) {
  std::vector<std::string> out;
  const std::string l = "decoder.model.decoder.layers.0.";
  for (const char* p : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                        "encoder_attn.q_proj", "encoder_attn.k_proj", "encoder_attn.v_proj", "encoder_attn.out_proj",
                        "fc1", "fc2"})
    out.push_back(l + p + ".weight");
  for (int k = 0; k < c.num_codebooks; ++k) out.push_back("decoder.lm_heads." + std::to_string(k) + ".weight");
  return out;
}

std::string write_decoder(const mg::MusicgenDecoderConfig& c) {
  const int64_t D = c.hidden_size, F = c.ffn_dim, V = c.vocab_size;
  std::vector<std::pair<std::string, Tensor>> t;
  uint32_t seed = 10;
  const std::string p = "decoder.model.decoder.";
  for (const std::string& n : linear_names(c)) {
    const bool head = n.find("lm_heads") != std::string::npos;
    const mg::Shape s = head ? mg::Shape{V, D} : n.find("fc1") != std::string::npos ? mg::Shape{F, D}
                                              : n.find("fc2") != std::string::npos ? mg::Shape{D, F}
                                                                                  : mg::Shape{D, D};
    t.push_back({n, mgtest::random_tensor(s, seed++, 0.05f)});
  }
  for (int k = 0; k < c.num_codebooks; ++k)
    t.push_back({p + "embed_tokens." + std::to_string(k) + ".weight", mgtest::random_tensor({V + 1, D}, seed++)});
  for (const char* n : {"self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm"}) {
    t.push_back({p + "layers.0." + n + ".weight", mgtest::random_tensor({D}, seed++)});
    t.push_back({p + "layers.0." + n + ".bias", mgtest::random_tensor({D}, seed++)});
  }
  t.push_back({p + "layer_norm.weight", mgtest::random_tensor({D}, seed++)});
  t.push_back({p + "layer_norm.bias", mgtest::random_tensor({D}, seed++)});
  const std::string path = mgtest::test_case_dir() + "/model.safetensors";
  write_file(path, t);
  return path;
}

// The decoder's linear weights that still have present pages in the mapping after a load, each
// first faulted in.
std::vector<std::string> resident_after_load(DType weights) {
  const mg::MusicgenDecoderConfig c = small_decoder();
  const mg::WeightStore w = mg::WeightStore::open(write_decoder(c));
  for (const std::string& n : linear_names(c)) touch(w.get(n));
  auto be = mg::make_cpu_backend(1);
  const mg::MusicgenDecoder d = mg::load_musicgen_decoder(*be, w, c, /*cross_attention=*/true, weights);
  EXPECT_EQ(d.layers[0].fc1.dtype, weights);
  std::vector<std::string> resident;
  for (const std::string& n : linear_names(c)) {
    const Residency r = residency(w.get(n));
    EXPECT_GT(r.pages, 0) << n;
    if (r.present > 0) resident.push_back(n);
  }
  return resident;
}

TEST(WeightRelease, ConvertingDecoderLoadReleasesEverySourceWeight) {
  if (!pagemap_readable()) GTEST_SKIP() << "/proc/self/pagemap is not readable here";
  for (DType t : {DType::BF16, DType::F16, DType::Q8_0, DType::Q4_0})
    EXPECT_EQ(resident_after_load(t), std::vector<std::string>{}) << mg::dtype_name(t);
}

TEST(WeightRelease, F32DecoderLoadCopiesItsWeightsAndReleasesEverySource) {
  if (!pagemap_readable()) GTEST_SKIP() << "/proc/self/pagemap is not readable here";
  // f32 on the CPU: the mapped views are in 4 KiB page-cache pages, which a decode step streams
  // slower than the backend's 2 MiB pages, so every projection is copied there (the fused ones
  // from their stacked copy) and every source's pages go, as in a converting load.
  EXPECT_EQ(resident_after_load(DType::F32), std::vector<std::string>{});
  const mg::MusicgenDecoderConfig c = small_decoder();
  const mg::WeightStore w = mg::WeightStore::open(write_decoder(c));
  auto be = mg::make_cpu_backend(1);
  const mg::MusicgenDecoder d = mg::load_musicgen_decoder(*be, w, c, /*cross_attention=*/true, DType::F32);
  const Tensor fc1 = w.get("decoder.model.decoder.layers.0.fc1.weight");
  EXPECT_NE(d.layers[0].fc1.data, fc1.data);  // a copy, not the view
  EXPECT_EQ(d.layers[0].fc1.to_vector(), fc1.to_vector());  // with the same bits
}

}  // namespace
