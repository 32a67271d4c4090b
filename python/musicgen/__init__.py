"""libmusicgen for Python: Meta's MusicGen (text to music) and EnCodec (neural audio codec), run
natively by the libmusicgen C++/CUDA engine. No PyTorch.

    >>> import musicgen
    >>> mg = musicgen.MusicGen("weights/musicgen-small")
    >>> audio, sr = mg.generate("lo-fi hip hop", duration=5, seed=1)   # float32 [1, C, T]
    >>> for chunk in mg.stream("ambient", duration=10):                 # float32 [C, n] each
    ...     play(chunk)
    >>> codec = musicgen.EnCodec("weights/encodec_24khz")
    >>> codes = codec.encode(audio[0], sr, bandwidth=6.0)
    >>> decoded, rate = codec.decode(codes)

A model is loaded once and shared: each call runs on its own session (taken from a small pool), so
several Python threads may generate with one model at the same time. Computation runs without the
GIL; Ctrl-C stops a generation (KeyboardInterrupt). Failures raise ValueError, OSError /
FileNotFoundError, or the package's MusicGenError subclasses (ModelError, FormatError, DeviceError,
AbortedError), with the library's message.

Audio arrays are float32, planar: [channels, samples] (a 1-D array is one channel); generated
audio is [batch, channels, samples].
"""
from __future__ import annotations

import json
import numbers
import os
import queue
import threading
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._args import (_DEVICES, _NORMALIZE, _SUBTYPES, _WEIGHTS, AudioLike, PathLike, _audio, _audio_input, _c_int,
                    _choice, _integer, _number, _path, _rate, _real, _threads)
from ._encodec import Codes, EnCodec
from ._errors import AbortedError, DeviceError, FormatError, ModelError, MusicGenError
from ._pool import _Pool

__all__ = [
    "MusicGen",
    "EnCodec",
    "Codes",
    "MusicGenError",
    "ModelError",
    "FormatError",
    "DeviceError",
    "AbortedError",
    "read_audio",
    "write_audio",
    "chroma_from_chords",
    "chroma_from_notes",
    "chroma_from_midi",
    "analyze",
    "system_info",
    "quantize_snapshot",
    "__version__",
    "compose",
    "Composition",
]

__version__: str = _core.version()


# ---- MusicGen ----

