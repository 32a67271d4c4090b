// Random-weight model snapshots from a small manifest, so that a full-size model (2.2 GB for
// musicgen-small) can be made wherever it is needed (a GPU machine with no network) from a file of
// a few tens of KB that travels with the source.
//
// A manifest (JSON) holds what a Hugging Face snapshot folder holds, minus the weights' values:
//   "text_files":     every small text file of the folder, verbatim (config.json, ...)
//   "tokenizer_file": the SentencePiece model's name ("spiece.model"), binary: `make` copies one
//                     given on its command line instead of carrying it
//   "omitted_files":  any other file that is neither text under 1 MB nor the weights
//   "metadata":       the safetensors header's __metadata__
//   "tensors":        name, dtype and shape of every tensor of model.safetensors, in file order
// Values are then filled deterministically from (seed, tensor name, element index) by the rules of
// fill_rule_for() below: finite activations through the whole model, not realism.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mgtools {

struct ManifestTensor {
  std::string name;
  std::string dtype;  // safetensors spelling: "F32", "F16", "BF16", "I32", "I64"
  std::vector<int64_t> shape;
};

struct Manifest {
  std::string source;                                     // the described folder's name
  std::vector<std::pair<std::string, std::string>> text_files;  // file name -> contents
  std::string tokenizer_file;                             // "" when the snapshot has none
  std::vector<std::string> omitted_files;
  nlohmann::json metadata = nlohmann::json::object();
  std::vector<ManifestTensor> tensors;
};

// Reads SNAPSHOT_DIR (model.safetensors + its small files). Throws mg::Error naming the problem.
Manifest describe_snapshot(const std::string& snapshot_dir);
// One tensor per line, so that a manifest diffs well under git.
std::string manifest_to_json(const Manifest& m);
Manifest parse_manifest(const std::string& json_text, const std::string& where);
Manifest read_manifest(const std::string& path);

// How one tensor's values are made (see fill_rule_for).
struct FillRule {
  enum Kind { Uniform, Constant, RowNormOf } kind = Uniform;
  std::string key;     // Uniform: the name whose random stream is used; RowNormOf: the weight_v tensor
  double bound = 0;    // Uniform: values in [-bound, bound)
  double value = 0;    // Constant
};
// The rule for a tensor of `m` (the manifest is needed for weight_g, whose values are the row norms
// of its weight_v, so that the folded weight g * v / |v| is v itself).
FillRule fill_rule_for(const Manifest& m, const ManifestTensor& t);

struct MakeOptions {
  uint64_t seed = 0;
  int threads = 0;            // <= 0: all hardware threads
  std::string spiece_path;    // copied as the manifest's tokenizer_file when it names one
};
// Writes the text files, the tokenizer and model.safetensors into out_dir (created if needed).
// Returns the bytes written for the weights.
uint64_t make_snapshot(const Manifest& m, const std::string& out_dir, const MakeOptions& opt);

}  // namespace mgtools
