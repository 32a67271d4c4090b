#!/usr/bin/env python3
"""Goldens for weights/ and codec/encodec_config: safetensors files written by the reference
`safetensors` package (every dtype we read, special values, metadata, empty tensors), a 2-shard
checkpoint written by transformers' save_pretrained, HF-written config.json files, and a json of
what the C++ side must read back from them (raw bit patterns for floats, so NaN/inf/-0 compare).

Run: tools/reference/.venv/bin/python tools/reference/make_weight_goldens.py
Writes tests/data/golden/weights/ (about 60 kB). Deterministic (seeded).
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import EncodecConfig, EncodecModel, MusicgenConfig, MusicgenDecoderConfig, T5Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "golden", "weights")


def bits(t: torch.Tensor) -> list:
    """Raw bit patterns of a float tensor as unsigned ints (JSON cannot hold NaN/inf)."""
    t = t.contiguous().flatten()
    if t.dtype == torch.float32:
        return [int(x) for x in t.view(torch.int32).numpy().astype(np.uint32)]
    if t.dtype in (torch.float16, torch.bfloat16):
        return [int(x) for x in t.view(torch.int16).numpy().astype(np.uint16)]
    raise ValueError(t.dtype)


def describe(t: torch.Tensor) -> dict:
    d = {"dtype": {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16",
                   torch.int32: "i32", torch.int64: "i64"}[t.dtype],
         "shape": list(t.shape)}
    if t.dtype.is_floating_point:
        d["bits"] = bits(t)
        # What f16/bf16 -> f32 must give, bit for bit (torch's conversion is exact).
        d["f32_bits"] = bits(t.float())
    else:
        d["values"] = [int(x) for x in t.flatten().tolist()]
    return d


def dtype_cases() -> dict:
    inf, nan = float("inf"), float("nan")
    f32 = torch.tensor([0.0, -0.0, 1.0, -2.5, inf, -inf, nan, 1e-45, 3.4028234663852886e38,
                        1.1754943508222875e-38, math.pi], dtype=torch.float32)
    f16 = torch.tensor([0.0, -0.0, 1.0, 65504.0, -65504.0, 6.103515625e-05, 5.960464477539063e-08,
                        inf, -inf, nan, 1.0 / 3.0, -1e-3], dtype=torch.float16)
    bf16 = torch.tensor([[0.0, -0.0, 1.0, 3.3895313892515355e38],
                         [inf, -inf, nan, 9.183549615799121e-41],
                         [1.0 / 3.0, -1e-3, 65504.0, -7.5]], dtype=torch.bfloat16)
    i32 = torch.tensor([[-2**31, 2**31 - 1, 0], [-1, 1, 123456789]], dtype=torch.int32)
    i64 = torch.tensor([[[-2**63, 2**63 - 1], [2**53 + 1, -(2**53) - 1]],
                        [[0, -1], [2048, 4096]]], dtype=torch.int64)
    g = torch.Generator().manual_seed(1234)
    four_d = torch.randn(2, 3, 1, 4, generator=g, dtype=torch.float32)
    scalar = torch.tensor(0.125, dtype=torch.float32)  # shape [] (numel 1)
    return {"f32": f32, "f16": f16, "bf16": bf16, "i32": i32, "i64": i64,
            "four_d": four_d, "scalar": scalar}


def tiny_encodec_config() -> EncodecConfig:
    # Odd numbers on purpose: sr/hop is not an integer (frame rate is a ceil), chunk and stride are
    # truncations of non-integers, and bandwidths are not multiples of the per-codebook rate.
    return EncodecConfig(num_filters=2, hidden_size=8, codebook_size=16, upsampling_ratios=[2, 5],
                         target_bandwidths=[2.9, 5.8, 11.7], num_lstm_layers=1, sampling_rate=7999,
                         chunk_length_s=0.37, overlap=0.13, normalize=True, audio_channels=2,
                         use_causal_conv=False, use_conv_shortcut=False)


def derived(cfg: EncodecConfig, quantizer) -> dict:
    bws = [-1.0, 0.0, 1.0, 2.9, 5.8, 6.0, 11.7, 100.0]
    return {"hop_length": cfg.hop_length, "frame_rate": cfg.frame_rate,
            "codebook_nbits": cfg.codebook_nbits, "num_quantizers": cfg.num_quantizers,
            "chunk_length": cfg.chunk_length, "chunk_stride": cfg.chunk_stride,
            "codebook_dim": cfg.codebook_dim,
            "num_quantizers_for_bandwidth": [[bw, quantizer.get_num_quantizers_for_bandwidth(bw)]
                                             for bw in bws]}


def write_sharded(expected: dict) -> None:
    torch.manual_seed(0)
    cfg = tiny_encodec_config()
    model = EncodecModel(cfg).eval()
    sd = model.state_dict()
    total = sum(v.numel() * v.element_size() for v in sd.values())
    folder = os.path.join(OUT, "sharded")
    # A bit over half the total gives exactly two shards with transformers' greedy split.
    model.save_pretrained(folder, max_shard_size=total // 2 + 1000)
    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
        index = json.load(f)
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) == 2, shards
    tensors = {}
    for name, shard in sorted(index["weight_map"].items()):
        t = sd[name].detach().float()
        tensors[name] = {"shard": shard, "shape": list(t.shape),
                         "sum": float(t.double().sum()), "abs_sum": float(t.double().abs().sum()),
                         "first_bits": bits(t.flatten()[:1])[0] if t.numel() else None}
    expected["sharded"] = {"shards": shards, "tensors": tensors,
                           "config": derived(cfg, model.quantizer)}


def write_musicgen_config(expected: dict) -> None:
    # The real facebook/encodec_32khz values (encodec-spec.md 3.2) inside a MusicGen config, as
    # save_pretrained writes it: the codec is the "audio_encoder" sub-object.
    audio = EncodecConfig(audio_channels=1, codebook_size=2048, codebook_dim=128, hidden_size=128,
                          num_filters=64, num_lstm_layers=2, num_residual_layers=1,
                          norm_type="weight_norm", normalize=False, pad_mode="reflect",
                          sampling_rate=32000, target_bandwidths=[2.2], upsampling_ratios=[8, 5, 4, 4],
                          use_causal_conv=False, use_conv_shortcut=False, trim_right_ratio=1.0,
                          chunk_length_s=None, overlap=None)
    text = T5Config(d_model=768, d_ff=3072, num_layers=12, num_heads=12, vocab_size=32128)
    dec = MusicgenDecoderConfig(hidden_size=1024, ffn_dim=4096, num_hidden_layers=24,
                                num_attention_heads=16, num_codebooks=4, vocab_size=2048)
    mg = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=dec)
    folder = os.path.join(OUT, "musicgen_config")
    os.makedirs(folder, exist_ok=True)
    mg.to_json_file(os.path.join(folder, "config.json"))
    from transformers.models.encodec.modeling_encodec import EncodecResidualVectorQuantizer
    expected["musicgen_config"] = {"audio_encoder": derived(audio, EncodecResidualVectorQuantizer(audio))}


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    expected = {}

    cases = dtype_cases()
    save_file(cases, os.path.join(OUT, "dtypes.safetensors"))
    expected["dtypes"] = {k: describe(v) for k, v in cases.items()}

    meta = {"format": "pt", "producer": "libmusicgen make_weight_goldens.py",
            "unicode": "\u00fcn\u00efc\u00f8d\u00e9 \u266a", "empty": ""}
    save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
              os.path.join(OUT, "metadata.safetensors"), metadata=meta)
    expected["metadata"] = {"metadata": meta, "w": describe(torch.arange(6, dtype=torch.float32).reshape(2, 3))}

    empty = {"empty_rows": torch.zeros(0, 3, dtype=torch.float32),
             "empty_cols": torch.zeros(4, 0, dtype=torch.int64),
             "after": torch.tensor([7.0, -7.0], dtype=torch.float32)}
    save_file(empty, os.path.join(OUT, "empty.safetensors"))
    expected["empty"] = {k: describe(v) for k, v in empty.items()}

    write_sharded(expected)
    write_musicgen_config(expected)

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    for d, _, ns in os.walk(OUT):  # safetensors writes 0600; keep the tree readable for everyone
        for n in ns:
            os.chmod(os.path.join(d, n), 0o644)
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print(f"wrote {OUT} ({total} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
