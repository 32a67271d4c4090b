#!/usr/bin/env python3
"""A full-size random-weight musicgen-small for the benchmark and the full-size parity check.

Writes tools/reference/local/musicgen-small/ (git-ignored: NEVER commit it, about 2.4 GB of f32) in the
Hugging Face snapshot layout of facebook/musicgen-small, with its exact shapes:
  decoder        hidden 1024, 24 layers, 16 heads, ffn 4096, 4 codebooks of 2048, 2048 positions
  text encoder   t5-base shaped: d_model 768, 12 layers, 12 heads x 64, d_ff 3072, vocab 32128
  audio encoder  encodec_32khz shaped: 64 filters, ratios 8,5,4,4, hidden 128, 4 codebooks of 2048 x 128
The weights are seeded and redrawn as for the tiny test models (make_musicgen_models.rescale_weights)
so that logits are far from flat. The tokenizer is the tiny models' spiece.model (256 pieces + 100
extra ids): its ids are all inside t5-base's 32128-row table, which is what matters here.

Then (unless --no-check) it writes tools/reference/local/musicgen-small-check.safetensors: transformers'
greedy CFG (guidance 3) generation of 10 steps for one prompt, with the CFG-combined logits of every
step (`scores`, [10, K, 2048]) and the codes. tests/slow/musicgen_fullsize_test.cpp compares ours to it.

Run: tools/reference/.venv/bin/python tools/reference/make_fullsize_musicgen.py [--out DIR] [--no-check]
"""
import argparse
import glob
import os
import shutil
import sys
import time

import torch
from safetensors.torch import load_file, save_file
from transformers import (EncodecConfig, GenerationConfig, MusicgenConfig, MusicgenDecoderConfig,
                          MusicgenForConditionalGeneration, MusicgenProcessor, T5Config)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_musicgen_models import rescale_weights  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TINY = os.path.join(ROOT, "tests", "data", "models", "musicgen_tiny")
LOCAL = os.path.join(HERE, "local")
SEED = 4321
CHECK_PROMPT = "80s pop track with bassy drums and synth"
CHECK_STEPS = 10
CFG_SCALE = 3.0


def t5_base_config():
    return T5Config(
        vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_decoder_layers=12, num_heads=12,
        relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.1,
        layer_norm_epsilon=1e-6, initializer_factor=1.0, feed_forward_proj="relu", is_encoder_decoder=True,
        use_cache=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=True)


def encodec_32khz_config():
    return EncodecConfig(
        target_bandwidths=[2.2], sampling_rate=32000, audio_channels=1, normalize=False,
        chunk_length_s=None, overlap=None, hidden_size=128, num_filters=64, num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 4], norm_type="weight_norm", kernel_size=7, last_kernel_size=7,
        residual_kernel_size=3, dilation_growth_rate=2, use_causal_conv=False, pad_mode="reflect",
        compress=2, num_lstm_layers=2, trim_right_ratio=1.0, codebook_size=2048, codebook_dim=128,
        use_conv_shortcut=False)


def small_decoder_config():
    return MusicgenDecoderConfig(
        vocab_size=2048, max_position_embeddings=2048, num_hidden_layers=24, ffn_dim=4096,
        num_attention_heads=16, layerdrop=0.0, use_cache=True, activation_function="gelu", hidden_size=1024,
        dropout=0.1, attention_dropout=0.0, activation_dropout=0.0, initializer_factor=0.02,
        scale_embedding=False, num_codebooks=4, audio_channels=1, pad_token_id=2048, bos_token_id=2048,
        eos_token_id=None, tie_word_embeddings=False)


def hub_weight_norm_names(folder):
    """parametrizations.weight.original0/1 -> weight_g/weight_v, the spelling of the hub files."""
    for path in glob.glob(os.path.join(folder, "*.safetensors")):
        tensors = load_file(path)
        renamed = {k.replace(".parametrizations.weight.original0", ".weight_g")
                    .replace(".parametrizations.weight.original1", ".weight_v"): v.contiguous()
                   for k, v in tensors.items()}
        del tensors
        save_file(renamed, path, metadata={"format": "pt"})


