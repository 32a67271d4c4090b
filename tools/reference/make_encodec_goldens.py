#!/usr/bin/env python3
"""EnCodec parity goldens for the tiny models (transformers.EncodecModel is the reference).

For each tiny model in tests/data/models/encodec_*_tiny and each case (real music excerpts already
converted to the model's rate/channels, and synthetic signals), writes
tests/data/golden/encodec/<model>/<case>.safetensors with, for EVERY target bandwidth:
codes (int64) from model.encode(x, bandwidth=bw) and the audio from model.decode(those codes).
One case per model also carries intermediates (encoder output, quantized embeddings) and one carries
layer-by-layer outputs, so a port can bisect. tests/data/golden/encodec/index.json describes it all.

Tensor layout in every case file (batch dimension dropped; bw formatted with %g: 1.5, 3, 6, 2.2):
  input                 f32 [C, L]          the model's input (already resampled / down-mixed)
  codes_bw<bw>          i64 [K, T]          unsegmented models (24k, 32k); K = codebooks at bw
                        i64 [S, K, T]       48k: one row per 1 s segment; segments shorter than
                                            T are right-padded with zeros: their real frame counts
                                            are index.json's segment_frames
  scales                f32 [S]             48k only: per-segment scale (RMS of mono + 1e-8)
  decoded_bw<bw>        f32 [C, L_dec]      model.decode output, NOT trimmed: L_dec = ceil(L/hop)*hop
                                            (24k/32k) or the overlap-add length (48k); trim to L.
                                            48k music_3seg: lowest and highest bandwidth only (size).
  emb                   f32 [D, T] (48k: [S, D, T], short segments zero-padded)  encoder output
  quantized_bw<bw>      f32 [D, T] (48k: [S, D, T])  RVQ decode of the codes (decoder input)
  enc_layer<i> / dec_layer<i>  f32 [S?, C_i, T_i]  output of encoder/decoder layer i (ELU layers
                                            skipped) for the layers case; 48k: segment 0 only.

Run: tools/reference/.venv/bin/python tools/reference/make_encodec_goldens.py
(after make_encodec_models.py; it only reads the saved tiny models).

The goldens follow the original encodec package's segmenting (which HF >= PR #39431 matches on
unpadded input); they are computed with HF's own per-segment functions because HF's public encode
fails on one of the cases (see encode_segments).
"""

import argparse
import json
import math
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from transformers import EncodecModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_encodec_models import MODELS_DIR, ROOT, convert_audio, load_audio  # noqa: E402

GOLDEN_DIR = os.path.join(ROOT, "tests", "data", "golden", "encodec")

# (file, start second, number of samples AT THE MODEL RATE). Lengths are deliberately not
# multiples of the hop, except where a case says otherwise.
MUSIC_CASES = {
    "encodec_24khz_tiny": {
        "music_electro1": ("electro_1.mp3", 4.0, 12000),     # 37.5 hops
        "music_bach": ("bach.mp3", 3.0, 12345),
    },
    "encodec_32khz_tiny": {
        "music_electro2": ("electro_2.mp3", 6.0, 28123),
        "music_drums": ("sep_drums_1.mp3", 1.0, 20000),      # 31.25 hops
    },
    "encodec_48khz_tiny": {
        # 3 segments: [0, 48000), [47520, 95047) and a 7-sample tail segment [95040, 95047).
        "music_3seg": ("electro_1.mp3", 8.0, 95047),
    },
}

# Regions make_encodec_models.py keeps out of the codebook calibration (1 s margin).
_RATES = {"encodec_24khz_tiny": 24000, "encodec_32khz_tiny": 32000, "encodec_48khz_tiny": 48000}
GOLDEN_MUSIC_REGIONS = [(f, s - 1.0, s + n / _RATES[m] + 1.0)
                        for m, cases in MUSIC_CASES.items() for (f, s, n) in cases.values()]

# name -> (kind, length). Kinds: sine, noise, silence, impulse.
SYNTH_CASES = {
    "encodec_24khz_tiny": {"sine": 6017, "noise": 4000, "silence": 3200, "impulse": 1017,
                           "short_200": 200, "single_sample": 1},
    "encodec_32khz_tiny": {"sine": 9617, "noise": 5000, "silence": 6400, "impulse": 1337,
                           "short_500": 500},
    "encodec_48khz_tiny": {"sine": 3217, "noise": 2411, "silence": 3200, "impulse": 1217,
                           "short_100": 100},
}
# Which case carries emb/quantized intermediates, and which the layer-by-layer dump (the impulse
# cases are short because a layer dump costs ~0.3 kB per input sample).
INTERMEDIATES_CASE = {"encodec_24khz_tiny": "music_bach", "encodec_32khz_tiny": "music_drums",
                      "encodec_48khz_tiny": "music_3seg"}
