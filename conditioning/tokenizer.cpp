#include "conditioning/tokenizer.h"

#include <cstdint>
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
  // SentencePiece's own text names its source lines ("./src/sentencepiece_processor.cc(1101) ..."):
  // say first what the file is and what to do, and keep its text for a bug report.
  MG_CHECK(status.ok(), "cannot load the tokenizer ", file, ": it is not a valid SentencePiece model (damaged or "
           "truncated download?); download the snapshot's spiece.model again (SentencePiece: ", status.ToString(), ")");
  t->eos_id_ = eos_id;
  return t;
}

size_t first_invalid_utf8(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) len = 1, cp = c;
    else if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

std::vector<int> T5Tokenizer::encode(const std::string& text) const {
  MG_CHECK(text.size() <= kMaxPromptBytes, "the prompt is too long: ", text.size(), " bytes, at most ",
           kMaxPromptBytes, " are read (and at most ", kMaxPromptTokens,
           " tokens used: about 300 words); shorten the prompt");
  const size_t bad = first_invalid_utf8(text);
  MG_CHECK(bad == std::string::npos, "the prompt is not valid UTF-8 (byte ", bad,
           " does not start a valid character); pass the text as UTF-8");
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  MG_CHECK(status.ok(), "tokenizing the prompt failed: ", status.ToString());
  ids.push_back(eos_id_);
  MG_CHECK(ids.size() <= size_t(kMaxPromptTokens), "the prompt is too long: ", ids.size(),
           " tokens (</s> included), the text encoder takes at most ", kMaxPromptTokens,
           " (T5's tokenizer length, about 300 words); shorten the prompt");
  return ids;
}

int T5Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

}  // namespace mg
