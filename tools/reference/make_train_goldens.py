#!/usr/bin/env python3
"""Golden data for LoRA training of the MusicGen decoder (train/, kernels/cpu/*_backward.cpp).

Reference: PyTorch autograd + PEFT LoRA on the tiny HF MusicGen (fp32, CPU, eager attention, eval mode
so that the decoder's own dropout is off), with the loss audiocraft's MusicGenSolver computes:
the codes [B, K, T] laid out by the delay pattern (column 0 and positions before a codebook's delay
hold the special token), the logits of column s predicting frame s - delay[k] of codebook k, frames
after T - 1 - delay[k] masked, one mean cross-entropy per codebook over its unmasked positions,
then the mean over codebooks. Writes tests/data/golden/train/:

  ops.safetensors    each backward op on small random inputs: inputs, output, upstream grad and
                     the input grads autograd gives (linear+LoRA, attention self/cross, layer norm,
                     GELU, masked cross-entropy)
  lora.safetensors   a batch (codes, projected texts, one null text), initial adapters (A and B
                     random so every gradient is non-zero), the loss, every LoRA gradient, and the
                     adapters after 20 AdamW steps (2 micro-batches accumulated per step, global
                     norm clipping, linear warmup + cosine schedule)

Run: tools/reference/.venv/bin/python tools/reference/make_train_goldens.py
"""
import math
import os

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoTokenizer, MusicgenForConditionalGeneration

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "data", "models", "musicgen_tiny")
OUT = os.path.join(ROOT, "tests", "data", "golden", "train")

SPECIAL = 2048
MODULES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
           "encoder_attn.q_proj", "encoder_attn.k_proj", "encoder_attn.v_proj", "encoder_attn.out_proj",
           "fc1", "fc2"]
PREFIX = "base_model.model.decoder.model.decoder.layers."
RANK, ALPHA = 4, 8.0
# Optimiser settings the C++ parity test repeats (train/adamw.h).
LR, BETAS, EPS, WD = 1e-2, (0.9, 0.999), 1e-8, 0.01
STEPS, WARMUP, CLIP = 20, 3, 1.0


