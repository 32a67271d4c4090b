#!/usr/bin/env python3
"""PyTorch + PEFT LoRA training speed on the same shapes as bench-train: HF MusicGen (fp32, CPU,
eager attention), LoRA rank 16 / alpha 32 on every decoder linear, random codes with the delay
pattern, audiocraft's loss, AdamW. Prints one line in bench-train's format.
Run: tools/reference/.venv/bin/python tools/bench-train/bench_reference.py --model DIR --batch 1"""
import argparse
import math
import resource
import time

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, MusicgenForConditionalGeneration

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--segment", type=float, default=10.0)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--rank", type=int, default=16)
a = ap.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)

model = MusicgenForConditionalGeneration.from_pretrained(a.model, attn_implementation="eager").float().eval()
tok = AutoTokenizer.from_pretrained(a.model)
K = model.config.decoder.num_codebooks
T = int(a.segment * model.config.audio_encoder.frame_rate)
with torch.no_grad():
    ids = tok("an upbeat electronic track", return_tensors="pt")
    text = model.enc_to_dec_proj(model.text_encoder(**ids).last_hidden_state).expand(a.batch, -1, -1).contiguous()
mask = torch.ones(a.batch, text.shape[1], dtype=torch.long)
model = get_peft_model(model, LoraConfig(
    r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0,
    target_modules=r".*decoder\.model\.decoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|"
                   r"encoder_attn\.(q|k|v|out)_proj|fc1|fc2)"))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
g = torch.Generator().manual_seed(0)
codes = torch.randint(0, 2048, (a.batch, K, T), generator=g)
inp = torch.full((a.batch, K, T), 2048, dtype=torch.long)
tgt = torch.full((a.batch, K, T), -100, dtype=torch.long)
for k in range(K):
    inp[:, k, k + 1:] = codes[:, k, : T - k - 1]
    tgt[:, k, k:] = codes[:, k, : T - k]


def step():
    logits = model.base_model.model.decoder(input_ids=inp.reshape(-1, T), encoder_hidden_states=text,
                                            encoder_attention_mask=mask).logits.reshape(a.batch, K, T, -1)
    loss = sum(F.cross_entropy(logits[:, k].reshape(-1, logits.shape[-1]), tgt[:, k].reshape(-1)) for k in range(K)) / K
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step()
    opt.zero_grad()


step()  # warm-up
t0 = time.time()
for _ in range(a.steps):
    step()
secs = time.time() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(f"pytorch+peft model={a.model} batch={a.batch} segment={a.segment:g} frames={T} steps={a.steps} "
      f"threads={torch.get_num_threads()} steps_per_s={a.steps / secs:.4f} peak_rss_mb={rss:.0f}")
