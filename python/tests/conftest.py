"""Shared fixtures: the tiny committed models, and the C API's own answers to compare with.

The C reference (c_reference.c, the C API called directly) is $MUSICGEN_C_REFERENCE when set
(python/run-tests.sh builds it from the extension's objects: target musicgen_c_reference), else
compiled here against the shared library in $MUSICGEN_LIB_DIR (default: build/, what
scripts/build.sh makes). Without either the comparison tests skip, unless
MUSICGEN_REQUIRE_C_REFERENCE=1 (python/run-tests.sh sets it), where they fail."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import musicgen

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "data" / "models"


def model_path(name: str) -> str:
    p = MODELS / name
    assert p.is_dir(), f"committed test model missing: {p}"
    return str(p)


@pytest.fixture(scope="session")
def tiny() -> musicgen.MusicGen:
    return musicgen.MusicGen(model_path("musicgen_tiny"), device="cpu", threads=1)


@pytest.fixture(scope="session")
def melody_tiny() -> musicgen.MusicGen:
    return musicgen.MusicGen(model_path("musicgen_melody_tiny"), device="cpu", threads=1)


@pytest.fixture(scope="session")
def stereo_tiny() -> musicgen.MusicGen:
    return musicgen.MusicGen(model_path("musicgen_stereo_tiny"), device="cpu", threads=1)


@pytest.fixture(scope="session")
def codec24() -> musicgen.EnCodec:
    return musicgen.EnCodec(model_path("encodec_24khz_tiny"), device="cpu", threads=1)


def sine(rate: int, seconds: float, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds), dtype=np.float64) / rate
    rows = [0.5 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    return np.asarray(rows, dtype=np.float32)


class CReference:
    """Runs c_reference (the C API called directly) and reads back what it wrote."""

    def __init__(self, exe: Path, tmp: Path) -> None:
        self.exe = exe
        self.tmp = tmp

    def _run(self, *args: str) -> bytes:
        out = self.tmp / "ref.bin"
        r = subprocess.run([str(self.exe), args[0], args[1], str(out), *args[2:]], capture_output=True, text=True)
        assert r.returncode == 0, f"c_reference failed: {r.stderr}"
        return out.read_bytes()

    @staticmethod
    def _audio(data: bytes, at: int):
        channels, samples, rate = struct.unpack_from("<qqq", data, at)
        at += 24
        audio = np.frombuffer(data, dtype="<f4", count=channels * samples, offset=at).reshape(channels, samples)
        return audio, rate

    def generate(self, model: str, prompt: str, duration: float, seed: int, top_k: int = 250, top_p: float = 0.0,
                 temperature: float = 1.0, cfg: float = 3.0, greedy: bool = False, normalize: int = 3):
        data = self._run("generate", model, prompt, repr(duration), str(seed), str(top_k), repr(top_p),
                         repr(temperature), repr(cfg), str(int(greedy)), str(normalize))
        return self._audio(data, 0)

    def codec(self, model: str, audio_file: str, kbps: float):
        data = self._run("codec", model, audio_file, repr(kbps))
        k, t = struct.unpack_from("<qq", data, 0)
        codes = np.frombuffer(data, dtype="<i8", count=k * t, offset=16).reshape(k, t)
        audio, rate = self._audio(data, 16 + 8 * k * t)
        return codes, audio, rate


@pytest.fixture(scope="session")
def c_reference(tmp_path_factory) -> CReference:
    required = os.environ.get("MUSICGEN_REQUIRE_C_REFERENCE") == "1"
    prebuilt = os.environ.get("MUSICGEN_C_REFERENCE")
    if prebuilt:  # python/run-tests.sh builds it with the extension's objects
        if not os.access(prebuilt, os.X_OK):
            pytest.fail(f"MUSICGEN_C_REFERENCE={prebuilt} is not an executable")
        return CReference(Path(prebuilt), tmp_path_factory.mktemp("c_reference"))
    lib_dir = Path(os.environ.get("MUSICGEN_LIB_DIR", ROOT / "build"))
    if not lib_dir.is_absolute():
        lib_dir = ROOT / lib_dir
    cc = shutil.which(os.environ.get("CC", "cc"))
    problem = None
    if not (lib_dir / "libmusicgen.so").exists():
        problem = f"no libmusicgen.so in {lib_dir} (build the project, or set MUSICGEN_LIB_DIR)"
    elif cc is None:
        problem = "no C compiler (cc) to build the C reference"
    if problem:
        if required:
            pytest.fail(problem)
        pytest.skip(problem)
    tmp = tmp_path_factory.mktemp("c_reference")
    exe = tmp / "c_reference"
    r = subprocess.run([cc, "-std=c99", "-O1", str(Path(__file__).with_name("c_reference.c")), "-I",
                        str(ROOT / "include"), "-L", str(lib_dir), "-lmusicgen", f"-Wl,-rpath,{lib_dir}", "-o",
                        str(exe)], capture_output=True, text=True)
    if r.returncode != 0:
        # An out-of-date library (the C API changed since it was built) fails here, too.
        pytest.fail(f"building the C reference against {lib_dir}/libmusicgen.so failed:\n{r.stderr}")
    return CReference(exe, tmp)
