#!/usr/bin/env python3
"""Goldens for conditioning/chroma (MusicGen-melody's chroma) and conditioning/chroma_filterbank.

The reference is transformers' MusicgenMelodyFeatureExtractor (the HF port of audiocraft's
ChromaExtractor). The extractor overwrites its pre-argmax chroma in place with the one-hot, so the
pre-argmax values are recomputed here with the extractor's own objects (its Spectrogram and filter
bank) and the same three lines; the script asserts that their argmax equals the extractor output.

Writes tests/data/golden/chroma/:
  filter_bank.safetensors
      librosa   f32 [12, 8193]  librosa.filters.chroma(sr=32000, n_fft=16384, tuning=0, n_chroma=12);
                                 the script asserts that transformers.audio_utils.chroma_filter_bank(...)
                                 .float() (the extractor's bank) equals it bit for bit
  <stem>.safetensors, one per file of ../shared/data/audio. The input is that file decoded with
  python soundfile and converted as audiocraft does (julius resample to 32 kHz, then mean to mono):
  the C++ test feeds codec/read_audio + codec/convert_audio, which have their own parity goldens.
      input.stats  f32 [3]      length, sum, sum of squares of the 32 kHz mono input (float64 sums)
      features     f32 [T, 12]  pre-argmax chroma (inf-normalised per frame)
      one_hot      f32 [T, 12]  the extractor's output
  synthetic.safetensors: inputs small enough to store, fed to the extractor at 32 kHz:
      bach.input   f32 [N]      the exact 32 kHz mono bach input (so one real case does not depend on
                                 the decoder or the resampler at all)
      bach.features / bach.one_hot
      bach_x4.*                 bach.input tiled 4 times (40 s): the extractor truncates to 30 s
                                 (960000 samples) BEFORE the STFT; the input is rebuilt by the test
      short.input  f32 [9999]   shorter than n_fft: zero-padded to 16384 (odd pad: 3192 left, 3193 right)
      short.features / short.one_hot
      hop_edge.input f32 [20480] 16384 + 4096: exactly one extra hop (frames = 1 + N/4096 = 6)
      silence.features / .one_hot  1000 zero samples: every frame bin 0 (the null melody)

Run: tools/reference/.venv/bin/python tools/reference/make_chroma_goldens.py
"""
import os
import sys

import librosa
import numpy as np
import soundfile as sf
import torch
from safetensors.numpy import save_file
from transformers import MusicgenMelodyFeatureExtractor
from transformers.audio_utils import chroma_filter_bank

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_audio_goldens import convert_audio  # noqa: E402  audiocraft's convert_audio (julius)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUDIO = os.path.join(ROOT, "..", "shared", "data", "audio")
OUT = os.path.join(ROOT, "tests", "data", "golden", "chroma")

FE = MusicgenMelodyFeatureExtractor()  # the Hub preprocessor_config.json values are its defaults


