// make-random-model: full-size random-weight model snapshots from small manifests, for machines
// that cannot download or convert a model (a GPU box without network access: tools/gpu-check.sh).
//
//   make-random-model describe SNAPSHOT_DIR OUT.json
//       the folder's small text files verbatim, its tokenizer's name, and every tensor's name,
//       dtype and shape (the committed ones: tools/make-random-model/manifests/)
//   make-random-model make MANIFEST.json OUT_DIR [--seed N] [--spiece PATH] [--threads T]
//       the snapshot, with deterministic values (random_model.h says which); the tokenizer is
//       copied from --spiece (default: the tiny test models' spiece.model, whose 384 pieces fit
//       any T5 vocabulary)
//
// A developer tool over weights/ (like bench-ops), so it links the static library.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "random_model.h"

namespace {

constexpr const char* kDefaultSpiece = "tests/data/models/musicgen_tiny/spiece.model";

// The default tokenizer relative to the working directory (the checkout root, as gpu-check.sh and
// the tests run), else in the source tree this was built from.
std::string default_spiece() {
  if (std::filesystem::exists(kDefaultSpiece)) return kDefaultSpiece;
  return std::string(MG_SOURCE_DIR) + "/" + kDefaultSpiece;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Random-weight model snapshots from manifests (name, dtype, shape of every tensor)"};
  app.require_subcommand(1);
  std::string snapshot, out_json, manifest, out_dir, spiece = default_spiece();
  uint64_t seed = 0;
  int threads = 0;
  auto* describe = app.add_subcommand("describe", "Write the manifest of a snapshot folder");
  describe->add_option("SNAPSHOT_DIR", snapshot, "Folder with model.safetensors")->required();
  describe->add_option("OUT_JSON", out_json, "Manifest to write")->required();
  auto* make = app.add_subcommand("make", "Write a snapshot with random weights from a manifest");
  make->add_option("MANIFEST", manifest, "Manifest (.json)")->required();
  make->add_option("OUT_DIR", out_dir, "Folder to write (created; files in it are replaced)")->required();
  make->add_option("--seed", seed, "Seed of the values")->capture_default_str();
  make->add_option("--spiece", spiece, "SentencePiece model copied as the tokenizer")->capture_default_str();
  make->add_option("--threads", threads, "Threads (0: all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    if (*describe) {
      const mgtools::Manifest m = mgtools::describe_snapshot(snapshot);
      std::ofstream f(out_json, std::ios::binary);
      if (!(f << mgtools::manifest_to_json(m))) throw std::runtime_error("cannot write " + out_json);
      std::printf("%s: %zu tensors, %zu text files%s%s\n", out_json.c_str(), m.tensors.size(), m.text_files.size(),
                  m.tokenizer_file.empty() ? "" : ", tokenizer ", m.tokenizer_file.c_str());
      for (const auto& o : m.omitted_files) std::printf("  not described (binary or >= 1 MB): %s\n", o.c_str());
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      const mgtools::Manifest m = mgtools::read_manifest(manifest);
      mgtools::MakeOptions opt;
      opt.seed = seed;
      opt.threads = threads;
      opt.spiece_path = spiece;
      const uint64_t bytes = mgtools::make_snapshot(m, out_dir, opt);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%s: %zu tensors, %.3f GB of weights in %.2f s (%.2f GB/s)\n", out_dir.c_str(), m.tensors.size(),
                  double(bytes) / 1e9, s, double(bytes) / 1e9 / s);
      for (const auto& o : m.omitted_files)
        std::printf("  warning: %s was not described, so it is not in %s\n", o.c_str(), out_dir.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make-random-model: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