# Size: the 2 s stereo 48 kHz case would cost 0.76 MB per decoded bandwidth. It decodes at the
# lowest and highest bandwidth only; its quantized_bw<bw> intermediates cover every bandwidth.
DECODED_BANDWIDTHS = {("encodec_48khz_tiny", "music_3seg"): [3.0, 24.0]}
LAYERS_CASE = {"encodec_24khz_tiny": "impulse", "encodec_32khz_tiny": "impulse",
               "encodec_48khz_tiny": "impulse"}

SEED = 1234


def bw_tag(bw):
    return "%g" % bw


def synth_signal(kind, length, sr, channels, seed):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float64) / sr
    if kind == "sine" or kind.startswith("short"):
        freqs = [440.0, 660.0][:channels] if kind == "sine" else [1000.0, 1500.0][:channels]
        x = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in freqs]).float()
    elif kind == "noise":
        x = 0.1 * torch.randn(channels, length, generator=gen)
    elif kind == "silence":
        x = torch.zeros(channels, length)
    elif kind == "impulse":
        x = torch.zeros(channels, length)
        for c in range(channels):
            x[c, 100 + 700 * c] = 1.0
    elif kind == "single":
        x = torch.full((channels, length), 0.25)
    else:
        raise ValueError(kind)
    return x.contiguous()


def music_excerpt(file, start_s, n, sr, channels):
    wav, file_sr = load_audio(file)
    # Convert a little more than needed (julius's edges), then cut at the model rate.
    a = int(start_s * file_sr)
    b = a + int(math.ceil((n + 64) * file_sr / sr))
    x = convert_audio(wav[:, a:b], file_sr, sr, channels)
    assert x.shape[-1] >= n, (file, x.shape, n)
    return x[:, :n].contiguous()


def case_inputs(model_name, config):
    sr, ch = config.sampling_rate, config.audio_channels
    cases = {}
    for name, (file, start, n) in MUSIC_CASES[model_name].items():
        cases[name] = (music_excerpt(file, start, n, sr, ch), f"{file} @ {start}s, julius -> {sr} Hz, {ch} ch")
    for i, (name, n) in enumerate(SYNTH_CASES[model_name].items()):
        kind = "single" if name == "single_sample" else name
        cases[name] = (synth_signal(kind, n, sr, ch, SEED + i), f"synthetic {name}")
    return cases


def near_ties(codebook_embed, residual_rows, thresh=1e-6, rel=1e-5):
    """(rows whose top-2 distances differ by < thresh, rows with an exact tie, rows whose gap is
    < rel * |x|^2 (about 100 float32 ulps of the distance: a port's rounding can flip those),
    smallest gap)."""
    embed = codebook_embed.t()
    dist = -(residual_rows.pow(2).sum(1, keepdim=True) - 2 * residual_rows @ embed
             + embed.pow(2).sum(0, keepdim=True))
    top2 = dist.topk(2, dim=-1).values
    gap = (top2[:, 0] - top2[:, 1])
    x2 = residual_rows.pow(2).sum(1)
    return (int((gap < thresh).sum()), int((gap == 0).sum()), int((gap < rel * x2).sum()),
            float(gap.min()))


@torch.no_grad()
def rvq_tie_scan(model, emb):
    """Walks the RVQ exactly like EncodecResidualVectorQuantizer.encode, counting near-ties."""
    rows = emb.transpose(1, 2).reshape(-1, emb.shape[1])
    residual, ties, exact, relt, min_gap = rows, 0, 0, 0, float("inf")
    for layer in model.quantizer.layers:
        n, z, r, g = near_ties(layer.codebook.embed, residual)
        ties, exact, relt, min_gap = ties + n, exact + z, relt + r, min(min_gap, g)
        codes = layer.codebook.quantize(residual)
        residual = residual - layer.codebook.embed[codes]
    return ties, exact, relt, min_gap


