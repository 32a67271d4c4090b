#!/usr/bin/env python3
"""A PEFT LoRA adapter for the tiny MusicGen and the logits/codes of the adapted model.

Reference: PEFT + transformers (versions pinned in requirements.txt), fp32, CPU, eager attention.

  tests/data/models/musicgen_tiny_lora/       adapter_config.json + adapter_model.safetensors, as PEFT's
                                              save_pretrained writes them (r 4, lora_alpha 8, every decoder
                                              linear layer; A and B random and non-zero, so B A matters)
  tests/data/golden/lora/tf_ascii.safetensors     teacher-forced logits of the PEFT-merged model (as
                                                  make_musicgen_goldens.py's tf_ascii, same codes)
  tests/data/golden/lora/greedy_ascii.safetensors greedy codes of the PEFT-merged model (HF generate)
  tests/data/golden/lora/index.json               what each file holds and what was checked

Checked here, not in CI: PEFT's unmerged forward equals the merged one; lora_dropout is inactive in eval.
With --ours DIR (an adapter written by our save_peft_adapter: tests/parity/lora_test writes the tiny
adapter re-saved to <build>/lora_roundtrip), PEFT loads it and must give the same logits.

Run: tools/reference/.venv/bin/python tools/reference/make_lora_goldens.py [--ours build/lora_roundtrip]

With --fullsize DIR (a full-size snapshot, e.g. tools/reference/local/musicgen-small from
make_fullsize_musicgen.py) it instead writes DIR-lora/ (r 16, alpha 32, every decoder linear layer,
A and B ~ N(0, 0.05^2)) and DIR-lora/hf_greedy_audio.npy: HF generate's greedy audio (23 steps,
cfg 3, "80s pop track with synth") of the PEFT-merged model, to compare with
musicgen.MusicGen(DIR, lora=DIR + "-lora").generate(same prompt, duration=0.4, greedy=True,
normalize="none") (docs/TRAINING.md gives the result).
"""
import argparse
import json
import os
import shutil
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model

sys.path.insert(0, os.path.dirname(__file__))
import make_musicgen_goldens as mgg  # noqa: E402  (shared helpers: delay pattern, greedy, teacher forcing)

ROOT = mgg.ROOT
BASE = mgg.MONO
ADAPTER = os.path.join(ROOT, "tests", "data", "models", "musicgen_tiny_lora")
GOLDEN = os.path.join(ROOT, "tests", "data", "golden", "lora")
TARGETS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
           "encoder_attn.q_proj", "encoder_attn.k_proj", "encoder_attn.v_proj", "encoder_attn.out_proj",
           "fc1", "fc2"]


def redirect_saves():
    """make_musicgen_goldens writes to golden/musicgen/: send its files to golden/lora/ instead."""
    save = mgg.save

    def save_here(path, tensors, meta=None):
        save(os.path.join(GOLDEN, os.path.basename(path)), tensors, meta)

    mgg.save = save_here


def make_adapter():
    base, _ = mgg.load(BASE)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, target_modules=TARGETS, bias="none")
    peft_model = get_peft_model(base, cfg)
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    if os.path.isdir(ADAPTER):
        shutil.rmtree(ADAPTER)
    # base_model_name_or_path as the project names the model (relative to the repository root).
    peft_model.peft_config["default"].base_model_name_or_path = "tests/data/models/musicgen_tiny"
    peft_model.save_pretrained(ADAPTER)
    for f in os.listdir(ADAPTER):
        os.chmod(os.path.join(ADAPTER, f), 0o644)
    if os.path.exists(os.path.join(ADAPTER, "README.md")):
        os.remove(os.path.join(ADAPTER, "README.md"))   # PEFT's model card template: not data
    return peft_model


@torch.no_grad()
def logits_of(model, processor, seq, text):
    _, hidden, mask = mgg.text_condition(model, processor, text, cfg=True)
    return model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=seq.repeat(2, 1),
                 use_cache=False).logits