def save(path, tensors, meta=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        v = v.to(torch.int32) if not v.is_floating_point() else v.to(torch.float32)
        out[k] = v.contiguous()
    save_file(out, path, metadata={k: str(v) for k, v in (meta or {}).items()})
    os.chmod(path, 0o644)


# --- the ops ------------------------------------------------------------------------------------
def op_goldens():
    g = torch.Generator().manual_seed(7)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    t = {}

    # linear with LoRA: y = x W^T + s (x A^T) B^T (W frozen)
    N, I, O, R, s = 5, 6, 7, 3, 1.5
    x, W, A, B, dy = r(N, I), r(O, I), r(R, I), r(O, R), r(N, O)
    x.requires_grad_(); A.requires_grad_(); B.requires_grad_()
    y = x @ W.T + s * (x @ A.T) @ B.T
    y.backward(dy)
    t.update({"linear.x": x, "linear.W": W, "linear.A": A, "linear.B": B, "linear.dy": dy, "linear.y": y,
              "linear.dx": x.grad, "linear.dA": A.grad, "linear.dB": B.grad})

    # attention, 2 heads of 3: causal self (Tq = Tk = 5) and cross (Tq = 5, Tk = 4, last key masked)
    for name, Tq, Tk, causal in (("self", 5, 5, True), ("cross", 5, 4, False)):
        H, hd = 2, 3
        q, k, v, do = r(Tq, H * hd), r(Tk, H * hd), r(Tk, H * hd), r(Tq, H * hd)
        for a in (q, k, v):
            a.requires_grad_()
        qh, kh, vh = (a.view(-1, H, hd).transpose(0, 1) for a in (q, k, v))
        sc = qh @ kh.transpose(1, 2) / math.sqrt(hd)
        if causal:
            sc = sc.masked_fill(torch.ones(Tq, Tk, dtype=torch.bool).triu(1), float("-inf"))
        else:  # the text's key mask: the last key is padding
            sc = sc.masked_fill(torch.arange(Tk) >= Tk - 1, float("-inf"))
        o = (sc.softmax(-1) @ vh).transpose(0, 1).reshape(Tq, H * hd)
        o.backward(do)
        p = f"attn_{name}."
        t.update({p + "q": q, p + "k": k, p + "v": v, p + "dout": do, p + "out": o,
                  p + "dq": q.grad, p + "dk": k.grad, p + "dv": v.grad})

    # layer norm (weight and bias frozen), eps 1e-5
    x, w, b, dy = r(4, 8), r(8), r(8), r(4, 8)
    x.requires_grad_()
    y = F.layer_norm(x, (8,), w, b, 1e-5)
    y.backward(dy)
    t.update({"ln.x": x, "ln.w": w, "ln.b": b, "ln.dy": dy, "ln.y": y, "ln.dx": x.grad})

    # exact GELU
    x, dy = r(3, 7) * 2, r(3, 7)
    x.requires_grad_()
    y = F.gelu(x)
    y.backward(dy)
    t.update({"gelu.x": x, "gelu.dy": dy, "gelu.y": y, "gelu.dx": x.grad})

    # masked cross-entropy: logits [N, K, V], targets [N, K] (-1 ignored), mean per codebook then over K
    N, K, V = 6, 3, 5
    logits = r(N, K, V) * 3
    targets = torch.randint(0, V, (N, K), generator=g)
    targets[0, 1] = -1; targets[4, 2] = -1; targets[5, 2] = -1
    logits.requires_grad_()
    loss = sum(F.cross_entropy(logits[:, k][targets[:, k] >= 0], targets[:, k][targets[:, k] >= 0])
               for k in range(K)) / K
    loss.backward()
    t.update({"ce.logits": logits, "ce.targets": targets, "ce.loss": loss.reshape(1), "ce.dlogits": logits.grad})
    save(os.path.join(OUT, "ops.safetensors"), t, {"about": "backward ops vs torch autograd (float64, saved f32)"})


# --- the decoder with LoRA ----------------------------------------------------------------------
def delayed_inputs_and_targets(codes, delays):
    """audiocraft's pattern (keep_only_valid_steps): inputs [B, K, T] (columns 0..T-1 of the T+1
    the pattern has: the last column's logits are never used), targets [B, K, T] (-1 = masked)."""
    B, K, T = codes.shape
    inp = torch.full((B, K, T), SPECIAL, dtype=torch.long)
    tgt = torch.full((B, K, T), -1, dtype=torch.long)
    for k in range(K):
        d = delays[k]
        for s in range(T):
            if 0 <= s - 1 - d < T:
                inp[:, k, s] = codes[:, k, s - 1 - d]
            if 0 <= s - d < T:
                tgt[:, k, s] = codes[:, k, s - d]
    return inp, tgt


def batch_loss(model, inp, tgt, text, mask):
    B, K, T = inp.shape
    logits = model.decoder(input_ids=inp.reshape(B * K, T), encoder_hidden_states=text,
                           encoder_attention_mask=mask).logits.reshape(B, K, T, -1)
    loss = 0
    for k in range(K):
        lk, tk = logits[:, k].reshape(-1, logits.shape[-1]), tgt[:, k].reshape(-1)
        loss = loss + F.cross_entropy(lk[tk >= 0], tk[tk >= 0])
    return loss / K


def lora_params(model):
    out = {}
    for name, p in model.named_parameters():
        if "lora_" in name:
            out[name.replace(".default", "")] = p
    return out


def lr_lambda(step):  # transformers' get_cosine_schedule_with_warmup
    if step < WARMUP:
        return step / max(1, WARMUP)
    progress = (step - WARMUP) / max(1, STEPS - WARMUP)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def lora_goldens():
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration.from_pretrained(MODEL, attn_implementation="eager").float().eval()
    tok = AutoTokenizer.from_pretrained(MODEL)
    D = model.config.decoder.hidden_size
    K = model.config.decoder.num_codebooks
    delays = list(range(K))

    prompts = ["happy rock with drums", "", "sad piano", "lo-fi hip hop beats with a mellow saxophone"]
    texts = []
    with torch.no_grad():
        for p in prompts:
            if not p:
                texts.append(None)  # a null condition (what condition dropout gives): zero text, no key
                continue
            ids = tok(p, return_tensors="pt")
            h = model.text_encoder(**ids).last_hidden_state
            texts.append(model.enc_to_dec_proj(h)[0] * ids["attention_mask"][0, :, None])
    Tt = max(t.shape[0] for t in texts if t is not None)
    text = torch.zeros(len(prompts), Tt, D)
    mask = torch.zeros(len(prompts), Tt, dtype=torch.long)
    for b, t in enumerate(texts):
        if t is not None:
            text[b, : t.shape[0]] = t
            mask[b, : t.shape[0]] = 1

    B, T = len(prompts), 10
    g = torch.Generator().manual_seed(11)
    codes = torch.randint(0, SPECIAL, (B, K, T), generator=g)
    inp, tgt = delayed_inputs_and_targets(codes, delays)

    cfg = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0,
                     target_modules=r".*decoder\.model\.decoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|"
                                    r"encoder_attn\.(q|k|v|out)_proj|fc1|fc2)")
    model = get_peft_model(model, cfg)
    params = lora_params(model)
    with torch.no_grad():
        for name, p in sorted(params.items()):
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    init = {n: p.detach().clone() for n, p in params.items()}

    loss = batch_loss(model.base_model.model, inp, tgt, text, mask)
    loss.backward()
    grads = {"grad." + n: p.grad.detach().clone() for n, p in params.items()}

    # 20 AdamW steps, each accumulating micro-batches {0, 1} and {2, 3} (grads averaged).
    for p in params.values():
        p.grad = None
    plist = [params[n] for n in sorted(params)]
    opt = torch.optim.AdamW(plist, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    losses = []
    for step in range(STEPS):
        total = 0.0
        for mb in ((0, 1), (2, 3)):
            idx = list(mb)
            l = batch_loss(model.base_model.model, inp[idx], tgt[idx], text[idx], mask[idx]) / 2
            l.backward()
            total += l.item()
        losses.append(total)
        torch.nn.utils.clip_grad_norm_(plist, CLIP)
        opt.step()
        sched.step()
        opt.zero_grad()
    final = {"final." + n: p.detach().clone() for n, p in params.items()}

    t = {"codes": codes, "loss": loss.detach().reshape(1), "step_losses": torch.tensor(losses)}
    for b, x in enumerate(texts):
        if x is not None:
            t[f"text.{b}"] = x
    t.update(init)
    t.update(grads)
    t.update(final)
    save(os.path.join(OUT, "lora.safetensors"), t,
         {"about": "tiny MusicGen + PEFT LoRA: audiocraft loss, LoRA grads, 20 AdamW steps",
          "rank": RANK, "alpha": ALPHA, "lr": LR, "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS,
          "weight_decay": WD, "steps": STEPS, "warmup": WARMUP, "clip": CLIP,
          "prompts": "|".join(prompts)})
    print(f"lora: loss {loss.item():.6f}, {len(params)} LoRA tensors, step losses {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
    op_goldens()
    lora_goldens()
