// The model half of a MusicGen load's self-check on a GPU backend, after the op check of
// kernels/device_check.h: one decode step of the loaded decoder (two rows, one with a fixed text
// and one null as in classifier-free guidance, two columns of fixed codes) on the device and on the
// CPU, and one codec frame (codec/device_self_check.h), each compared within
// kDeviceCheckTolerance. --device auto falls back to the CPU with a warning when it fails,
// --device cuda reports the error (api/api_internal.h, load_on_device).
//
// The CPU side runs on the device's own weights, downloaded a few layers at a time (at most
// kSelfCheckHostBytes of them on the host at once, plus the embeddings and heads): every layer of
// the loaded model is checked, each group of layers as a decoder of its own (embeddings, those
// layers, final norm, heads), without a second copy of the whole model on the host. It checks
// what the device computes with what it holds, in the weight dtype the model was loaded with.
//
// Cost on full-size musicgen-small (f32): see docs/LIMITS.md ("The GPU path fails safe").
// Test hook: the fault "selfcheck-step" (kernels/cuda/fault_injection.h) perturbs the device's
// logits before the comparison.
#pragma once

#include <cstdint>
#include <string>

#include "lm/generate.h"

namespace mg {

// The most bytes of decoder layers downloaded to the host at once for the CPU side of the check.
constexpr int64_t kSelfCheckHostBytes = int64_t(256) << 20;

// Throws mg::Error when one decode step of `dec` (loaded on `device`) differs from the CPU's.
// host_bytes: the group size's bound (tests pass a small one to check layer by layer).
void check_decoder_on_device(const MusicgenDecoder& dec, Backend& device, int64_t host_bytes = kSelfCheckHostBytes);

// The whole check of a MusicGen model loaded on `device` from `path`: the decoder step, then the
// codec frame.
void check_musicgen_on_device(const MusicGen& model, Backend& device, const std::string& path);

}  // namespace mg
