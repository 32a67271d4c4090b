#!/usr/bin/env python3
"""Goldens for codec/audio_file, codec/resample and codec/convert_audio.

Writes tests/data/golden/audio/:
  <stem>.safetensors   one per file of ../shared/data/audio (decoded with python soundfile):
      decoded.info        i64 [3]   sample_rate, channels, frames
      decoded.stats       f32 [C,2] per channel sum and sum of squares (accumulated in float64)
      decoded.excerpt     f32 [C,E] frames [decoded.offset, +E) from the middle of the file
      decoded.offset      i64 [1]
      For each output <tag> (resample_<rate> = julius.resample_frac(x, sr, rate) per channel;
      convert_32000_1 = audiocraft convert_audio(x, sr, 32000, 1)):
      <tag>.info          i64 [3]   rate, channels, length
      <tag>.stats         f32 [C,2] sum, sum of squares over the full output
      <tag>.every         f32 [C,M] output[:, ::stride]
      <tag>.stride        i64 [1]
      <tag>.head/.tail    f32 [C,H] first/last H samples (the replicate-padding edges)
  traps.safetensors    the synthetic trap cases (see make_traps), inputs stored when small.

Full decodes and outputs would be tens of MB; the stride samples, edges and float64 checksums
pin the same things (length, alignment, every-sample drift) in ~1 MB.

Run: tools/reference/.venv/bin/python tools/reference/make_audio_goldens.py
"""
import math
import os
import sys

import julius
import numpy as np
import soundfile as sf
import torch
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUDIO = os.path.join(ROOT, "..", "shared", "data", "audio")
OUT = os.path.join(ROOT, "tests", "data", "golden", "audio")

TARGET_RATES = [32000, 24000, 48000]
EXCERPT = 1024      # decoded frames kept
EVERY_TARGET = 1500  # about this many strided samples per output channel
EDGE = 256          # head/tail samples per output channel


def convert_audio_channels(wav: torch.Tensor, channels: int) -> torch.Tensor:
    """audiocraft/data/audio_utils.py convert_audio_channels (audiocraft 1.x), verbatim logic."""
    *shape, src_channels, length = wav.shape
    if src_channels == channels:
        pass
    elif channels == 1:
        wav = wav.mean(dim=-2, keepdim=True)
    elif src_channels == 1:
        wav = wav.expand(*shape, channels, length)
    elif src_channels >= channels:
        wav = wav[..., :channels, :]
    else:
        raise ValueError("The audio file has less channels than requested but is not mono.")
    return wav


def convert_audio(wav: torch.Tensor, from_rate, to_rate, to_channels) -> torch.Tensor:
    """audiocraft/data/audio_utils.py convert_audio: resample first, then channels."""
    wav = julius.resample_frac(wav, int(from_rate), int(to_rate))
    return convert_audio_channels(wav, to_channels)


def stats(y: np.ndarray) -> np.ndarray:
    """Per-channel sum and sum of squares, accumulated in float64 and stored as float32 (the C++
    safetensors reader has no F64; 6e-8 relative precision is far below the 1e-5 tolerance)."""
    y64 = y.astype(np.float64)
    return np.stack([y64.sum(axis=-1), (y64 * y64).sum(axis=-1)], axis=-1).astype(np.float32)


