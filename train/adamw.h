// The optimiser of LoRA training: PyTorch's AdamW (torch.optim.AdamW, single-tensor path: decoupled
// weight decay, bias-corrected moments, eps added after the square root), the learning-rate
// schedule of transformers' get_cosine_schedule_with_warmup (linear warmup from 0, then half a
// cosine to 0), and torch.nn.utils.clip_grad_norm_ (global L2 norm over every gradient).
#pragma once

#include <cstdint>
#include <vector>

#include "lm/lora.h"

namespace mg::train {

struct AdamWConfig {
  float lr = 1e-4f;
  float beta1 = 0.9f, beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;
};

// The moments of every LoRA tensor (A then B of each adapter entry, in order) and the step count.
struct AdamWState {
  int64_t step = 0;
  std::vector<std::vector<float>> m, v;
};

// The learning-rate factor of optimizer step `step` (0-based, as LambdaLR counts): step / warmup
// during the warmup, then 0.5 (1 + cos(pi progress)) with progress = (step - warmup) / (total - warmup).
double lr_factor(int64_t step, int64_t warmup, int64_t total);

// The global L2 norm of the gradients; when it exceeds max_norm (> 0), every gradient is scaled by
// max_norm / (norm + 1e-6) as PyTorch does. Returns the norm before clipping.
double clip_grad_norm(LoraAdapter& grads, double max_norm);

// One AdamW update of `params` with `grads` at learning rate lr (the schedule already applied).
// The state is created on the first call.
void adamw_step(LoraAdapter& params, const LoraAdapter& grads, AdamWState& state, const AdamWConfig& cfg, double lr);

}  // namespace mg::train
