"""Argument checks of the Python package: a clear TypeError or ValueError, naming the argument,
before anything reaches the C library; and the name -> C enum tables of the choices."""
from __future__ import annotations

import math
import numbers
import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core

PathLike = Union[str, "os.PathLike[str]"]
AudioLike = Union[np.ndarray, Sequence[float], Sequence[Sequence[float]]]

_DEVICES = {"auto": 0, "cpu": 1, "cuda": 2}
_WEIGHTS = {"f32": 0, "f16": 1, "bf16": 2, "q8": 3, "q4": 4}
_NORMALIZE = {"peak": 0, "loudness": 1, "clip": 2, "none": 3}
_SUBTYPES = {"pcm16": 0, "pcm24": 1, "float": 2}


def _choice(name: str, value: str, options: dict) -> int:
    if not isinstance(value, str) or value.lower() not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, not {value!r}")
    return options[value.lower()]


def _number(name: str, value: Any, *, low: Optional[float] = None, high: Optional[float] = None,
            low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, not {value!r}")
    if low is not None and (v <= low if low_open else v < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, not {value!r}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high:g}, not {value!r}")
    return v


def _integer(name: str, value: Any, *, low: int = 0, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    v = int(value)
    if v < low:
        raise ValueError(f"{name} must be >= {low}, not {v}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high}, not {v}")
    return v


# The generation settings the C API checks itself (duration, extend_stride, top_k, top_p,
# temperature, cfg) are only type-checked here: their values go to the C API, whose messages (the
# same as musicgen-cli's and C callers', docs/LIMITS.md) come back as ValueError.
def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    return float(value)


def _c_int(name: str, value: Any) -> int:
    return _integer(name, value, low=-2**31, high=2**31 - 1)  # what a C int holds


def _threads(threads: Optional[int]) -> int:
    return 0 if threads is None else _integer("threads", threads, low=1)


def _path(name: str, value: Any) -> str:
    try:
        return os.fsdecode(os.fspath(value))
    except TypeError:
        raise TypeError(f"{name} must be a path (str or os.PathLike), not {type(value).__name__}") from None


def _audio(name: str, audio: Any) -> np.ndarray:
    """Any array-like of numbers -> float32 C-contiguous [channels, samples]."""
    try:
        a = np.asarray(audio, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a float32-convertible array: {e}") from None
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D [samples] or 2-D [channels, samples], not {a.ndim}-D {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {a.shape}")
    if a.shape[0] > a.shape[1]:
        raise ValueError(f"{name} has shape {a.shape}: more channels than samples; audio is planar "
                         f"[channels, samples] (transpose an interleaved [samples, channels] array)")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite samples")
    return np.ascontiguousarray(a)


def _rate(name: str, value: Any) -> int:
    return _integer(name, value, low=1)


def _audio_input(name: str, value: Any, rate: Optional[int], default_rate: int) -> Tuple[np.ndarray, int]:
    """A path (read with the library), an (array, rate) pair, or an array at `rate`."""
    if isinstance(value, (str, bytes, os.PathLike)):
        if rate is not None:
            raise ValueError(f"{name}_sr is for arrays; a file says its own rate")
        a, r = _core.read_audio(_path(name, value))
        return a, r
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], numbers.Integral):
        return _audio(name, value[0]), _rate(f"{name} rate", value[1])
    return _audio(name, value), _rate(f"{name}_sr", default_rate if rate is None else rate)
