"""EnCodec from Python: the codec model (encode/decode, .ecdc files and bytes) and its codes."""
from __future__ import annotations

import os
from typing import Any, Optional, Tuple, Union

import numpy as np

from . import _core
from ._args import _DEVICES, _SUBTYPES, AudioLike, PathLike, _audio, _choice, _integer, _number, _path, _rate, _threads
from ._pool import _Pool


class Codes:
    """The codes of one encoded clip.

    Attributes:
        segments: one int64 array [codebooks, frames] per segment (one segment, except for
            encodec_48khz, which encodes 1 s segments).
        scales: each segment's renormalisation scale (1.0 for models that do not normalise).
        audio_length: samples per channel the codes decode to.
        num_codebooks: codebooks per frame.

    ``np.asarray(codes)`` gives the codes of a one-segment clip as int64 [codebooks, frames].
    """

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.segments = [handle.segment(i) for i in range(handle.num_segments)]
        self.scales = [handle.scale(i) for i in range(handle.num_segments)]
        self.audio_length: int = handle.audio_length
        self.num_codebooks: int = handle.num_codebooks

    @classmethod
    def from_array(cls, codes: Any, audio_length: int = 0) -> "Codes":
        """Codes of one segment from an integer array [codebooks, frames] (audio_length 0: frames
        times the model's hop length)."""
        a = np.asarray(codes)
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(f"codes must be [codebooks, frames], not {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"codes must be integers, not {a.dtype}")
        return cls(_core.Codes.create(np.ascontiguousarray(a, dtype=np.int64),
                                      _integer("audio_length", audio_length, low=0)))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if len(self.segments) != 1:
            raise ValueError(f"these codes have {len(self.segments)} segments: use .segments")
        a = self.segments[0]
        return a if dtype is None else a.astype(dtype)

    @property
    def shape(self) -> Tuple[int, int]:
        """[codebooks, frames] of a one-segment clip."""
        return np.asarray(self).shape

    def __repr__(self) -> str:
        frames = sum(s.shape[1] for s in self.segments)
        return (f"Codes(codebooks={self.num_codebooks}, frames={frames}, segments={len(self.segments)}, "
                f"audio_length={self.audio_length})")


class EnCodec:
    """An EnCodec model (24, 32 or 48 kHz snapshot folder, or a MusicGen folder's codec).

    Args:
        path: the snapshot folder (config.json + model.safetensors).
        device: "auto", "cpu" or "cuda".
        threads: CPU threads per call (None: all cores).

    Like MusicGen, one model serves any number of threads (a session each, from a pool).
    """

    def __init__(self, path: PathLike, device: str = "auto", threads: Optional[int] = None) -> None:
        self._threads = _threads(threads)
        self._model = _core.EncodecModel(_path("path", path), _choice("device", device, _DEVICES), self._threads)
        self._pool = _Pool(lambda: _core.EncodecSession(self._model, self._threads))
        self.path = os.fspath(path)

    sample_rate = property(lambda self: self._model.sample_rate, doc="The model's rate in Hz.")
    channels = property(lambda self: self._model.channels, doc="The model's channel count.")
    name = property(lambda self: self._model.name, doc='The .ecdc model name ("encodec_24khz", ...), or "".')
    bandwidths = property(lambda self: list(self._model.bandwidths), doc="Supported bandwidths (kbps), ascending.")

    def __repr__(self) -> str:
        return f"EnCodec({self.path!r}, name={self.name!r}, sample_rate={self.sample_rate}, channels={self.channels})"

    def close(self) -> None:
        """Frees the idle sessions now."""
        self._pool.clear()

    def __enter__(self) -> "EnCodec":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _kbps(self, bandwidth: Optional[float]) -> float:
        if bandwidth is None:
            return 0.0
        b = _number("bandwidth", bandwidth, low=0.0, low_open=True)
        if self.bandwidths and not any(abs(b - x) < 1e-6 for x in self.bandwidths):
            raise ValueError(f"bandwidth {b:g} kbps is not one of this model's: "
                             f"{', '.join(f'{x:g}' for x in self.bandwidths)}")
        return b

    def encode(self, audio: AudioLike, sr: int, bandwidth: Optional[float] = None) -> Codes:
        """Audio float32 [channels, samples] (or [samples]) at ``sr`` Hz -> Codes. Audio at another
        rate or channel count is converted first (as audiocraft's convert_audio). bandwidth: kbps,
        one of ``bandwidths`` (None: the highest)."""
        a = _audio("audio", audio)
        rate = _rate("sr", sr)
        kbps = self._kbps(bandwidth)
        with self._pool.session() as s:
            return Codes(s.encode(a, rate, kbps))

    def decode(self, codes: Union[Codes, np.ndarray], audio_length: int = 0) -> Tuple[np.ndarray, int]:
        """Codes (or an int array [codebooks, frames]) -> (audio float32 [channels, samples], rate).
        audio_length: for an array, the samples per channel it decodes to (0: frames times the
        model's hop length)."""
        if isinstance(codes, Codes):
            c = codes
        else:
            c = Codes.from_array(codes, audio_length)
        with self._pool.session() as s:
            return s.decode(c._handle)

    def compress(self, path: PathLike, out: PathLike, bandwidth: Optional[float] = None) -> None:
        """Audio file (any format libsndfile reads, any rate/channels) -> .ecdc file."""
        kbps = self._kbps(bandwidth)
        with self._pool.session() as s:
            s.compress_file(_path("path", path), _path("out", out), kbps)

    def decompress(self, path: PathLike, out: PathLike, subtype: str = "pcm16") -> None:
        """.ecdc file -> audio file (format from the extension; subtype "pcm16", "pcm24" or "float")."""
        st = _choice("subtype", subtype, _SUBTYPES)
        with self._pool.session() as s:
            s.decompress_file(_path("path", path), _path("out", out), st)

    def to_ecdc(self, audio: AudioLike, sr: int, bandwidth: Optional[float] = None) -> bytes:
        """Audio -> the bytes of an .ecdc file."""
        a = _audio("audio", audio)
        rate = _rate("sr", sr)
        kbps = self._kbps(bandwidth)
        with self._pool.session() as s:
            return s.compress(a, rate, kbps)

    def from_ecdc(self, data: bytes) -> Tuple[np.ndarray, int]:
        """The bytes of an .ecdc file -> (audio float32 [channels, samples], rate)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        with self._pool.session() as s:
            return s.decompress(bytes(data))