def add_output(out: dict, tag: str, y: torch.Tensor, rate: int):
    y = y.contiguous().numpy().astype(np.float32)
    length = y.shape[-1]
    stride = max(1, length // EVERY_TARGET)
    out[f"{tag}.info"] = np.array([rate, y.shape[0], length], dtype=np.int64)
    out[f"{tag}.stats"] = stats(y)
    out[f"{tag}.every"] = np.ascontiguousarray(y[:, ::stride])
    out[f"{tag}.stride"] = np.array([stride], dtype=np.int64)
    out[f"{tag}.head"] = np.ascontiguousarray(y[:, :EDGE])
    out[f"{tag}.tail"] = np.ascontiguousarray(y[:, -EDGE:])


def make_file_golden(path: str) -> dict:
    data, sr = sf.read(path, dtype="float32", always_2d=True)  # [frames, C]
    x = torch.from_numpy(np.ascontiguousarray(data.T))          # [C, frames]
    frames = x.shape[-1]
    offset = frames // 2
    out = {
        "decoded.info": np.array([sr, x.shape[0], frames], dtype=np.int64),
        "decoded.stats": stats(x.numpy()),
        "decoded.excerpt": np.ascontiguousarray(x[:, offset:offset + EXCERPT].numpy()),
        "decoded.offset": np.array([offset], dtype=np.int64),
    }
    for rate in TARGET_RATES:
        if rate == sr:
            continue
        add_output(out, f"resample_{rate}", julius.resample_frac(x, sr, rate), rate)
    add_output(out, "convert_32000_1", convert_audio(x, sr, 32000, 1), 32000)
    return out


def sines(n: int, sr: int) -> np.ndarray:
    """The synthetic input the C++ test rebuilds: two sines computed in float64, stored as float32."""
    t = np.arange(n, dtype=np.float64) / sr
    return (0.5 * np.sin(2 * np.pi * 440.0 * t) + 0.25 * np.sin(2 * np.pi * 3000.0 * t + 1.0)).astype(np.float32)


def make_traps() -> dict:
    out = {}
    rng = np.random.default_rng(1234)

    # Output length rounding: julius floors float32(new*n/old), not the exact quotient. For 44.1k ->
    # 32k and n = 90682, 320*n/441 = 65800.9977 rounds to 65801.0 in float32: 65801 samples, not 65800.
    n = 90682
    assert math.floor(np.float32(320 * n / 441)) == 65801 and (320 * n) // 441 == 65800
    y = julius.resample_frac(torch.from_numpy(sines(n, 44100)), 44100, 32000)
    assert y.shape[-1] == 65801
    out["length_rounding.n"] = np.array([n], dtype=np.int64)
    out["length_rounding.output_length"] = np.array([y.shape[-1]], dtype=np.int64)
    out["length_rounding.every"] = np.ascontiguousarray(y.numpy()[::50])
    out["length_rounding.stats"] = stats(y.numpy()[None])[0]
    out["length_rounding.tail"] = np.ascontiguousarray(y.numpy()[-EDGE:])

    # Short inputs: fewer samples than one kernel (511 taps for 44.1k->32k), a single sample, and an
    # input too short to give any output (1 sample, 3 -> 2: floor(2/3) = 0).
    for name, (old, new, length) in {
        "short_44100_32000": (44100, 32000, 10),
        "short_16000_48000": (16000, 48000, 3),
        "short_48000_44100": (48000, 44100, 1),
        "short_48000_32000": (48000, 32000, 1),
    }.items():
        x = rng.uniform(-1, 1, size=length).astype(np.float32)
        y = julius.resample_frac(torch.from_numpy(x), old, new)
        out[f"{name}.rates"] = np.array([old, new], dtype=np.int64)
        out[f"{name}.input"] = x
        # safetensors cannot hold an empty tensor in every reader: store length and values padded by one.
        out[f"{name}.output_length"] = np.array([y.shape[-1]], dtype=np.int64)
        out[f"{name}.output"] = np.concatenate([y.numpy(), np.zeros(1, np.float32)])

    # Pairs whose gcd reduces them to tiny fractions (2/1, 1/3, 3/2, 1/2) and one that stays large
    # after reduction (44100 -> 48000 = 147 -> 160).
    for old, new in [(96000, 48000), (16000, 48000), (48000, 32000), (22050, 44100), (44100, 48000)]:
        x = rng.uniform(-1, 1, size=4000).astype(np.float32)
        y = julius.resample_frac(torch.from_numpy(x), old, new)
        out[f"pair_{old}_{new}.input"] = x
        out[f"pair_{old}_{new}.output"] = y.numpy()

    # output_length and full: the explicit length and the ceil of float32(new*n/old).
    x = rng.uniform(-1, 1, size=1001).astype(np.float32)
    out["options.input"] = x
    out["options.full"] = julius.resample_frac(torch.from_numpy(x), 44100, 16000, full=True).numpy()
    out["options.length_100"] = julius.resample_frac(torch.from_numpy(x), 44100, 16000, output_length=100).numpy()

    # The kernels themselves (julius's self.kernel, [new, taps]) for two small pairs.
    for old, new in [(48000, 32000), (16000, 48000)]:
        r = julius.ResampleFrac(old, new)
        out[f"kernel_{old}_{new}"] = r.kernel.view(r.new_sr, -1).numpy()
    return out


def main():
    if not os.path.isdir(AUDIO):
        sys.exit(f"no shared audio at {AUDIO}")
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in sorted(os.listdir(AUDIO)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in (".mp3", ".wav", ".flac", ".ogg"):
            continue
        tensors = make_file_golden(os.path.join(AUDIO, name))
        save_file(tensors, os.path.join(OUT, f"{stem}.safetensors"), metadata={"source": name})
        print(f"{name}: {', '.join(sorted(k.split('.')[0] for k in tensors if k.endswith('.info')))}")
    save_file(make_traps(), os.path.join(OUT, "traps.safetensors"))
    for f in os.listdir(OUT):
        os.chmod(os.path.join(OUT, f), 0o644)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
