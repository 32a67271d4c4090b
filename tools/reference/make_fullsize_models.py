#!/usr/bin/env python3
"""Full-size random-weight models for benchmarks (real widths, real tensor shapes, HF layout).

Writes into tools/reference/local/ (git-ignored: NEVER commit these, they are 90-240 MB each):
  encodec_24khz_random/   facebook/encodec_24khz config, 93 MB of f32 tensors
  encodec_32khz_random/   facebook/encodec_32khz config (MusicGen's codec), 236 MB
  <name>-check.safetensors  the reference's numbers on 4 s of real music for tests/slow/encodec_fullsize_test
  (musicgen-small: make_fullsize_musicgen.py.)

The weights use the same calibrated random init as the tiny test models (make_encodec_models.py),
on a few seconds of real music, so benchmark activations look like a trained model's in scale.
Unlike the tiny models every buffer is kept (embed_avg, cluster_size), as in the Hub files.

Run: tools/reference/.venv/bin/python tools/reference/make_fullsize_models.py [--only NAME ...] [--check-only]
"""

import argparse
import os
import shutil
import sys
import time

import julius
import soundfile as sf
import torch
from safetensors.torch import save_file
from transformers import EncodecModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_encodec_models import (build_calibrated_model, calibration_batch,  # noqa: E402
                                 make_config, save_model, weight_norm_spelling)

LOCAL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "local")


def build_encodec(real_name, out_dir):
    cfg = make_config(real_name, tiny=False)
    # A full-size SEANet on 2 CPU cores: calibrate on 6 x 1 s (codebooks then repeat frames, with
    # jitter; fine for a benchmark).
    calib = calibration_batch(cfg.sampling_rate, cfg.audio_channels, window_s=1.0, max_windows=6,
                              seed=7)
    model, _ = build_calibrated_model(real_name, tiny=False, calib=calib, seed=7)
    save_model(model, out_dir, keep_training_state=True)
    return model


BUILDERS = {
    "encodec_24khz_random": lambda out: build_encodec("encodec_24khz", out),
    "encodec_32khz_random": lambda out: build_encodec("encodec_32khz", out),
}


@torch.no_grad()
def check_loads(out_dir):
    """Loads the folder back with transformers and runs one encode/decode round trip."""
    model = EncodecModel.from_pretrained(out_dir).eval()
    cfg = model.config
    x = 0.1 * torch.randn(1, cfg.audio_channels, cfg.sampling_rate // 2)
    enc = model.encode(x, bandwidth=cfg.target_bandwidths[-1])
    y = model.decode(enc.audio_codes, enc.audio_scales)[0]
    assert torch.isfinite(y).all(), f"{out_dir}: non-finite output"
    n_params = sum(p.numel() for p in model.state_dict().values())
    return n_params, tuple(enc.audio_codes.shape), float(y.pow(2).mean().sqrt())


CHECK_AUDIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/data/audio/electro_1.mp3")
CHECK_OFFSET_S, CHECK_SECONDS = 2.0, 4.0


@torch.no_grad()
def write_check(out_dir, check_path):
    """transformers' codes (lowest and highest bandwidth) and decoded audio for 4 s of real music at
    the model's rate and channels (the input is stored too, so the C++ test needs no resampler)."""
    model = EncodecModel.from_pretrained(out_dir).eval()
    cfg = model.config
    wav, sr = sf.read(CHECK_AUDIO, dtype="float32", always_2d=True)
    wav = torch.from_numpy(wav.T.copy())[:, int(CHECK_OFFSET_S * sr):int((CHECK_OFFSET_S + CHECK_SECONDS + 1) * sr)]
    wav = julius.resample_frac(wav, int(sr), int(cfg.sampling_rate))
    wav = wav.mean(0, keepdim=True) if cfg.audio_channels == 1 else wav[: cfg.audio_channels]
    # Not a multiple of the hop: the last frame is a partial one.
    wav = wav[:, : int(CHECK_SECONDS * cfg.sampling_rate) - 77].contiguous()
    tensors = {"audio": wav}
    for name, bw in (("low", cfg.target_bandwidths[0]), ("high", cfg.target_bandwidths[-1])):
        enc = model.encode(wav[None], bandwidth=bw)
        assert enc.audio_scales[0] is None, "check files are for the unsegmented models"
        codes = enc.audio_codes[0, 0]
        tensors[f"codes_{name}"] = codes.to(torch.int32).contiguous()
        tensors[f"decoded_{name}"] = model.decode(enc.audio_codes, enc.audio_scales)[0][0].contiguous()
    save_file(tensors, check_path)
    print(f"check: {tuple(wav.shape)} audio, codes {tuple(tensors['codes_high'].shape)} -> {check_path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=sorted(BUILDERS), help="build just these")
    ap.add_argument("--out", default=LOCAL_DIR)
    ap.add_argument("--check-only", action="store_true", help="only (re)write the check files of built models")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    for name in args.only or BUILDERS:
        out_dir = os.path.join(args.out, name)
        check_path = os.path.join(args.out, name + "-check.safetensors")
        if args.check_only:
            write_check(out_dir, check_path)
            continue
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        t0 = time.time()
        BUILDERS[name](out_dir)
        n, codes_shape, rms = check_loads(out_dir)
        size = os.path.getsize(os.path.join(out_dir, "model.safetensors"))
        print(f"{name}: {n} tensor elements, {size / 1e6:.1f} MB, weight-norm keys "
              f"{weight_norm_spelling(os.path.join(out_dir, 'model.safetensors'))}, reload OK "
              f"(codes {codes_shape}, decoded rms {rms:.3f}), {time.time() - t0:.0f} s")
        write_check(out_dir, check_path)


if __name__ == "__main__":
    main()