def features_and_one_hot(x: np.ndarray):
    """x: float32 [N] at 32 kHz. Returns (pre-argmax chroma [T,12], extractor one-hot [T,12])."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    one_hot = FE(x, sampling_rate=32000, return_tensors="pt")["input_features"][0].numpy()
    # Same steps as MusicgenMelodyFeatureExtractor.__call__ + _torch_extract_fbank_features, stopped
    # before the argmax: truncate to n_samples, pad short input, spectrogram, filter bank, inf-norm.
    w = torch.from_numpy(x[: FE.n_samples].copy())[None, :]
    if w.shape[-1] < FE.n_fft:
        pad = FE.n_fft - w.shape[-1]
        w = torch.nn.functional.pad(w, (pad // 2, pad // 2 + pad % 2), "constant", 0)
    spec = FE.spectrogram(w)
    raw = torch.einsum("cf, ...ft->...ct", FE.chroma_filters, spec)
    norm = torch.nn.functional.normalize(raw, p=float("inf"), dim=-2, eps=1e-6).transpose(1, 2)[0]
    feats = norm.numpy().astype(np.float32)
    recomputed = np.eye(12, dtype=np.float32)[feats.argmax(-1)]
    assert recomputed.shape == one_hot.shape and np.array_equal(recomputed, one_hot), \
        "pre-argmax recomputation disagrees with the extractor"
    return np.ascontiguousarray(feats), np.ascontiguousarray(one_hot.astype(np.float32))


def input_stats(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return np.array([x.shape[0], x64.sum(), (x64 * x64).sum()], dtype=np.float32)


def load_32k_mono(path: str) -> np.ndarray:
    data, sr = sf.read(path, dtype="float32", always_2d=True)  # [frames, C]
    x = torch.from_numpy(np.ascontiguousarray(data.T))
    return convert_audio(x, sr, 32000, 1)[0].numpy().astype(np.float32)


def add_case(out: dict, tag: str, x: np.ndarray, store_input: bool):
    feats, one_hot = features_and_one_hot(x)
    if store_input:
        out[f"{tag}.input"] = np.ascontiguousarray(x, dtype=np.float32)
    out[f"{tag}.features"] = feats
    out[f"{tag}.one_hot"] = one_hot
    return feats


def near_ties(feats: np.ndarray, rel: float = 1e-5) -> int:
    top2 = np.sort(feats, axis=-1)[:, -2:]
    return int(np.sum(top2[:, 1] - top2[:, 0] <= rel * np.maximum(top2[:, 1], 1e-30)))


def main():
    if not os.path.isdir(AUDIO):
        sys.exit(f"no shared audio at {AUDIO}")
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    fb_librosa = librosa.filters.chroma(sr=32000, n_fft=16384, tuning=0.0, n_chroma=12).astype(np.float32)
    fb_hf = torch.from_numpy(chroma_filter_bank(sampling_rate=32000, num_frequency_bins=16384, tuning=0,
                                                num_chroma=12)).float().numpy()
    assert np.allclose(fb_hf, FE.chroma_filters.numpy(), rtol=0, atol=0)
    diff = np.abs(fb_librosa - fb_hf).max()
    print(f"filter bank: librosa vs HF max abs diff {diff:.3g}")
    assert diff == 0, "HF's chroma bank is no longer librosa's: store both and test against HF's"
    save_file({"librosa": fb_librosa}, os.path.join(OUT, "filter_bank.safetensors"))

    for name in sorted(os.listdir(AUDIO)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in (".mp3", ".wav", ".flac", ".ogg"):
            continue
        x = load_32k_mono(os.path.join(AUDIO, name))
        feats, one_hot = features_and_one_hot(x)
        save_file({"input.stats": input_stats(x), "features": feats, "one_hot": one_hot},
                  os.path.join(OUT, f"{stem}.safetensors"), metadata={"source": name})
        print(f"{name}: {x.shape[0]} samples, {feats.shape[0]} frames, near ties {near_ties(feats)}")

    syn = {}
    bach = load_32k_mono(os.path.join(AUDIO, "bach.mp3"))
    add_case(syn, "bach", bach, store_input=True)
    f4 = add_case(syn, "bach_x4", np.tile(bach, 4), store_input=False)
    assert f4.shape[0] == 235, f4.shape
    rng = np.random.default_rng(5)
    t = np.arange(9999) / 32000.0
    short = (0.3 * np.sin(2 * np.pi * 261.6256 * t) + 0.05 * rng.standard_normal(9999)).astype(np.float32)
    add_case(syn, "short", short, store_input=True)
    t = np.arange(20480) / 32000.0
    edge = (0.2 * np.sin(2 * np.pi * 391.995 * t) + 0.1 * np.sin(2 * np.pi * 659.255 * t)
            + 0.02 * rng.standard_normal(20480)).astype(np.float32)
    add_case(syn, "hop_edge", edge, store_input=True)
    add_case(syn, "silence", np.zeros(1000, dtype=np.float32), store_input=False)
    save_file(syn, os.path.join(OUT, "synthetic.safetensors"))

    for f in os.listdir(OUT):
        os.chmod(os.path.join(OUT, f), 0o644)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