def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class MusicGen:
    """A MusicGen model (a Hugging Face snapshot folder, e.g. facebook/musicgen-small), loaded once.

    Args:
        path: the snapshot folder (config.json, model.safetensors or shards, spiece.model).
        device: "auto" (CUDA when built with it and a GPU is present), "cpu" or "cuda".
        threads: CPU threads per generation (None: all cores).
        weights: decoder weight precision, "f32" (as stored), "f16", "bf16", "q8" or "q4"
            (q8_0 / q4_0 blocks, docs/QUANTIZATION.md; a snapshot written by
            quantize_snapshot() loads only with its own scheme).
        lora: a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors, e.g.
            from ``musicgen-cli train``), merged into the decoder weights at load (docs/TRAINING.md).
        lora_scale: how much of the adapter: 1.0 as trained, 0.0 the base model.

    Every generation takes a session of its own from a small pool, so several threads can
    generate with one model at the same time (on CUDA they take turns on the GPU).

    Attributes:
        sample_rate: output rate in Hz (32000).
        channels: 1 (mono models) or 2 (stereo models).
        is_melody: whether the model follows a melody (musicgen-melody*).
        device: "cpu" or "cuda", where the model runs.
        max_window: seconds one decoder window covers (30); longer durations slide the window.

    Raises:
        FileNotFoundError: the folder does not exist.
        ModelError: the folder is incomplete or holds another kind of model, or the adapter is
            unusable or was made for another model.
        DeviceError: device="cuda" and no GPU (or no CUDA build).
    """

    def __init__(self, path: PathLike, device: str = "auto", threads: Optional[int] = None,
                 weights: str = "f32", lora: Optional[PathLike] = None, lora_scale: float = 1.0) -> None:
        self._threads = _threads(threads)
        if lora is None and lora_scale != 1.0:
            raise ValueError("lora_scale needs lora=DIR (the adapter to scale)")
        if isinstance(lora_scale, bool) or not isinstance(lora_scale, numbers.Real):
            raise TypeError(f"lora_scale must be a number, not {type(lora_scale).__name__}")
        self._model = _core.Model(_path("path", path), _choice("device", device, _DEVICES),
                                  _choice("weights", weights, _WEIGHTS), self._threads,
                                  "" if lora is None else _path("lora", lora), float(lora_scale))
        self._pool = _Pool(lambda: _core.Session(self._model, self._threads))
        self.path = os.fspath(path)

    sample_rate = property(lambda self: self._model.sample_rate, doc="Output sample rate in Hz.")
    channels = property(lambda self: self._model.channels, doc="1 (mono) or 2 (stereo).")
    is_melody = property(lambda self: self._model.is_melody, doc="Whether the model follows a melody.")
    device = property(lambda self: self._model.device, doc='"cpu" or "cuda".')
    max_window = property(lambda self: self._model.max_window, doc="Seconds one decoder window covers.")
    frame_rate = property(lambda self: self._model.frame_rate, doc="Code frames per second (50).")
    num_codebooks = property(lambda self: self._model.num_codebooks, doc="Codebooks per frame.")

    def __repr__(self) -> str:
        return (f"MusicGen({self.path!r}, device={self.device!r}, sample_rate={self.sample_rate}, "
                f"channels={self.channels}{', melody' if self.is_melody else ''})")

    def close(self) -> None:
        """Frees the idle sessions now (the model goes when the last reference to it does)."""
        self._pool.clear()

    def __enter__(self) -> "MusicGen":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _request(self, prompt: Union[None, str, Sequence[str]], *, duration: float, seed: Optional[int],
                 top_k: int, top_p: float, temperature: float, cfg: float, greedy: bool, takes: int,
                 normalize: str, extend_stride: float, melody: Any, melody_sr: Optional[int],
                 chords: Optional[str], notes: Optional[str], bpm: float, beats_per_chord: float,
                 chroma: Any, continuation: Any, continuation_sr: Optional[int], drop_prompt: bool,
                 progress: Optional[Callable[[int, int], Any]], compose: Optional[str] = None,
                 compose_seed: Optional[int] = None) -> dict:
        if prompt is None:
            prompts = None
        elif isinstance(prompt, str):
            prompts = [prompt]
        else:
            if isinstance(prompt, bytes) or not isinstance(prompt, Sequence):
                raise TypeError(f"prompt must be a str, a list of str or None, not {type(prompt).__name__}")
            prompts = list(prompt)
            if not prompts:
                raise ValueError("prompt is an empty list: give at least one prompt")
            for i, p in enumerate(prompts):
                if not isinstance(p, str):
                    raise TypeError(f"prompt[{i}] must be a str, not {type(p).__name__}")
        if prompts is not None and any("\0" in p for p in prompts):
            raise ValueError("prompt must not contain NUL characters")
        takes = _integer("takes", takes, low=1)
        if takes > 1 and prompts is None:
            prompts = [""]
        if seed is None:
            seed = 0
        kw = dict(
            prompts=prompts, takes=takes,
            duration=_real("duration", duration),
            extend_stride=_real("extend_stride", extend_stride),
            top_k=_c_int("top_k", top_k),
            top_p=_real("top_p", top_p),
            temperature=_real("temperature", temperature),
            cfg=_real("cfg", cfg),
            greedy=bool(greedy),
            seed=_integer("seed", seed, low=0, high=2**64 - 1),
            normalize=_choice("normalize", normalize, _NORMALIZE),
            continuation=None, continuation_rate=0, drop_prompt=bool(drop_prompt),
            melody=None, melody_rate=0, chroma=None, progress=progress,
        )
        if progress is not None and not callable(progress):
            raise TypeError("progress must be callable(done, total)")
        if drop_prompt and continuation is None:  # the binding passes drop_prompt only with a prompt
            raise ValueError("drop_prompt needs a prompt audio (continuation): there is no prompt to drop")
        conditions = [n for n, v in (("melody", melody), ("chords", chords), ("notes", notes),
                                     ("chroma", chroma), ("compose", compose)) if v is not None]
        if len(conditions) > 1:
            raise ValueError(f"give one melody condition, not {' and '.join(conditions)}")
        if conditions and not self.is_melody:
            raise ValueError(f"{conditions[0]} needs a melody model (musicgen-melody*); {self.path!r} is not one")
        if melody is not None:
            kw["melody"], kw["melody_rate"] = _audio_input("melody", melody, melody_sr, self.sample_rate)
        elif chords is not None:
            if not isinstance(chords, str):
                raise TypeError("chords must be a str like \"C G Am F\"")
            kw["chroma"] = _core.chroma_from_chords(chords, _number("bpm", bpm, low=0.0, low_open=True),
                                                    _number("beats_per_chord", beats_per_chord, low=0.0,
                                                            low_open=True))
        elif notes is not None:
            if not isinstance(notes, str):
                raise TypeError("notes must be a str like \"C4:1 E4:0.5 r:1\"")
            kw["chroma"] = _core.chroma_from_notes(notes, _number("bpm", bpm, low=0.0, low_open=True))
        elif compose is not None:
            if not isinstance(compose, str):
                raise TypeError("compose must be a str like \"A minor; i VI III VII; 8 bars\"")
            # As musicgen-cli --compose: the generation's seed picks the melody unless told otherwise.
            melody_seed = kw["seed"] if compose_seed is None else _integer("compose_seed", compose_seed,
                                                                             low=0, high=2**64 - 1)
            kw["chroma"] = Composition(compose, melody_seed).chroma()
        elif chroma is not None:
            c = np.ascontiguousarray(np.asarray(chroma, dtype=np.float32))
            if c.ndim != 2 or c.shape[1] != 12 or c.shape[0] < 1:
                raise ValueError(f"chroma must be [frames, 12], not {c.shape}")
            if not np.isfinite(c).all():
                raise ValueError("chroma holds NaN or infinite values")
            kw["chroma"] = c
        if continuation is not None:
            kw["continuation"], kw["continuation_rate"] = _audio_input("continuation", continuation,
                                                                       continuation_sr, self.sample_rate)
        return kw

    def generate(self, prompt: Union[None, str, Sequence[str]] = None, *, duration: float = 10.0,
                 seed: Optional[int] = None, top_k: int = 250, top_p: float = 0.0, temperature: float = 1.0,
                 cfg: float = 3.0, greedy: bool = False, takes: int = 1, normalize: str = "peak",
                 extend_stride: float = 18.0, melody: Any = None, melody_sr: Optional[int] = None,
                 chords: Optional[str] = None, notes: Optional[str] = None, bpm: float = 120.0,
                 beats_per_chord: float = 4.0, chroma: Any = None, continuation: Any = None,
                 continuation_sr: Optional[int] = None, drop_prompt: bool = False,
                 progress: Optional[Callable[[int, int], Any]] = None, compose: Optional[str] = None,
                 compose_seed: Optional[int] = None) -> Tuple[np.ndarray, int]:
        """Generates music; returns ``(audio, sample_rate)``, audio float32 [batch, channels, samples].

        Args:
            prompt: text (one sequence), a list of texts (one batch, generated together), or None
                (unconditional).
            duration: seconds of audio, a continuation included (> 0). Above ``max_window`` the
                window slides by ``extend_stride`` seconds, as audiocraft does.
            seed: the same seed, model, settings and device give the same audio (None: 0).
                Take i of a batch uses seed + i.
            top_k: sample among the k most likely tokens (0: off; needs top_p then).
            top_p: nucleus sampling in [0, 1]; when > 0 it replaces top_k.
            temperature: >= 0; cfg: classifier-free guidance scale (1: off).
            greedy: argmax decoding (deterministic whatever the seed).
            takes: sequences per prompt.
            normalize: "peak" (-1 dBFS, audiocraft's default), "loudness" (-14 LUFS), "clip" or
                "none" (as decoded).
            melody: melody models: a recording to follow, as a path, an array at ``melody_sr``
                (default: the model's rate) or an ``(array, rate)`` pair.
            chords / notes: melody models: "C G Am F" at ``bpm`` and ``beats_per_chord``, or
                "C4:1 E4:0.5 r:1" (durations in beats). chroma: a [frames, 12] condition.
            compose / compose_seed: melody models: a composer description ("A minor; i VI III VII;
                8 bars"), the shortcut for ``chroma=compose(compose, compose_seed).chroma()``;
                compose_seed None uses ``seed``, as musicgen-cli --compose does.
            continuation: audio to continue (path, array at ``continuation_sr`` or (array, rate));
                the output starts with it unless ``drop_prompt``.
            progress: called as progress(done, total) after each decoder step.

        Raises:
            ValueError: an argument is out of range (the message says which).
            KeyboardInterrupt: Ctrl-C stopped the generation (the model stays usable).
        """
        kw = self._request(prompt, duration=duration, seed=seed, top_k=top_k, top_p=top_p,
                           temperature=temperature, cfg=cfg, greedy=greedy, takes=takes, normalize=normalize,
                           extend_stride=extend_stride, melody=melody, melody_sr=melody_sr, chords=chords,
                           notes=notes, bpm=bpm, beats_per_chord=beats_per_chord, chroma=chroma,
                           continuation=continuation, continuation_sr=continuation_sr,
                           drop_prompt=drop_prompt, progress=progress, compose=compose,
                           compose_seed=compose_seed)
        with self._pool.session() as s:
            return s.generate(**kw, stream=None, check_signals=_on_main_thread(), abort_flag=None)

    def stream(self, prompt: Union[None, str, Sequence[str]] = None, **kwargs: Any) -> Iterator[np.ndarray]:
        """Generates like :meth:`generate` and yields the audio while it is made.

        Yields float32 arrays [channels, n] of the first sequence, in order: the raw decoder
        output (not normalised: the peak is not known yet). Takes the same keyword arguments as
        generate. Leaving the loop early (break, an exception, Ctrl-C) stops the generation.
        """
        kw = self._request(prompt, **_with_defaults(kwargs))
        chunks: "queue.Queue[Any]" = queue.Queue()
        flag = _core.AbortFlag()
        done = object()

        def run() -> None:
            try:
                with self._pool.session() as s:
                    s.generate(**kw, stream=chunks.put, check_signals=False, abort_flag=flag)
                chunks.put(done)
            except BaseException as e:  # handed to the consumer
                chunks.put(_Failure(e))

        worker = threading.Thread(target=run, name="musicgen-stream", daemon=True)
        worker.start()
        try:
            while True:
                item = chunks.get()
                if item is done:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            flag.set()
            worker.join()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_GENERATE_DEFAULTS = dict(duration=10.0, seed=None, top_k=250, top_p=0.0, temperature=1.0, cfg=3.0, greedy=False,
                          takes=1, normalize="peak", extend_stride=18.0, melody=None, melody_sr=None, chords=None,
                          notes=None, bpm=120.0, beats_per_chord=4.0, chroma=None, continuation=None,
                          continuation_sr=None, drop_prompt=False, progress=None, compose=None, compose_seed=None)