@torch.no_grad()
def build(folder):
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    config = MusicgenConfig(text_encoder=t5_base_config().to_dict(), audio_encoder=encodec_32khz_config().to_dict(),
                            decoder=small_decoder_config().to_dict())
    model = MusicgenForConditionalGeneration(config).eval()
    rescale_weights(model, gen)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    model.save_pretrained(folder)
    hub_weight_norm_names(folder)
    GenerationConfig(decoder_start_token_id=2048, pad_token_id=2048, bos_token_id=2048, max_length=1500,
                     do_sample=True, guidance_scale=3.0).save_pretrained(folder)
    for name in ("spiece.model", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copyfile(os.path.join(TINY, name), os.path.join(folder, name))


def decode_step_parameters(cfg):
    """Weights one decode step reads per row batch: self-attn q,k,v,o; cross q,o (cross k,v are computed
    once from the text); fc1, fc2; the K heads. (Embedding rows and norms are negligible.)"""
    d = cfg.decoder
    per_layer = 4 * d.hidden_size ** 2 + 2 * d.hidden_size ** 2 + 2 * d.hidden_size * d.ffn_dim
    return d.num_hidden_layers * per_layer + d.num_codebooks * d.vocab_size * d.hidden_size


@torch.no_grad()
def reference_check(folder, out_path):
    model = MusicgenForConditionalGeneration.from_pretrained(folder, attn_implementation="eager").eval()
    processor = MusicgenProcessor.from_pretrained(folder)
    captured = {}
    codec_decode = model.audio_encoder.decode

    def spy(codes, *a, **kw):
        captured["codes"] = codes.clone()
        return codec_decode(codes, *a, **kw)

    model.audio_encoder.decode = spy
    inputs = processor(text=[CHECK_PROMPT], return_tensors="pt")
    t0 = time.time()
    out = model.generate(**inputs, do_sample=False, guidance_scale=CFG_SCALE, max_new_tokens=CHECK_STEPS,
                         return_dict_in_generate=True, output_scores=True)
    model.audio_encoder.decode = codec_decode
    scores = torch.stack(out.scores)                       # [steps, K, V], CFG-combined
    save_file({"input_ids": inputs.input_ids[0].to(torch.int32).contiguous(),
               "scores": scores.float().contiguous(),
               "codes": captured["codes"][0, 0].to(torch.int32).contiguous()},
              out_path, metadata={"prompt": CHECK_PROMPT, "steps": str(CHECK_STEPS), "cfg": str(CFG_SCALE)})
    spread = scores.std(-1).mean().item()
    print(f"reference check: {CHECK_STEPS} greedy CFG steps in {time.time() - t0:.1f} s, logits std {spread:.2f}, "
          f"codes {tuple(captured['codes'].shape)} -> {out_path}")
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(LOCAL, "musicgen-small"))
    ap.add_argument("--no-check", action="store_true", help="skip the transformers reference logits")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    build(args.out)
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(args.out, "*.safetensors")))
    print(f"wrote {args.out}: {size / 1e9:.2f} GB of safetensors in {time.time() - t0:.0f} s")
    if not args.no_check:
        model = reference_check(args.out, os.path.join(os.path.dirname(args.out), "musicgen-small-check.safetensors"))
        n = decode_step_parameters(model.config)
        total = sum(p.numel() for p in model.parameters())
        dec = sum(p.numel() for p in model.decoder.parameters())
        print(f"parameters: total {total}, decoder {dec}, read per decode step {n} "
              f"({n * 4 / 1e9:.3f} GB f32, {n * 2 / 1e9:.3f} GB f16/bf16)")


if __name__ == "__main__":
    sys.exit(main())
