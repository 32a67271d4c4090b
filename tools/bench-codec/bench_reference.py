#!/usr/bin/env python3
"""transformers.EncodecModel encode/decode timing, the reference side of bench-codec.

  bench_reference.py MODEL_DIR AUDIO_FILE [SECONDS=30] [THREADS=2] [REPEATS=2]

Same protocol as bench-codec (main.cpp): the audio is converted to the model's rate/channels
(audiocraft's convert_audio: julius resample, then channels), cut or looped to SECONDS, encoded at
the model's highest bandwidth and decoded; torch.set_num_threads(THREADS); best of REPEATS, as
  RESULT reference <model> encode <s> decode <s>
Run with tools/reference/.venv/bin/python.
"""
import sys
import time

import julius
import soundfile as sf
import torch
from transformers import EncodecModel


def main():
    model_dir, audio = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    repeats = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    torch.set_num_threads(threads)
    model = EncodecModel.from_pretrained(model_dir).eval()
    cfg = model.config
    if hasattr(cfg, "audio_encoder"):
        cfg = cfg.audio_encoder
    try:
        wav, sr = sf.read(audio, dtype="float32", always_2d=True)
        wav = torch.from_numpy(wav.T.copy())
    except RuntimeError:
        import librosa
        w, sr = librosa.load(audio, sr=None, mono=False)
        wav = torch.from_numpy(w if w.ndim == 2 else w[None])
    wav = julius.resample_frac(wav, int(sr), int(cfg.sampling_rate))
    if cfg.audio_channels == 1:
        wav = wav.mean(0, keepdim=True)
    elif wav.shape[0] == 1:
        wav = wav.expand(cfg.audio_channels, -1)
    else:
        wav = wav[: cfg.audio_channels]
    n = int(seconds * cfg.sampling_rate)
    wav = wav.repeat(1, (n + wav.shape[-1] - 1) // wav.shape[-1])[:, :n].contiguous()[None]
    bw = cfg.target_bandwidths[-1]
    best_enc = best_dec = float("inf")
    with torch.no_grad():
        for r in range(repeats):
            t0 = time.perf_counter()
            enc = model.encode(wav, bandwidth=bw)
            t1 = time.perf_counter()
            model.decode(enc.audio_codes, enc.audio_scales)
            t2 = time.perf_counter()
            best_enc, best_dec = min(best_enc, t1 - t0), min(best_dec, t2 - t1)
            print(f"run {r}: encode {t1 - t0:.3f} s, decode {t2 - t1:.3f} s", file=sys.stderr)
    name = {24000: "encodec_24khz", 32000: "encodec_32khz", 48000: "encodec_48khz"}.get(cfg.sampling_rate, "?")
    print(f"RESULT reference {name} encode {best_enc:.4f} decode {best_dec:.4f}")


if __name__ == "__main__":
    main()
