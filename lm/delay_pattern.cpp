#include "lm/delay_pattern.h"

#include <algorithm>

#include "kernels/common.h"

namespace mg {

DelayPattern::DelayPattern(const std::vector<int>& delays, int64_t frames, int special,
                           const std::vector<std::vector<int>>& prompt)
    : delays_(delays), frames_(frames), special_(special) {
  MG_CHECK(!delays.empty() && frames >= 1, "delay pattern: need codebooks and at least one frame");
  const int K = int(delays.size());
  const int max_delay = *std::max_element(delays.begin(), delays.end());
  const int64_t P = prompt.empty() ? 0 : int64_t(prompt[0].size());
  MG_CHECK(prompt.empty() || int(prompt.size()) == K, "delay pattern: prompt has ", prompt.size(), " codebooks, expected ", K);
  MG_CHECK(P <= frames, "delay pattern: a prompt of ", P, " frames is longer than the ", frames, " frames asked for");
  columns_ = frames + max_delay + 1;
  first_ = P + 1;
  seq_.assign(K, std::vector<int>(columns_, -1));
  for (int k = 0; k < K; ++k) {
    MG_CHECK(prompt.empty() || int64_t(prompt[k].size()) == P, "delay pattern: ragged prompt");
    for (int64_t s = 0; s < columns_; ++s) {
      const int64_t t = s - 1 - delays[k];
      if (t < 0 || t >= frames) seq_[k][s] = special;
      else if (t < P) seq_[k][s] = prompt[k][t];
    }
  }
}

void DelayPattern::fill(int64_t s, const std::vector<int>& tokens) {
  MG_CHECK(s >= 0 && s < columns_ && tokens.size() == seq_.size(), "delay pattern: bad fill at column ", s);
  for (size_t k = 0; k < seq_.size(); ++k)
    if (seq_[k][s] == -1) seq_[k][s] = tokens[k];
}

std::vector<int> DelayPattern::column(int64_t s) const {
  std::vector<int> c(seq_.size());
  for (size_t k = 0; k < seq_.size(); ++k) c[k] = seq_[k][s];
  return c;
}

void DelayPattern::copy_to(int32_t* out) const {
  for (size_t k = 0; k < seq_.size(); ++k)
    for (int64_t s = 0; s < columns_; ++s) out[int64_t(k) * columns_ + s] = seq_[k][s];
}

void DelayPattern::copy_from(const int32_t* in) {
  for (size_t k = 0; k < seq_.size(); ++k)
    for (int64_t s = 0; s < columns_; ++s) seq_[k][s] = in[int64_t(k) * columns_ + s];
}

std::vector<std::vector<int>> DelayPattern::revert() const {
  std::vector<std::vector<int>> codes(seq_.size(), std::vector<int>(frames_));
  for (size_t k = 0; k < seq_.size(); ++k)
    for (int64_t t = 0; t < frames_; ++t) codes[k][t] = seq_[k][t + 1 + delays_[k]];
  return codes;
}

}  // namespace mg
