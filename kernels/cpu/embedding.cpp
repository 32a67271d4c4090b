// Embedding lookups. Tables may be f32, f16 or bf16 (a half checkpoint); rows come out as f32.
// Every id is checked before anything is read, and a bad one names itself and the table size:
// an off-by-one special token (MusicGen's pad id 2048 in a 2049-row table) fails loudly here.
#include <algorithm>

#include "kernels/cpu/cpu_common.h"

namespace mg::cpu {

namespace {

void check_ids_in_range(const Tensor& ids, int64_t begin, int64_t end, int64_t vocab, const char* what) {
  for (int64_t i = begin; i < end; ++i) {
    int64_t id = detail::id_at(ids, i);
    MG_CHECK(id >= 0 && id < vocab, what, ": id ", id, " at position ", i, " is outside the table of ", vocab,
             " rows");
  }
}

// dst[D] (+)= table[id] as f32.
void read_row(const Exec& ex, const Tensor& table, int64_t id, float* dst, bool accumulate) {
  const int64_t d = table.dim(1);
  if (table.dtype == DType::F32) {
    const float* src = table.f32() + id * d;
    if (accumulate)
      for (int64_t j = 0; j < d; ++j) dst[j] += src[j];
    else
      std::copy(src, src + d, dst);
    return;
  }
  const uint16_t* src = table.ptr<uint16_t>() + id * d;
  if (!accumulate) {
    detail::half_to_f32(ex, table.dtype, src, dst, d);
    return;
  }
  for (int64_t j = 0; j < d; ++j) dst[j] += table.dtype == DType::F16 ? f16_to_f32(src[j]) : bf16_to_f32(src[j]);
}

}  // namespace

// ids of any shape (up to 3 dims) -> ids.shape + [D].
Tensor embedding(const Tensor& table, const Tensor& ids, const Exec& ex) {
  const int64_t n = ids.numel(), v = table.dim(0), d = table.dim(1);
  check_ids_in_range(ids, 0, n, v, "embedding");
  Shape out_shape = ids.shape;
  out_shape.push_back(d);
  Tensor y = Tensor::empty(DType::F32, out_shape);
  float* yp = y.f32();
  detail::parallel_for(ex, n, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) read_row(ex, table, detail::id_at(ids, i), yp + i * d, false);
  });
  return y;
}

// out[N, D] = sum_k tables[k][ids[k, n]], summed in table order k = 0, 1, ... as MusicGen does.
Tensor embedding_sum(const std::vector<const Tensor*>& tables, const Tensor& ids, const Exec& ex) {
  const int64_t k = int64_t(tables.size());
  const int64_t n = ids.dim(1);
  for (int64_t t = 0; t < k; ++t) {
    check_ids_in_range(ids, t * n, (t + 1) * n, tables[t]->dim(0), "embedding_sum");
  }
  const int64_t d = tables[0]->dim(1);
  Tensor y = Tensor::empty(DType::F32, {n, d});
  float* yp = y.f32();
  detail::parallel_for(ex, n, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t t = 0; t < k; ++t) read_row(ex, *tables[t], detail::id_at(ids, t * n + i), yp + i * d, t > 0);
  });
  return y;
}

}  // namespace mg::cpu
