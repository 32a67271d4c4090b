#!/usr/bin/env python3
"""Tiny random-weight EnCodec models in the real Hugging Face snapshot layout.

Writes tests/data/models/encodec_{24,32,48}khz_tiny/ (config.json + model.safetensors, as
`EncodecModel.save_pretrained` writes them) and encodec_24khz_tiny_altnames/ (the same weights with
the other weight-norm spelling), so the C++ codec, its CLI and the C API run end to end in CI
without a download.

What is real and what is shrunk (see docs/encodec-spec.md in the shared notes for the real configs):
  * real: sampling rate, channels, causal flag, pad_mode, norm_type, use_conv_shortcut, ratios
    (hop length, frame rate), kernel sizes, LSTM depth, codebook_size (bins), number of codebooks,
    target_bandwidths, normalize / chunk_length_s / overlap. Every code path of the real model runs.
  * shrunk: num_filters 32/64 -> 4 and hidden_size (= codebook_dim) 128 -> 8.
  * dropped: `quantizer.layers.*.codebook.embed_avg` and `.cluster_size` (EMA training state; embed_avg
    alone would double the bytes of the codebooks). `inited` stays, so a loader still has to skip
    training state. transformers re-creates the dropped buffers on load, with a "MISSING" report.

Random init is calibrated so the numbers look like audio, not like noise blowing up or dying out:
  * weight-norm models: each conv's g is rescaled, layer by layer in forward order on real music,
    so every conv output has unit std per channel (transposed convs: one factor, as g there is per
    *input* channel); the last decoder conv is scaled to the RMS of the music and re-centred (no DC).
  * the 48 kHz model (time_group_norm) is scale-free; its GroupNorm affine weights/biases are
    randomised (around 1 / 0) so a port that ignores them fails.
  * codebooks are fitted to encoder outputs on real music + synthetic signals, one RVQ stage at a
    time (Gaussian draws matching the residuals the previous stages leave, shrunk so each stage
    removes ~30% of the residual energy: a slow decay like a trained 128-dim EnCodec, not the fast
    one of an optimal 8-dim codebook), so codes are diverse, distances
    do not tie, and deep stages do not sink into float rounding.

Run: tools/reference/.venv/bin/python tools/reference/make_encodec_models.py
Other scripts import the helpers below (load_audio, convert_audio, make_config, calibration_batch, ...).
"""

import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import EncodecConfig, EncodecModel

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
AUDIO_DIR = os.path.abspath(os.path.join(ROOT, "..", "shared", "data", "audio"))
MODELS_DIR = os.path.join(ROOT, "tests", "data", "models")

# Real configs of the Hub checkpoints (facebook/encodec_24khz, facebook/encodec_32khz at rev
# 2f57de7 = MusicGen's codec, facebook/encodec_48khz). Only widths differ in the tiny ones.
REAL_CONFIGS = {
    "encodec_24khz": dict(
        sampling_rate=24000, audio_channels=1, target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0],
        normalize=False, chunk_length_s=None, overlap=None, num_filters=32, hidden_size=128,
        codebook_dim=128, codebook_size=1024, upsampling_ratios=[8, 5, 4, 2],
        norm_type="weight_norm", use_causal_conv=True, pad_mode="reflect", use_conv_shortcut=True,
        kernel_size=7, last_kernel_size=7, residual_kernel_size=3, num_residual_layers=1,
        dilation_growth_rate=2, compress=2, num_lstm_layers=2, trim_right_ratio=1.0),
    "encodec_32khz": dict(
        sampling_rate=32000, audio_channels=1, target_bandwidths=[2.2],
        normalize=False, chunk_length_s=None, overlap=None, num_filters=64, hidden_size=128,
        codebook_dim=128, codebook_size=2048, upsampling_ratios=[8, 5, 4, 4],
        norm_type="weight_norm", use_causal_conv=False, pad_mode="reflect", use_conv_shortcut=False,
        kernel_size=7, last_kernel_size=7, residual_kernel_size=3, num_residual_layers=1,
        dilation_growth_rate=2, compress=2, num_lstm_layers=2, trim_right_ratio=1.0),
    "encodec_48khz": dict(
        sampling_rate=48000, audio_channels=2, target_bandwidths=[3.0, 6.0, 12.0, 24.0],
        normalize=True, chunk_length_s=1.0, overlap=0.01, num_filters=32, hidden_size=128,
        codebook_dim=128, codebook_size=1024, upsampling_ratios=[8, 5, 4, 2],
        norm_type="time_group_norm", use_causal_conv=False, pad_mode="reflect",
        use_conv_shortcut=True, kernel_size=7, last_kernel_size=7, residual_kernel_size=3,
        num_residual_layers=1, dilation_growth_rate=2, compress=2, num_lstm_layers=2,
        trim_right_ratio=1.0),
}