@torch.no_grad()
def segments_of(model, x):
    """The (normalised) segments HF's encode feeds to the encoder, and their scales."""
    cfg = model.config
    length = x.shape[-1]
    chunk = cfg.chunk_length or length
    stride = cfg.chunk_stride or length
    segs, scales = [], []
    for off in range(0, length, stride):
        seg = x[..., off:off + chunk]
        if cfg.normalize:
            mono = torch.sum(seg, 1, keepdim=True) / seg.shape[1]
            scale = mono.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8
            seg = seg / scale
            scales.append(scale.view(()))
        segs.append(seg)
    return segs, scales


@torch.no_grad()
def encode_segments(model, x, bw):
    """HF EncodecModel.encode's segment loop, kept per segment (as the original encodec package does).

    HF's encode stacks the segments and pads only the LAST one, so it raises when the last segment is
    shorter than the overlap (chunk_length - chunk_stride = 480 samples at 48 kHz): the one before it
    is then short too (e.g. L = 95047). Returns [(codes [1, K, T_i], scale [1, 1] or None)].
    """
    cfg = model.config
    length = x.shape[-1]
    chunk = cfg.chunk_length or length
    stride = cfg.chunk_stride or length
    return [model._encode_frame(x[..., off:off + chunk], bw) for off in range(0, length, stride)]


@torch.no_grad()
def decode_segments(model, frames):
    """HF EncodecModel.decode's path: decode each segment, then linear overlap-add."""
    decoded = [model._decode_frame(codes, scale) for codes, scale in frames]
    if model.config.chunk_length is None:
        return decoded[0]
    return model._linear_overlap_add(decoded, model.config.chunk_stride)


@torch.no_grad()
def check_against_hf_api(model, xb, bw, seg_codes, dec, meta):
    """The per-segment path must equal model.encode/decode wherever the public API works."""
    try:
        enc = model.encode(xb, bandwidth=bw)
    except RuntimeError as e:
        meta["hf_encode_fails"] = f"RuntimeError: {e}"
        return
    pad = enc.last_frame_pad_length
    for i, c in enumerate(seg_codes):
        api = enc.audio_codes[i, 0]
        if i == len(seg_codes) - 1 and pad:
            api = api[..., :-pad]
        assert torch.equal(api, c), f"HF encode differs from the per-segment path (segment {i})"
    api_dec = model.decode(enc.audio_codes, enc.audio_scales, last_frame_pad_length=pad)[0][0]
    assert torch.equal(api_dec, dec), "HF decode differs from the per-segment path"
    meta["last_frame_pad_length"] = int(pad)


def stack_padded(tensors):
    t_max = max(t.shape[-1] for t in tensors)
    return torch.stack([torch.nn.functional.pad(t, (0, t_max - t.shape[-1])) for t in tensors])


@torch.no_grad()
def layer_dump(stack, x, prefix):
    out = {}
    h = x
    for i, layer in enumerate(stack.layers):
        h = layer(h)
        if not isinstance(layer, torch.nn.ELU):
            out[f"{prefix}{i}"] = h[0].contiguous()
    return out


