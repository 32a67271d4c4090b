// The T5 tokenizer: SentencePiece over spiece.model, then </s> appended (no BOS), exactly as HF's
// T5Tokenizer and audiocraft's T5Conditioner produce ids for one prompt.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace mg {

// T5's tokenizer length (model_max_length of t5-base, the prompt length MusicGen was trained
// with), </s> included; and a byte bound checked before tokenizing (512 tokens of text are a few
// KB: no real prompt comes near it).
constexpr int kMaxPromptTokens = 512;
constexpr size_t kMaxPromptBytes = 16384;

// The byte offset of the first byte that does not belong to a valid UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF included), or std::string::npos.
size_t first_invalid_utf8(const std::string& text);

class T5Tokenizer {
 public:
  // `path`: spiece.model, or a snapshot folder holding one.
  static std::unique_ptr<T5Tokenizer> load(const std::string& path, int eos_id = 1);
  ~T5Tokenizer();

  // Token ids of `text` followed by </s>. The empty prompt gives just [</s>]. Refused with an
  // mg::Error saying why and by how much: text that is not UTF-8, text over kMaxPromptBytes
  // (before tokenizing it), and more than kMaxPromptTokens ids (docs/LIMITS.md): the text
  // encoder's attention grows with the square of the length, and a T5 tokenizer stops at 512.
  std::vector<int> encode(const std::string& text) const;
  int vocab_size() const;

 private:
  T5Tokenizer() = default;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int eos_id_ = 1;
};

}  // namespace mg