# hidden_size 8 (not 16-32): the 24 kHz model has 32 codebooks x 1024 bins and ships twice (altnames);
# codebook bytes are what would blow the tests/data budget. Widths play no part in which paths run.
TINY_WIDTHS = dict(num_filters=4, hidden_size=8, codebook_dim=8)
TINY_SEEDS = {"encodec_24khz": 24, "encodec_32khz": 32, "encodec_48khz": 48}


CALIB_SUBSET = 12


def tiny_name(real_name):
    return real_name + "_tiny"


def make_config(real_name, tiny=True):
    cfg = dict(REAL_CONFIGS[real_name])
    if tiny:
        cfg.update(TINY_WIDTHS)
    return EncodecConfig(**cfg)


# ----------------------------------------------------------------------------------------------
# Audio helpers (shared with make_encodec_goldens.py / make_ecdc_goldens.py)


def load_audio(name):
    """Returns (float32 tensor [C, T], sample_rate) of a file in the shared audio folder."""
    path = os.path.join(AUDIO_DIR, name)
    if not os.path.exists(path):
        sys.exit(f"missing {path}: the shared test audio is needed to build models and goldens")
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(np.ascontiguousarray(data.T)), sr


def convert_audio(wav, sr, target_sr, target_channels):
    """audiocraft's convert_audio: julius.resample_frac first, then channels (mean / expand)."""
    import julius

    if sr != target_sr:
        wav = julius.resample_frac(wav, int(sr), int(target_sr))
    if wav.shape[0] == target_channels:
        return wav
    if target_channels == 1:
        return wav.mean(dim=0, keepdim=True)
    if wav.shape[0] == 1:
        return wav.expand(target_channels, -1).contiguous()
    return wav[:target_channels]


AUDIO_FILES = [
    "electro_1.mp3", "electro_2.mp3", "bach.mp3", "electronic.mp3", "sep_drums_1.mp3",
    "CJ_Beatbox_Loop_05_90.wav", "a_duck_quacking_as_birds_chirp_and_a_pigeon_cooing.mp3",
]


def calibration_batch(sample_rate, channels, window_s, max_windows, seed, avoid=()):
    """[B, C, window] of real music windows plus synthetic signals.

    `avoid` lists (file, start_s, end_s) regions (the golden excerpts) that calibration must not
    see, so golden inputs are not copies of codebook entries.
    """
    gen = torch.Generator().manual_seed(seed)
    win = int(round(window_s * sample_rate))
    windows = []
    for name in AUDIO_FILES:
        wav, sr = load_audio(name)
        wav = convert_audio(wav, sr, sample_rate, channels)
        for start in range(0, wav.shape[-1] - win + 1, win):
            t0, t1 = start / sample_rate, (start + win) / sample_rate
            if any(f == name and t0 < e and s < t1 for f, s, e in avoid):
                continue
            seg = wav[:, start:start + win]
            if seg.pow(2).mean().sqrt() > 1e-3:
                windows.append(seg)
    perm = torch.randperm(len(windows), generator=gen)[:max_windows]
    windows = [windows[i] for i in perm.tolist()]
    t = torch.arange(win) / sample_rate
    for k in range(4):  # synthetic: noise at two levels, a sine and a chirp
        if k < 2:
            sig = (0.3 if k == 0 else 0.03) * torch.randn(channels, win, generator=gen)
        elif k == 2:
            sig = 0.5 * torch.sin(2 * math.pi * 440.0 * t).expand(channels, -1)
        else:
            sig = 0.3 * torch.sin(2 * math.pi * (100.0 + 2000.0 * t) * t).expand(channels, -1)
        windows.append(sig.contiguous())
    return torch.stack(windows)


