// attention_rows_batch (kernels/ops.h; CPU: kernels/cpu/attention.cpp, attention_split.cpp): the
// server's shared step runs every request's attention in one call, and a request's tokens must
// not depend on who else is in the batch. So each job must get exactly the bits attention_rows
// gives it alone, on every kernel path, whatever the other jobs' key counts, row counts and cache
// dtypes, and no row outside the jobs may be written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "cpu_paths.h"
#include "test_util.h"

namespace {

using mg::DType;
using mg::Tensor;
using mgtest::random_tensor;
namespace cpu = mg::cpu;

struct JobShape {
  DType dtype;
  int64_t R, S, T, cap;
};

// Key counts around the split path's 64-key blocks, one to several blocks, f32 and f16 caches.
const std::vector<JobShape> kJobs = {
    {DType::F32, 2, 1, 1, 8},   {DType::F16, 2, 1, 64, 70},   {DType::F32, 1, 1, 65, 65},
    {DType::F16, 3, 1, 150, 160}, {DType::F32, 2, 3, 200, 210}, {DType::F16, 2, 1, 130, 130},
};

struct Batch {
  std::vector<Tensor> q, k, v;
  std::vector<mg::AttentionRowsJob> jobs;
  int64_t rows = 0;
};

// The jobs of kJobs with one spare output row before each (which no job may write).
Batch make_batch(int64_t D, bool causal) {
  Batch b;
  uint32_t seed = 100;
  for (const JobShape& s : kJobs) {
    b.q.push_back(random_tensor({s.R, s.S, causal ? 3 * D : D}, seed++, 2.0f));
    b.k.push_back(cpu::cast(random_tensor({s.R, s.cap, D}, seed++, 2.0f), s.dtype));
    b.v.push_back(cpu::cast(random_tensor({s.R, s.cap, D}, seed++), s.dtype));
    b.rows += 1;  // the spare row
    b.jobs.push_back({b.q.back(), b.k.back(), b.v.back(), s.T, b.rows});
    b.rows += s.R * s.S;
  }
  return b;
}

Tensor filled_with_nan(int64_t rows, int64_t D) {
  Tensor out = Tensor::empty(DType::F32, {rows, D});
  for (int64_t i = 0; i < out.numel(); ++i) out.f32()[i] = std::numeric_limits<float>::quiet_NaN();
  return out;
}

// Each job's rows of out against attention_rows alone; the spare rows still NaN.
void expect_jobs_alone(const Tensor& out, const Batch& b, int heads, float scale, bool causal, const cpu::Exec& ex,
                       const std::string& what) {
  const int64_t D = out.dim(1);
  for (size_t j = 0; j < b.jobs.size(); ++j) {
    const mg::AttentionRowsJob& a = b.jobs[j];
    Tensor alone = cpu::attention_rows(a.q, a.k, a.v, a.T, heads, scale, causal, ex);
    EXPECT_EQ(std::memcmp(out.f32() + a.out_row0 * D, alone.data, alone.nbytes()), 0)
        << what << " job " << j << " (T " << a.T << ", " << mg::dtype_name(a.k.dtype) << ")";
    EXPECT_TRUE(std::isnan(out.f32()[(a.out_row0 - 1) * D])) << what << ": the spare row before job " << j;
  }
}

TEST(CpuAttentionBatch, EachJobHasTheBitsOfAttentionRowsAloneOnEveryPath) {
  cpu::ThreadPool pool(2);
  // H 16 x dh 64: musicgen's heads (the split-key path on AVX-512); H 3 x dh 8: the (head, query) paths.
  for (auto [heads, dh] : {std::pair<int, int64_t>{16, 64}, std::pair<int, int64_t>{3, 8}})
    for (bool causal : {true, false})
      for (auto [name, ex] : mgtest::cpu_kernel_paths()) {
        ex.pool = &pool;
        const int64_t D = heads * dh;
        const Batch b = make_batch(D, causal);
        const std::string what = name + " H " + std::to_string(heads) + (causal ? " causal" : " cross");
        Tensor out = filled_with_nan(b.rows, D);
        cpu::attention_rows_batch(out, b.jobs, heads, 0.125f, causal, ex);
        expect_jobs_alone(out, b, heads, 0.125f, causal, ex, what);
        // One job alone in the batch, and no pool: the same bits.
        Tensor serial = filled_with_nan(b.rows, D);
        const cpu::Exec serial_ex{nullptr, ex.allow_simd, ex.allow_avx512};
        for (const mg::AttentionRowsJob& a : b.jobs) cpu::attention_rows_batch(serial, {a}, heads, 0.125f, causal, serial_ex);
        EXPECT_EQ(std::memcmp(out.data, serial.data, out.nbytes()), 0) << what << ": one job per call, no pool";
      }
}

TEST(CpuAttentionBatch, BackendBatchEqualsAttentionRowsAndChecksItsJobs) {
  auto be = mg::make_cpu_backend(2);
  const int heads = 16;
  const int64_t D = 16 * 64;
  const Batch b = make_batch(D, true);
  Tensor out = filled_with_nan(b.rows, D);
  be->attention_rows_batch(out, b.jobs, heads, 0.125f, true);
  for (size_t j = 0; j < b.jobs.size(); ++j) {
    const mg::AttentionRowsJob& a = b.jobs[j];
    Tensor alone = be->attention_rows(a.q, a.k, a.v, a.T, heads, 0.125f, true);
    EXPECT_EQ(std::memcmp(out.f32() + a.out_row0 * D, alone.data, alone.nbytes()), 0) << "job " << j;
  }
  be->attention_rows_batch(out, {}, heads, 0.125f, true);  // no jobs: nothing to do
  Tensor small = Tensor::empty(DType::F32, {b.rows - 1, D});
  EXPECT_THROW(be->attention_rows_batch(small, b.jobs, heads, 0.125f, true), mg::Error);  // the last job overflows
  Tensor narrow = Tensor::empty(DType::F32, {b.rows, D / 2});
  EXPECT_THROW(be->attention_rows_batch(narrow, b.jobs, heads, 0.125f, true), mg::Error);
  Tensor half = Tensor::empty(DType::F16, {b.rows, D});
  EXPECT_THROW(be->attention_rows_batch(half, b.jobs, heads, 0.125f, true), mg::Error);
  std::vector<mg::AttentionRowsJob> too_many_keys = {b.jobs[0]};
  too_many_keys[0].T = kJobs[0].cap + 1;
  EXPECT_THROW(be->attention_rows_batch(out, too_many_keys, heads, 0.125f, true), mg::Error);
}

}  // namespace
