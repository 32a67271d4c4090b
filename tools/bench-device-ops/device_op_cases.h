// The device op checks as ONE table: a row per op (or per op and weight dtype) with the inputs it
// runs on, how to run it on a Backend, and how close a device backend must come to the CPU (the
// reference, itself pinned to PyTorch by tests/parity/ops_test.cpp). Two programs walk it:
//  - tests/gpu/cuda_op_cases_test.cpp at Size::Small: several odd shapes per op (tile and warp
//    edges), device memory poisoned with NaN before each run so that an unwritten element fails;
//  - bench-device-ops at Size::Full: musicgen-small's decode step and EnCodec 32 kHz's layers,
//    checked the same way and then timed.
// Adding an op to both is adding a row: a function returning its DeviceOpCase in
// device_op_cases_dense.cpp (algebra, elementwise, layout), _seq.cpp (attention, KV cache, sampling)
// or _codec.cpp, pushed in that file's add_*_cases.
//
// Tolerances (relative L2 error against the CPU):
//   1e-5 elementwise / norms / softmax,
//   1e-4 GEMM-based ops (summation order differs between OpenBLAS and cuBLAS), also with f16/bf16
//        weights (both backends read the same rounded weights; a kernel that converts them wrongly
//        is off by >= 1e-3),
//   1e-4 attention (sums over up to ~1500 keys in another order, in chunks whose softmax states
//        are merged: the error class of a GEMM),
//   0    layout ops, casts, in-place copies, sampled ids: bit-exact;
//   vq_nearest: ids equal except at near-ties (the two distances within 1e-5 relative), at most 1%.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace mgcases {

constexpr double kTolElementwise = 1e-5;
constexpr double kTolGemm = 1e-4;
constexpr double kTolHalfWeights = 1e-4;
constexpr double kTolAttention = 1e-4;
constexpr double kTolExact = 0;  // compared byte for byte

// Small: the GPU test's shapes, cheap on the CPU. Full: the model's shapes (bench-device-ops).
enum class Size { Small, Full };

// One input set of an op.
struct OpInputs {
  std::string tag;                 // what sets it apart: "x[3,37] n=129 bias"
  std::vector<mg::Tensor> tensors; // host tensors; run() gets them uploaded, in this order
  std::vector<double> args;        // the op's scalar arguments (sizes, flags, alpha), as run() reads them
  double bytes = 0, flops = 0;     // what the op must move / compute (the bench's GB/s and TFLOP/s)
  bool heavy = false;              // long on its own (thousands of launches, 30 s of audio): few timed calls
};

struct DeviceOpCase {
  std::string name;  // unique: the op, and the variant when one op has several rows
  double tol;        // largest error allowed; kTolExact: bytes equal
  std::function<std::vector<OpInputs>(Size)> inputs;
  // Runs the op on `be`; t holds in.tensors uploaded to `be`.
  std::function<mg::Tensor(mg::Backend& be, const std::vector<mg::Tensor>& t, const OpInputs& in)> run;
  // How far a (downloaded) result is from the CPU's; empty: rel_err, or 0/1 (bytes equal) when tol is
  // kTolExact.
  std::function<double(const mg::Tensor& got, const mg::Tensor& want, const OpInputs& in)> error = nullptr;
};

// Every row, in a fixed order.
const std::vector<DeviceOpCase>& device_op_cases();

// Uploads in.tensors to `be` (fresh copies: in-place ops write into them) and returns the closure
// that runs the op there (the bench times it).
std::function<mg::Tensor()> prepare(const DeviceOpCase& c, const OpInputs& in, mg::Backend& be);
// The error of `got` against `want` by c.error (default as above). A shape or dtype mismatch, NaN or
// infinity gives 1e30, so that every reader of the number sees a failure.
double case_error(const DeviceOpCase& c, const OpInputs& in, const mg::Tensor& got, const mg::Tensor& want);
// Runs the case on the CPU and on `dev` (its memory poisoned first) and returns case_error.
double check_against_cpu(const DeviceOpCase& c, const OpInputs& in, mg::Backend& dev, mg::Backend& cpu);
// Fills a large stretch of a device backend's memory pool with NaN and frees it: the stream-ordered
// allocator hands the same memory to the next outputs, so unwritten elements read back as NaN.
// Nothing on the CPU backend.
void poison(mg::Backend& be);

// ---- for the row files ----
// Deterministic data in [-scale, scale), never exactly zero (a kernel that writes nothing must fail).
mg::Tensor random(const mg::Shape& s, uint32_t seed, float scale = 1.0f);
// Ids in [0, vocab) of dtype t (i32 or i64).
mg::Tensor random_ids(mg::DType t, const mg::Shape& s, int64_t vocab, uint32_t seed);
mg::Tensor i32s(const std::vector<int32_t>& v);
int64_t numel(const mg::Shape& s);
// A host cast (the CPU backend's, so both backends read the same rounded values).
mg::Tensor to_dtype(const mg::Tensor& t, mg::DType to);
void add_dense_cases(std::vector<DeviceOpCase>& rows);     // device_op_cases_dense.cpp
void add_sequence_cases(std::vector<DeviceOpCase>& rows);  // device_op_cases_seq.cpp: attention, KV cache, sampling
void add_codec_cases(std::vector<DeviceOpCase>& rows);     // device_op_cases_codec.cpp

}  // namespace mgcases
