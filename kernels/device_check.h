// The self-check a model load runs on a GPU backend before trusting it: a few small ops of each
// kind a generation uses (what one decode step and one codec frame are made of: linear, attention
// of one new position over a short cache, layer norm, softmax, GELU, embedding, conv1d, transposed
// conv1d) on fixed inputs, on the device and on the CPU, compared. A device whose results differ
// (a driver or card fault, a kernel miscompiled for it) is not used: --device auto falls back to
// the CPU with a warning, --device cuda reports the error (api/common_api.cpp).
//
// The ops run on tiny inputs: the check costs a few milliseconds and runs before any weights are
// loaded. The loaded model is checked after it (one decode step, lm/device_self_check.h; one
// codec frame, codec/device_self_check.h), with expect_matches_cpu below.
//
// Fault injection (kernels/cuda/fault_injection.h): "selfcheck" perturbs the device's result before
// the comparison, so the failure path runs on any backend, the CPU one included.
#pragma once

#include <string>
#include <vector>

#include "kernels/cuda/fault_injection.h"
#include "kernels/ops.h"

namespace mg {

// Largest |device - cpu| allowed relative to max(1, |cpu|): f32 kernels that sum in another order
// (or use TF32/fused multiply-adds) stay far below it, a wrong result far above.
constexpr float kDeviceCheckTolerance = 1e-2f;

// Compares `got` (what `device` computed for `what`) with `want` (the CPU's result): throws mg::Error
// saying what differs, where, by how much and what to do when a value (NaN included) is further
// than kDeviceCheckTolerance from it, or the sizes differ. When `fault` is due (the test hook),
// the device's first value is perturbed before the comparison.
void expect_matches_cpu(const std::string& what, const Backend& device, std::vector<float> got,
                        const std::vector<float>& want, cuda::Fault fault);

// Throws mg::Error naming the first op whose result on `device` differs from the CPU's, by how
// much, and what to do; returns when every op agrees.
void check_device_against_cpu(Backend& device);

}  // namespace mg
