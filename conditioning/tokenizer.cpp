#include "conditioning/tokenizer.h"

#include <filesystem>

#include <sentencepiece_processor.h>

#include "kernels/common.h"

namespace mg {

T5Tokenizer::~T5Tokenizer() = default;

std::unique_ptr<T5Tokenizer> T5Tokenizer::load(const std::string& path, int eos_id) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "spiece.model").string();
  MG_CHECK(std::filesystem::exists(file), "SentencePiece model not found: ", file,
           " (a MusicGen snapshot folder holds spiece.model next to config.json)");
  std::unique_ptr<T5Tokenizer> t(new T5Tokenizer());
  t->sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = t->sp_->Load(file);
  MG_CHECK(status.ok(), "cannot load SentencePiece model ", file, ": ", status.ToString());
  t->eos_id_ = eos_id;
  return t;
}

std::vector<int> T5Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  MG_CHECK(status.ok(), "tokenizing the prompt failed: ", status.ToString());
  ids.push_back(eos_id_);
  return ids;
}

int T5Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

}  // namespace mg
