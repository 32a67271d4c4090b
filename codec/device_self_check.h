// The codec half of a model load's self-check on a GPU backend: one frame of codes decoded by the
// loaded model on the device and by a CPU load of the same snapshot, compared within
// kDeviceCheckTolerance (kernels/device_check.h). It runs after the op check of
// make_model_backend (api/common_api.cpp) and, for a MusicGen model, beside the decoder step of
// lm/device_self_check.h. A mismatch or an error is an mg::Error: --device auto then falls back to
// the CPU with a warning, --device cuda reports it.
//
// Cost: the CPU load of the snapshot's codec (memory-mapped weights: ~0.1 s, ~0.3 GB for
// encodec_32khz, freed at return) and one frame (640 samples at 32 kHz) decoded on each side.
// Test hook: the fault "selfcheck-codec" (kernels/cuda/fault_injection.h) perturbs the device's
// audio before the comparison.
#pragma once

#include <string>

#include "codec/encodec.h"

namespace mg {

// Codes of one frame for every codebook of `cfg` ([K, 1], host i64): fixed values spread over the
// codebooks, the same on every run.
Tensor self_check_codec_frame(const EncodecConfig& cfg);

// `model` was loaded on `device` from `path` (an EnCodec or MusicGen snapshot folder): throws
// mg::Error when its decode of one frame differs from the CPU's.
void check_codec_on_device(const EncodecModel& model, Backend& device, const std::string& path);

}  // namespace mg