# ----------------------------------------------------------------------------------------------
# Calibrated random init


def _conv_modules(stack):
    """The EncodecConv1d / EncodecConvTranspose1d modules of an encoder/decoder, in forward order."""
    from transformers.models.encodec import modeling_encodec as me

    out = []
    for layer in stack.layers:
        if isinstance(layer, me.EncodecResnetBlock):
            out += [m for m in layer.block if isinstance(m, me.EncodecConv1d)]
            if isinstance(layer.shortcut, me.EncodecConv1d):
                out.append(layer.shortcut)
        elif isinstance(layer, (me.EncodecConv1d, me.EncodecConvTranspose1d)):
            out.append(layer)
    return out


def _captured_output(stack, module, x):
    captured = {}
    handle = module.register_forward_hook(lambda m, i, o: captured.__setitem__("y", o))
    stack(x)
    handle.remove()
    return captured["y"]


@torch.no_grad()
def calibrate_weight_norm_stack(stack, x, last_target_rms=None):
    """LSUV-style: rescale each conv's weight-norm g so its output has unit std (per channel where
    g is per output channel); optionally scale + re-centre the last conv to audio-like RMS."""
    from transformers.models.encodec import modeling_encodec as me

    convs = _conv_modules(stack)
    for idx, mod in enumerate(convs):
        g = mod.conv.parametrizations.weight.original0
        y = _captured_output(stack, mod, x)
        is_last = idx == len(convs) - 1
        target = last_target_rms if (is_last and last_target_rms is not None) else 1.0
        if isinstance(mod, me.EncodecConvTranspose1d):
            g.mul_(target / max(y.std().item(), 1e-8))
        else:
            std = y.transpose(0, 1).reshape(y.shape[1], -1).std(dim=1)
            g.mul_((target / std.clamp_min(1e-8)).view(-1, 1, 1))
        if is_last and last_target_rms is not None:
            y = _captured_output(stack, mod, x)
            mod.conv.bias.sub_(y.transpose(0, 1).reshape(y.shape[1], -1).mean(dim=1))


@torch.no_grad()
def randomise_group_norms(model, gen):
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.GroupNorm):
            mod.weight.copy_(1.0 + 0.2 * (torch.rand(mod.weight.shape, generator=gen) - 0.5) * 2)
            mod.bias.copy_(0.05 * torch.randn(mod.bias.shape, generator=gen))


@torch.no_grad()
def normalise_segments(model, x):
    """What `_encode_frame` does to each segment before the encoder when config.normalize is set."""
    if not model.config.normalize:
        return x, None
    mono = x.sum(1, keepdim=True) / x.shape[1]
    scale = mono.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8
    return x / scale, scale


def _quantize_rows(embed, rows):
    """Nearest codeword, with the reference's distance formula (EncodecEuclideanCodebook.quantize)."""
    e = embed.t()
    dist = -(rows.pow(2).sum(1, keepdim=True) - 2 * rows @ e + e.pow(2).sum(0, keepdim=True))
    return dist.max(dim=-1).indices