def _with_defaults(kwargs: dict) -> dict:
    unknown = set(kwargs) - set(_GENERATE_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    out = dict(_GENERATE_DEFAULTS)
    out.update(kwargs)
    return out


# ---- audio files and melody helpers ----

def read_audio(path: PathLike) -> Tuple[np.ndarray, int]:
    """Reads a .wav/.flac/.ogg/.mp3 file: (float32 [channels, samples], sample_rate)."""
    return _core.read_audio(_path("path", path))


def write_audio(path: PathLike, audio: AudioLike, sr: int, subtype: str = "pcm16") -> None:
    """Writes float32 [channels, samples] to a file (format from the extension; subtype "pcm16",
    "pcm24" or "float" (.wav only)). The file appears complete or not at all."""
    _core.write_audio(_path("path", path), _audio("audio", audio), _rate("sr", sr),
                      _choice("subtype", subtype, _SUBTYPES))


def chroma_from_chords(chords: str, bpm: float = 120.0, beats_per_chord: float = 4.0) -> np.ndarray:
    """A melody condition [235, 12] from chords like "C G Am F7 | Dm7/C"."""
    return _core.chroma_from_chords(chords, _number("bpm", bpm, low=0.0, low_open=True),
                                    _number("beats_per_chord", beats_per_chord, low=0.0, low_open=True))


def chroma_from_notes(notes: str, bpm: float = 120.0) -> np.ndarray:
    """A melody condition [235, 12] from notes like "C4:1 E4:0.5 r:1 60:2" (durations in beats)."""
    return _core.chroma_from_notes(notes, _number("bpm", bpm, low=0.0, low_open=True))


def chroma_from_midi(path: PathLike) -> np.ndarray:
    """A melody condition [235, 12] from a MIDI file's top voice."""
    return _core.chroma_from_midi(_path("path", path))


def analyze(path_or_array: Any, sr: Optional[int] = None) -> dict:
    """Key, tempo and chords of a recording (a file path, or float32 [channels, samples] / [samples]
    at `sr`). Returns {"key": "A", "mode": "minor", "confidence": 0..1, "bpm": float (0: no beat),
    "octave_ambiguous": bool, "alternative_bpm": float, "chords": [(label, start_s, end_s), ...],
    "duration": float, "beats": [seconds, ...], ...}; "N" labels no chord. docs/analysis.md."""
    if isinstance(path_or_array, (str, bytes, os.PathLike)):
        if sr is not None:
            raise ValueError("sr is for arrays; a file says its own rate")
        text = _core.analyze_file(_path("path", path_or_array))
    else:
        if sr is None:
            raise ValueError("analyze(array) needs sr, the array's sample rate")
        text = _core.analyze_audio(_audio("audio", path_or_array), _rate("sr", sr))
    result = json.loads(text)
    result["chords"] = [(c["label"], c["start"], c["end"]) for c in result["chords"]]
    return result


def quantize_snapshot(src: PathLike, dst: PathLike, weights: str = "q8") -> None:
    """Writes a quantized copy of the snapshot folder ``src`` to the new folder ``dst``: the decoder's
    projections and LM heads as q8_0 ("q8") or q4_0 ("q4") blocks, everything else unchanged.
    Load it with ``MusicGen(dst, weights=...)`` and the same scheme."""
    scheme = _choice("weights", weights, {"q8": _WEIGHTS["q8"], "q4": _WEIGHTS["q4"]})
    _core.quantize_snapshot(_path("src", src), _path("dst", dst), scheme)


def system_info() -> str:
    """What the CPU and GPU backends use on this machine (SIMD, BLAS, CUDA)."""
    return _core.system_info()


# ---- the melody composer (docs/chroma.md, "Composer") ----

NOTE_CHORD_TONE, NOTE_PASSING, NOTE_NEIGHBOUR, NOTE_ORNAMENT, NOTE_CHROMATIC, NOTE_SUSPENSION = 1, 2, 4, 8, 16, 32


class Composition:
    """A composed melody. ``notes``: a list of (pitch, start_beat, duration_beats, flags) with the
    NOTE_* flag bits; ``notes_text``: the same in the ``notes=`` syntax; ``bpm``: its tempo."""

    def __init__(self, description: str, seed: int) -> None:
        self.description, self.seed = description, seed
        self.notes, self.notes_text, self.bpm, self._chroma = _core.compose(description, seed)

    def chroma(self) -> np.ndarray:
        """The melody condition [235, 12]: what ``chroma_from_notes(notes_text, bpm)`` gives. Pass it
        as ``MusicGen.generate(..., chroma=composition.chroma())``."""
        return self._chroma.copy()

    def write_midi(self, path: PathLike) -> None:
        """A Standard MIDI File (format 1: tempo, time and key signature, one melody track)."""
        _core.composition_write_midi(self.description, self.seed, _path("path", path))

    def __repr__(self) -> str:
        return f"Composition({self.description!r}, seed={self.seed}, {len(self.notes)} notes)"


def compose(description: str, seed: int = 0) -> Composition:
    """Composes a melody: ``compose("A minor; i VI III VII; 8 bars; 90 bpm; ornaments 0.2", seed=3)``.
    The same description and seed give the same notes. Errors name the field and token."""
    if not isinstance(description, str):
        raise TypeError("description must be a str like \"A minor; i VI III VII; 8 bars\"")
    return Composition(description, _integer("seed", seed, low=0, high=2**64 - 1))
