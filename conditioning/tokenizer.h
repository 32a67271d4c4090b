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

class T5Tokenizer {
 public:
  // `path`: spiece.model, or a snapshot folder holding one.
  static std::unique_ptr<T5Tokenizer> load(const std::string& path, int eos_id = 1);
  ~T5Tokenizer();

  // Token ids of `text` followed by </s>. The empty prompt gives just [</s>].
  std::vector<int> encode(const std::string& text) const;
  int vocab_size() const;

 private:
  T5Tokenizer() = default;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int eos_id_ = 1;
};

}  // namespace mg
