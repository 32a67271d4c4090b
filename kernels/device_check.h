// The self-check a model load runs on a GPU backend before trusting it: a few small ops of each
// kind a generation uses (what one decode step and one codec frame are made of: linear, attention
// of one new position over a short cache, layer norm, softmax, GELU, embedding, conv1d, transposed
// conv1d) on fixed inputs, on the device and on the CPU, compared. A device whose results differ
// (a driver or card fault, a kernel miscompiled for it) is not used: --device auto falls back to
// the CPU with a warning, --device cuda reports the error (api/common_api.cpp).
//
// It compares ops, not the model: a decode step of the real model compared with the CPU would
// need a second copy of the weights on the host (twice the memory of a load). The inputs are tiny:
// the check costs a few milliseconds.
//
// Fault injection (kernels/cuda/fault_injection.h): "selfcheck" perturbs the device's result before
// the comparison, so the failure path runs on any backend, the CPU one included.
#pragma once

#include "kernels/ops.h"

namespace mg {

// Largest |device - cpu| allowed relative to max(1, |cpu|): f32 kernels that sum in another order
// (or use TF32/fused multiply-adds) stay far below it, a wrong result far above.
constexpr float kDeviceCheckTolerance = 1e-2f;

// Throws mg::Error naming the first op whose result on `device` differs from the CPU's, by how
// much, and what to do; returns when every op agrees.
void check_device_against_cpu(Backend& device);

}  // namespace mg