@torch.no_grad()
def fullsize(folder):
    import numpy as np
    model, processor = mgg.load(folder)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=TARGETS))
    gen = torch.Generator().manual_seed(5)
    for name, p in peft_model.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    out_dir = folder.rstrip("/") + "-lora"
    peft_model.save_pretrained(out_dir)
    merged = peft_model.merge_and_unload().eval()
    audio = merged.generate(**processor(text=["80s pop track with synth"], return_tensors="pt"), do_sample=False,
                            guidance_scale=3.0, max_new_tokens=23)
    np.save(os.path.join(out_dir, "hf_greedy_audio.npy"), audio[0].numpy())
    print(f"lora fullsize: {out_dir}, audio {tuple(audio.shape)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", help="an adapter written by our save_peft_adapter, checked to load in PEFT")
    ap.add_argument("--fullsize", help="a full-size snapshot folder: write DIR-lora and HF's greedy audio instead")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.fullsize:
        return fullsize(args.fullsize)
    redirect_saves()
    import peft
    import transformers

    peft_model = make_adapter().eval()
    # Reload from disk, as a user would: what the goldens come from is the saved adapter.
    base, processor = mgg.load(BASE)
    loaded = PeftModel.from_pretrained(base, ADAPTER).eval()
    delays = [0, 1, 2, 3]
    gen = torch.Generator().manual_seed(7)
    codes = torch.randint(0, 2048, (4, 17), generator=gen)
    seq = mgg.delay_pattern(codes, delays)[:, :20]
    text = mgg.PROMPTS["ascii"]
    unmerged = logits_of(loaded, processor, seq, text)
    merged_model = loaded.merge_and_unload().eval()
    merged = logits_of(merged_model, processor, seq, text)
    merge_err = (unmerged - merged).abs().max().item()
    assert merge_err < 1e-4, f"PEFT merged vs unmerged differ by {merge_err}"
    base_plain, _ = mgg.load(BASE)
    change = (logits_of(base_plain, processor, seq, text) - merged).abs().max().item()
    print(f"lora: merged vs unmerged {merge_err:.2e}, adapter changes logits by up to {change:.3f}")

    cases = {}
    cases["tf_ascii"] = mgg.teacher_forcing(merged_model, processor, "tf_ascii", text, frames=17, delays=delays,
                                            cols_kept=8, seed=7, intermediates=False,
                                            cond_uncond=False)
    cases["greedy_ascii"] = mgg.greedy(merged_model, processor, "greedy_ascii", text, 60, mgg.CFG_SCALE, delays,
                                       keep_audio=False)

    ours = None
    if args.ours:
        theirs = PeftModel.from_pretrained(mgg.load(BASE)[0], args.ours).eval()
        ours_err = (logits_of(theirs, processor, seq, text) - unmerged).abs().max().item()
        assert ours_err < 1e-5, f"our saved adapter gives other logits in PEFT: {ours_err}"
        ours = {"dir": args.ours, "max_abs_vs_peft_saved": ours_err}
        print(f"lora: our save loads in PEFT, logits max |diff| {ours_err:.2e}")

    mgg.write_json(os.path.join(GOLDEN, "index.json"), {
        "reference": f"peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}, "
                     "fp32 CPU, eager attention",
        "base_model": "tests/data/models/musicgen_tiny",
        "adapter": "tests/data/models/musicgen_tiny_lora (PEFT save_pretrained: r 4, lora_alpha 8 -> scale 2, "
                   "lora_dropout 0.05 (inactive in eval), every decoder linear layer, A and B ~ N(0, 0.2^2))",
        "merged_vs_unmerged_max_abs": merge_err,
        "adapter_changes_logits_max_abs": change,
        "tensors": "as tests/data/golden/musicgen/index.json (teacher_forcing, greedy), for the model PEFT merged "
                   "(merge_and_unload) from the saved adapter",
        "our_save_loaded_in_peft": ours,
        "cases": cases})


if __name__ == "__main__":
    sys.exit(main())
