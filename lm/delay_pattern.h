// The codebook delay pattern (audiocraft's DelayedPatternProvider, HF's build_delay_pattern_mask):
// codebook k at column s holds frame s - 1 - delay[k]; column 0 and every position outside
// [0, T) hold the special token. T frames therefore take T + max_delay + 1 columns.
#pragma once

#include <cstdint>
#include <vector>

namespace mg {

class DelayPattern {
 public:
  // frames: T; prompt[k][t] (may be empty, else K rows of equal length <= T) is fixed in the sequence.
  DelayPattern(const std::vector<int>& delays, int64_t frames, int special,
               const std::vector<std::vector<int>>& prompt = {});

  int64_t columns() const { return columns_; }                 // T + max_delay + 1
  // First column to generate: prompt frames + 1 (1 without a prompt).
  int64_t first_generated_column() const { return first_; }
  int at(int k, int64_t s) const { return seq_[k][s]; }      // -1 while unknown
  // Sets column s from sampled tokens: only where still unknown (prompt tokens stay), and the
  // special token where the position is outside the frames.
  void fill(int64_t s, const std::vector<int>& tokens);
  // Column s of every codebook (after fill, or the prompt/special tokens).
  std::vector<int> column(int64_t s) const;
  // The whole sequence as K rows of columns() values (-1 unknown), e.g. for a device copy, and back.
  void copy_to(int32_t* out) const;
  void copy_from(const int32_t* in);
  // codes[k][t] = seq[k][t + 1 + delay[k]]: the frames back in time order, [K][T].
  std::vector<std::vector<int>> revert() const;

 private:
  std::vector<int> delays_;
  int64_t frames_, columns_, first_;
  int special_;
  std::vector<std::vector<int>> seq_;
};

}  // namespace mg