@torch.no_grad()
def golden_case(model, x, with_intermediates, with_layers, decoded_bws=None):
    cfg = model.config
    segmented = cfg.chunk_length_s is not None
    xb = x.unsqueeze(0)
    tensors = {"input": x}
    meta = {"bandwidths": [], "num_codebooks": {}, "code_frames": None}
    segs, scales = segments_of(model, xb)
    embs = [model.encoder(s) for s in segs]
    ties, exact, relt, min_gap = 0, 0, 0, float("inf")
    for e in embs:
        t, z, r, g = rvq_tie_scan(model, e)
        ties, exact, relt, min_gap = ties + t, exact + z, relt + r, min(min_gap, g)
    # Counted over frames x stages at the full bandwidth (see near_ties).
    meta["rvq_decisions_full_bw"] = sum(e.shape[-1] for e in embs) * len(model.quantizer.layers)
    meta["near_ties_abs_1e-6_full_bw"] = ties
    meta["near_ties_rel_1e-5_full_bw"] = relt
    meta["exact_ties_full_bw"] = exact
    meta["min_top2_gap_full_bw"] = min_gap
    for bw in cfg.target_bandwidths:
        frames = encode_segments(model, xb, bw)
        dec = decode_segments(model, frames)[0]
        seg_codes = [c[0] for c, _ in frames]  # each [K, T_i]
        check_against_hf_api(model, xb, bw, seg_codes, dec, meta)
        tag = bw_tag(bw)
        tensors[f"codes_bw{tag}"] = (stack_padded(seg_codes) if segmented else seg_codes[0]).contiguous()
        if decoded_bws is None or bw in decoded_bws:
            tensors[f"decoded_bw{tag}"] = dec.contiguous()
        meta["bandwidths"].append(bw)
        meta["num_codebooks"][tag] = int(seg_codes[0].shape[0])
        meta["code_frames"] = int(seg_codes[0].shape[-1])
        meta["segments"] = len(seg_codes)
        meta["segment_frames"] = [int(c.shape[-1]) for c in seg_codes]
        meta["decoded_length"] = int(dec.shape[-1])
        if segmented:
            got = torch.stack([s.view(()) for _, s in frames])
            assert torch.equal(got, torch.stack(scales)), "scale recomputation differs from HF"
            tensors["scales"] = got.float().contiguous()
        if bw == cfg.target_bandwidths[-1]:
            full = torch.cat(seg_codes, dim=-1)
            meta["distinct_codes_per_codebook"] = [int(full[k].unique().numel())
                                                   for k in range(full.shape[0])]
        if with_intermediates:
            q = [model.quantizer.decode(model.quantizer.encode(e, bw))[0] for e in embs]
            tensors[f"quantized_bw{tag}"] = (stack_padded(q) if segmented else q[0]).contiguous()
    if with_intermediates:
        e = [t[0] for t in embs]
        tensors["emb"] = (stack_padded(e) if segmented else e[0]).contiguous()
    if with_layers:
        tensors.update(layer_dump(model.encoder, segs[0], "enc_layer"))
        q0 = model.quantizer.decode(model.quantizer.encode(embs[0], cfg.target_bandwidths[-1]))
        tensors.update(layer_dump(model.decoder, q0, "dec_layer"))
        meta["layers_from"] = "segment 0, full bandwidth" if segmented else "full bandwidth"
    meta["tensors"] = sorted(tensors)
    return tensors, meta


def dir_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=GOLDEN_DIR)
    args = ap.parse_args()
    torch.set_num_threads(2)
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    index = {
        "about": "EnCodec goldens from transformers.EncodecModel on the tiny random-weight models. "
                 "See tools/reference/make_encodec_goldens.py for tensor names and layouts.",
        "transformers_version": __import__("transformers").__version__,
        "torch_version": torch.__version__,
        "models": {},
    }
    for model_name in MUSIC_CASES:
        model_dir = os.path.join(MODELS_DIR, model_name)
        model = EncodecModel.from_pretrained(model_dir).eval()
        cfg = model.config
        out_dir = os.path.join(args.out, model_name)
        os.makedirs(out_dir, exist_ok=True)
        entry = {"model_dir": os.path.relpath(model_dir, ROOT), "sample_rate": cfg.sampling_rate,
                 "channels": cfg.audio_channels, "hop_length": cfg.hop_length,
                 "target_bandwidths": list(cfg.target_bandwidths),
                 "chunk_length": cfg.chunk_length, "chunk_stride": cfg.chunk_stride, "cases": {}}
        for name, (x, source) in case_inputs(model_name, cfg).items():
            tensors, meta = golden_case(model, x, name == INTERMEDIATES_CASE[model_name],
                                        name == LAYERS_CASE[model_name],
                                        DECODED_BANDWIDTHS.get((model_name, name)))
            path = os.path.join(out_dir, name + ".safetensors")
            save_file(tensors, path, metadata={"source": source})
            meta.update(file=os.path.relpath(path, args.out), source=source,
                        input_length=int(x.shape[-1]), channels=int(x.shape[0]),
                        input_rms=float(x.pow(2).mean().sqrt()),
                        decoded_rms_full_bw=float(tensors[f"decoded_bw{bw_tag(cfg.target_bandwidths[-1])}"]
                                                  .pow(2).mean().sqrt()))
            entry["cases"][name] = meta
            print(f"{model_name}/{name}: L={x.shape[-1]} frames={meta['code_frames']} "
                  f"segs={meta['segments']} rms in/out {meta['input_rms']:.4f}/"
                  f"{meta['decoded_rms_full_bw']:.4f} decisions {meta['rvq_decisions_full_bw']} ties abs<1e-6: "
                  f"{meta['near_ties_abs_1e-6_full_bw']} rel<1e-5: {meta['near_ties_rel_1e-5_full_bw']} "
                  f"exact {meta['exact_ties_full_bw']} "
                  f"min gap {meta['min_top2_gap_full_bw']:.3g} distinct "
                  f"{meta['distinct_codes_per_codebook'][:4]}... size {os.path.getsize(path)//1024} KB")
        index["models"][model_name] = entry
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    print(f"total {dir_size(args.out) / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
