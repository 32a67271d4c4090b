"""LoRA adapters from Python: MusicGen(path, lora=DIR, lora_scale=...) merges a PEFT adapter at load
(the committed tiny adapter, tests/data/models/musicgen_tiny_lora; parity with PEFT is pinned by
tests/parity/lora_parity_test.cpp)."""
import numpy as np
import pytest

import musicgen
from conftest import MODELS, model_path


def greedy(model):
    audio, _ = model.generate("80s pop track", duration=0.3, greedy=True)
    return audio


def test_adapter_changes_the_output_and_scale_zero_is_the_base(tiny):
    adapter = str(MODELS / "musicgen_tiny_lora")
    base = greedy(tiny)
    lora = greedy(musicgen.MusicGen(model_path("musicgen_tiny"), device="cpu", threads=1, lora=adapter))
    zero = greedy(musicgen.MusicGen(model_path("musicgen_tiny"), device="cpu", threads=1, lora=adapter,
                                    lora_scale=0.0))
    assert not np.array_equal(lora, base)
    assert np.array_equal(zero, base)


def test_adapter_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="LoRA adapter folder"):
        musicgen.MusicGen(model_path("musicgen_tiny"), device="cpu", lora=tmp_path / "none")
    with pytest.raises(musicgen.ModelError, match="made for another model"):
        musicgen.MusicGen(model_path("musicgen_melody_tiny"), device="cpu", lora=MODELS / "musicgen_tiny_lora")
    with pytest.raises(ValueError, match="lora_scale needs lora"):
        musicgen.MusicGen(model_path("musicgen_tiny"), device="cpu", lora_scale=0.5)
    with pytest.raises(ValueError, match="lora_scale"):
        musicgen.MusicGen(model_path("musicgen_tiny"), device="cpu", lora=MODELS / "musicgen_tiny_lora",
                          lora_scale=float("nan"))
