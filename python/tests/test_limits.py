"""The bad inputs of docs/LIMITS.md through Python: each raises ValueError (or the model error of a
hostile config) with the C API's message, or Python's own where the package checks first (seeds outside uint64,
which cannot reach the C API)."""
import json
import math
import os
import shutil

import numpy as np
import pytest

import musicgen
from conftest import model_path

# Passed through to the C API, which refuses them with these messages.
C_REFUSED = [
    (dict(duration=1e9), "duration must be at most 3600 seconds (one hour), found 1e+09"),
    (dict(cfg=1e38), "guidance_scale must be in [0, 100], found 1e+38"),
    (dict(temperature=1e30), "temperature must be in [0, 100], found 1e+30"),
    (dict(drop_prompt=True), "drop_prompt needs a prompt audio (continuation): there is no prompt to drop"),
    # NaN and infinities too: the package only checks types, so the messages are the C API's.
    (dict(cfg=math.nan), "guidance_scale must be in [0, 100], found nan"),
    (dict(cfg=math.inf), "guidance_scale must be in [0, 100], found inf"),
    (dict(temperature=math.nan), "temperature must be in [0, 100], found nan"),
    (dict(top_p=math.nan), "top_p must be in [0, 1], found nan"),
    (dict(duration=math.nan), "duration must be > 0 seconds"),
    (dict(extend_stride=math.nan), "extend_stride_s must be > 0 s, found nan"),
]

# Refused by the package before the C API sees them (a seed outside uint64 cannot reach it).
PY_REFUSED = [
    (dict(seed=-1), "seed must be >= 0"),
    (dict(seed=2**64), "seed must be <= 18446744073709551615"),
]


@pytest.mark.parametrize("kwargs,message", C_REFUSED + PY_REFUSED)
def test_generate_refuses(tiny, kwargs, message):
    with pytest.raises(ValueError) as e:
        tiny.generate("x", **{"duration": 0.2, **kwargs})
    assert message in str(e.value)


def test_nan_chroma_refused(melody_tiny):
    chroma = np.zeros((40, 12), np.float32)
    chroma[3, 5] = np.nan
    with pytest.raises(ValueError, match="chroma holds NaN or infinite values"):
        melody_tiny.generate("x", duration=0.2, chroma=chroma)


@pytest.mark.parametrize("cls,name", [(musicgen.MusicGen, "musicgen_tiny"), (musicgen.EnCodec, "encodec_24khz_tiny")])
def test_threads_capped(cls, name):
    with pytest.raises(ValueError, match=r"n_threads must be at most 1024 \(0: all cores\), found 100000"):
        cls(model_path(name), device="cpu", threads=100000)


def test_nan_bandwidth_refused(codec24):
    audio = np.zeros((1, 2400), np.float32)
    with pytest.raises(ValueError):
        codec24.encode(audio, 24000, bandwidth=math.nan)


@pytest.mark.parametrize("section,key,value,message", [
    ("decoder", "num_codebooks", 0, "key 'decoder.num_codebooks' in "),
    ("decoder", "num_attention_heads", 0, "key 'decoder.num_attention_heads' in "),
    ("audio_encoder", "sampling_rate", 2147483647, "key 'audio_encoder.sampling_rate' in "),
])
def test_hostile_config(tmp_path, section, key, value, message):
    src = model_path("musicgen_tiny")
    for f in os.listdir(src):
        if f != "config.json":
            os.symlink(os.path.join(src, f), tmp_path / f)
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg[section][key] = value
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(musicgen.ModelError) as e:
        musicgen.MusicGen(tmp_path, device="cpu")
    assert message in str(e.value) and "must be in [" in str(e.value)