@torch.no_grad()
def init_codebooks_from_data(model, emb, gen, keep_energy=0.7):
    """Stage-by-stage RVQ init that decays like a trained EnCodec, not like a 10-bit/8-dim one.

    Each stage's codewords are Gaussian draws fitted (mean, full covariance) to the residuals the
    previous stages leave on real encoder outputs, shrunk so that one stage keeps about
    `keep_energy` of the residual energy around its mean. Codewords are therefore distinct (no ties), all get
    used, and the residual after the last of 32 stages is still far above float32 rounding (with
    an optimal 8-dim codebook it would fall below it after ~10 stages, making deep codes noise).
    """
    rows = emb.transpose(1, 2).reshape(-1, emb.shape[1]).double()  # [N, D]
    residual = rows.clone()
    for layer in model.quantizer.layers:
        cb = layer.codebook
        bins, dim = cb.embed.shape
        mean = residual.mean(dim=0)
        cov = torch.cov(residual.t()) + 1e-12 * torch.eye(dim, dtype=rows.dtype)
        draws = torch.randn(bins, dim, generator=gen, dtype=rows.dtype) @ torch.linalg.cholesky(cov).t()
        # Relative to the energy around the mean: the mean alone removes a lot at stage 0 (encoder
        # outputs are not centred), and counting it would shrink stage 0 to near-identical codewords.
        energy = (residual - mean).pow(2).sum()
        lo, hi = 0.0, 2.0
        for _ in range(20):  # bisection on the shrink factor for the wanted energy ratio
            shrink = 0.5 * (lo + hi)
            embed = (mean + shrink * draws).float()
            r = residual - embed.double()[_quantize_rows(embed, residual.float())]
            if r.pow(2).sum() / energy > keep_energy:
                lo = shrink
            else:
                hi = shrink
        cb.embed.copy_(embed)
        cb.embed_avg.copy_(embed)
        cb.cluster_size.fill_(1.0)
        residual = residual - embed.double()[_quantize_rows(embed, residual.float())]


@torch.no_grad()
def build_calibrated_model(real_name, tiny=True, calib=None, seed=None, log=print):
    """A random-weight EncodecModel calibrated on `calib` ([B, C, T] audio at the model's rate)."""
    seed = TINY_SEEDS[real_name] if seed is None else seed
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1000)
    config = make_config(real_name, tiny)
    model = EncodecModel(config).eval()
    if calib is None:
        calib = calibration_batch(config.sampling_rate, config.audio_channels,
                                  window_s=2.0 if config.chunk_length_s is None else 1.0,
                                  max_windows=40, seed=seed)
    x, _ = normalise_segments(model, calib)
    audio_rms = calib.pow(2).mean(dim=(1, 2)).sqrt().median().item()
    sub = x[:CALIB_SUBSET]  # conv scales settle on a few windows; codebooks want them all
    if config.norm_type == "weight_norm":
        calibrate_weight_norm_stack(model.encoder, sub)
    else:
        randomise_group_norms(model, gen)
    emb = model.encoder(x)
    init_codebooks_from_data(model, emb, gen)
    q = model.quantizer.decode(model.quantizer.encode(emb, None))
    if config.norm_type == "weight_norm":
        calibrate_weight_norm_stack(model.decoder, q[:CALIB_SUBSET], last_target_rms=audio_rms)
    y = model.decoder(q)
    log(f"  {real_name}{'_tiny' if tiny else ''}: calib {tuple(calib.shape)}, emb std "
        f"{emb.std():.3f}, decoded rms {y.pow(2).mean().sqrt():.4f} (input rms {audio_rms:.4f}"
        f"{', normalised input' if config.normalize else ''})")
    return model, calib


# ----------------------------------------------------------------------------------------------
# Saving


def drop_keys_from_safetensors(path, predicate):
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if not predicate(k)}
    save_file(tensors, path, metadata=meta)


def to_alt_weight_norm_names(key):
    """parametrizations.weight.original0/1 <-> weight_g/weight_v (both spellings exist on the Hub)."""
    if key.endswith(".parametrizations.weight.original0"):
        return key[: -len(".parametrizations.weight.original0")] + ".weight_g"
    if key.endswith(".parametrizations.weight.original1"):
        return key[: -len(".parametrizations.weight.original1")] + ".weight_v"
    if key.endswith(".weight_g"):
        return key[: -len(".weight_g")] + ".parametrizations.weight.original0"
    if key.endswith(".weight_v"):
        return key[: -len(".weight_v")] + ".parametrizations.weight.original1"
    return key


