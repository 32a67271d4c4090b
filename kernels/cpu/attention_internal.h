// Shared by the CPU attention files only (attention.cpp: dispatch, portable and AVX2 paths;
// attention_split.cpp: the AVX-512 split-key path). Not part of the op API.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace mg::cpu::detail {

// R independent rows of attention: row r's queries are q + (r * S + i) * qs (the first D columns),
// its keys and values k/v + r * kv_row (kv_row = capacity * D), its output out + (r * S + i) * D.
// K and V are float, or uint16_t holding f16 (a half KV cache).
template <typename KV>
struct AttentionProblem {
  const float* q;
  const KV* k;
  const KV* v;
  float* out;
  int64_t R, S, T, D, dh;
  float scale;
  bool causal;
  int64_t qs;      // q's row stride (D, or wider for a fused q|k|v row)
  int64_t kv_row;  // elements from one row's cache to the next
  // Keys query i of a row sees: causal, 0 .. T - S + i; otherwise all T.
  int64_t visible(int64_t i) const { return causal ? T - S + i + 1 : T; }
};

// The split-key path runs for head widths that are a multiple of 16 on AVX-512 processors.
bool attention_split_applies(int64_t dh, const Exec& ex);
void attention_split(const AttentionProblem<float>& P, int heads, const Exec& ex);
void attention_split(const AttentionProblem<uint16_t>& P, int heads, const Exec& ex);
// Several problems (f32 and f16 caches) with all their work items in one parallel region; each
// problem gets the bits attention_split gives it alone.
void attention_split_batch(const std::vector<AttentionProblem<float>>& f32, const std::vector<AttentionProblem<uint16_t>>& f16,
                           int heads, const Exec& ex);

}  // namespace mg::cpu::detail
