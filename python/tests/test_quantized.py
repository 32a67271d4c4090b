"""Quantized decoder weights from Python: MusicGen(weights="q8"/"q4") converts at load, and a
snapshot written by quantize_snapshot() gives the same audio and refuses another scheme."""
import numpy as np
import pytest

import musicgen
from conftest import model_path


@pytest.mark.parametrize("weights", ["q8", "q4"])
def test_snapshot_equals_load_time_conversion(tmp_path, weights):
    src = model_path("musicgen_tiny")
    dst = tmp_path / f"tiny-{weights}"
    musicgen.quantize_snapshot(src, dst, weights=weights)
    converted = musicgen.MusicGen(src, device="cpu", weights=weights, threads=1)
    snapshot = musicgen.MusicGen(str(dst), device="cpu", weights=weights, threads=1)
    a, _ = converted.generate("80s pop track", duration=0.5, seed=3)
    b, _ = snapshot.generate("80s pop track", duration=0.5, seed=3)
    assert np.array_equal(a, b)


def test_snapshot_refuses_another_scheme(tmp_path):
    dst = tmp_path / "tiny-q8"
    musicgen.quantize_snapshot(model_path("musicgen_tiny"), dst, weights="q8")
    with pytest.raises(musicgen.ModelError, match="quantized snapshot"):
        musicgen.MusicGen(str(dst), device="cpu", weights="q4", threads=1)


def test_unknown_scheme_is_refused(tmp_path):
    with pytest.raises(ValueError):
        musicgen.quantize_snapshot(model_path("musicgen_tiny"), tmp_path / "x", weights="q5")