def write_alt_names_copy(src_dir, dst_dir):
    os.makedirs(dst_dir, exist_ok=True)
    shutil.copy(os.path.join(src_dir, "config.json"), os.path.join(dst_dir, "config.json"))
    with safe_open(os.path.join(src_dir, "model.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {to_alt_weight_norm_names(k): f.get_tensor(k) for k in f.keys()}
    save_file(tensors, os.path.join(dst_dir, "model.safetensors"), metadata=meta)


def save_model(model, out_dir, keep_training_state=False):
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir)
    if not keep_training_state:
        drop_keys_from_safetensors(os.path.join(out_dir, "model.safetensors"),
                                   lambda k: k.endswith((".codebook.embed_avg",
                                                         ".codebook.cluster_size")))


def weight_norm_spelling(path):
    with safe_open(path, "pt") as f:
        keys = list(f.keys())
    if any(k.endswith("parametrizations.weight.original0") for k in keys):
        return "parametrizations.weight.original0/1"
    if any(k.endswith(".weight_g") for k in keys):
        return "weight_g/weight_v"
    return "none (no weight norm)"


@torch.no_grad()
def check_reload(model, out_dir, probe):
    reloaded = EncodecModel.from_pretrained(out_dir).eval()
    bw = model.config.target_bandwidths[-1]
    a = model.encode(probe, bandwidth=bw)
    b = reloaded.encode(probe, bandwidth=bw)
    assert torch.equal(a.audio_codes, b.audio_codes), f"{out_dir}: codes differ after reload"
    ya = model.decode(a.audio_codes, a.audio_scales, last_frame_pad_length=a.last_frame_pad_length)[0]
    yb = reloaded.decode(b.audio_codes, b.audio_scales, last_frame_pad_length=b.last_frame_pad_length)[0]
    assert torch.equal(ya, yb), f"{out_dir}: decoded audio differs after reload"


@torch.no_grad()
def distinct_codes_report(model, calib):
    bw = model.config.target_bandwidths[-1]
    x = calib if model.config.chunk_length_s is None else calib[..., : model.config.chunk_length]
    codes = model.encode(x, bandwidth=bw).audio_codes  # [chunks, B, K, T]
    per_q = [int(codes[:, :, q].unique().numel()) for q in range(codes.shape[2])]
    return per_q, int(codes[:, :, 0].numel())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=MODELS_DIR)
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    # The golden excerpts must not be in the codebooks' training material.
    from make_encodec_goldens import GOLDEN_MUSIC_REGIONS

    report = {}
    for real_name in REAL_CONFIGS:
        cfg = make_config(real_name)
        calib = calibration_batch(cfg.sampling_rate, cfg.audio_channels,
                                  window_s=2.0 if cfg.chunk_length_s is None else 1.0,
                                  max_windows=40, seed=TINY_SEEDS[real_name],
                                  avoid=GOLDEN_MUSIC_REGIONS)
        model, calib = build_calibrated_model(real_name, calib=calib)
        out_dir = os.path.join(args.out, tiny_name(real_name))
        save_model(model, out_dir)
        probe = calib[:1, :, : int(0.7 * cfg.sampling_rate)]
        check_reload(model, out_dir, probe)
        per_q, n = distinct_codes_report(model, calib)
        spelling = weight_norm_spelling(os.path.join(out_dir, "model.safetensors"))
        print(f"  wrote {out_dir}: weight-norm keys {spelling}; distinct codes per codebook over "
              f"{n} calibration frames: {per_q}")
        report[tiny_name(real_name)] = dict(weight_norm_keys=spelling, distinct_codes=per_q,
                                            frames=n)
        if real_name == "encodec_24khz":
            alt_dir = os.path.join(args.out, tiny_name(real_name) + "_altnames")
            write_alt_names_copy(out_dir, alt_dir)
            check_reload(model, alt_dir, probe)
            print(f"  wrote {alt_dir}: weight-norm keys "
                  f"{weight_norm_spelling(os.path.join(alt_dir, 'model.safetensors'))}")
    print(json.dumps(report))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
