"""Bad arguments raise ValueError/TypeError with a message naming the argument; failures of the C
library raise the mapped exception with the library's message."""
import errno
import math

import numpy as np
import pytest

import musicgen
from conftest import model_path


@pytest.mark.parametrize("kwargs, match", [
    (dict(duration=0), "duration must be > 0"),
    (dict(duration=-1.5), "duration must be > 0"),
    (dict(duration=math.inf), r"duration must be at most 3600 seconds \(one hour\), found inf"),
    (dict(duration=math.nan), "duration must be > 0 seconds"),
    (dict(top_k=-1), "top_k must be >= 0"),
    (dict(top_p=1.5), r"top_p must be in \[0, 1\], found 1.5"),
    (dict(top_p=-0.1), r"top_p must be in \[0, 1\], found -0.1"),
    (dict(temperature=-1), r"temperature must be in \[0, 100\], found -1"),
    (dict(cfg=math.nan), r"guidance_scale must be in \[0, 100\], found nan"),
    (dict(seed=-1), "seed must be >= 0"),
    (dict(seed=2**64), "seed must be <= "),
    (dict(takes=0), "takes must be >= 1"),
    (dict(top_k=0, top_p=0.0), "top_k is 0 and top_p is 0: sampling from all 2048 codes"),
    (dict(normalize="loud"), "normalize must be one of"),
    (dict(extend_stride=0), "extend_stride_s must be > 0 s, found 0"),
    (dict(chords="C G"), "needs a melody model"),
    (dict(continuation=np.zeros((2, 3, 4))), "continuation must be 1-D .* or 2-D"),
    (dict(continuation=np.zeros((4000, 2))), "planar"),
    (dict(continuation=np.array([0.1, np.nan, 0.2] * 10)), "NaN"),
    (dict(continuation=np.zeros(0)), "empty"),
])
def test_bad_generate_arguments(tiny, kwargs, match):
    args = dict(duration=0.2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        tiny.generate("x", **args)


@pytest.mark.parametrize("kwargs, match", [
    (dict(duration="10"), "duration must be a number"),
    (dict(top_k=2.5), "top_k must be an integer"),
    (dict(seed=True), "seed must be an integer"),
    (dict(continuation=["a", "b"]), "float32-convertible"),
    (dict(progress=3), "progress must be callable"),
])
def test_wrong_types(tiny, kwargs, match):
    args = dict(duration=0.2)
    args.update(kwargs)
    with pytest.raises(TypeError, match=match):
        tiny.generate("x", **args)


def test_bad_prompt_types(tiny):
    with pytest.raises(TypeError, match="prompt"):
        tiny.generate(3, duration=0.2)
    with pytest.raises(TypeError, match=r"prompt\[1\]"):
        tiny.generate(["a", None], duration=0.2)
    with pytest.raises(ValueError, match="empty list"):
        tiny.generate([], duration=0.2)
    with pytest.raises(TypeError, match="unexpected keyword"):
        next(tiny.stream("x", durration=1))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="device must be one of 'auto', 'cpu', 'cuda'"):
        musicgen.MusicGen(model_path("musicgen_tiny"), device="tpu")
    with pytest.raises(ValueError, match="weights must be one of"):
        musicgen.MusicGen(model_path("musicgen_tiny"), weights="int8")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        musicgen.MusicGen(model_path("musicgen_tiny"), threads=0)
    with pytest.raises(TypeError, match="path must be a path"):
        musicgen.MusicGen(42)


def test_missing_model_is_file_not_found(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError) as e:
        musicgen.MusicGen(missing)
    assert e.value.errno == errno.ENOENT and e.value.filename == str(missing)
    assert e.value.strerror  # the library's message
    with pytest.raises(FileNotFoundError):
        musicgen.EnCodec(missing)


def test_wrong_kind_of_model_is_model_error():
    with pytest.raises(musicgen.ModelError) as e:
        musicgen.MusicGen(model_path("encodec_24khz_tiny"))
    assert isinstance(e.value, RuntimeError) and str(e.value)


def test_cuda_without_a_gpu_is_device_error_or_works():
    try:
        m = musicgen.MusicGen(model_path("musicgen_tiny"), device="cuda")
    except musicgen.DeviceError as e:
        assert "cuda" in str(e).lower() or "gpu" in str(e).lower()
    else:
        assert m.device == "cuda"


def test_missing_audio_file(tiny, tmp_path):
    with pytest.raises(FileNotFoundError):
        musicgen.read_audio(tmp_path / "none.wav")
    with pytest.raises(FileNotFoundError):
        tiny.generate("x", duration=0.2, continuation=tmp_path / "none.wav")


def test_unreadable_audio_file_is_os_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file at all")
    with pytest.raises(OSError) as e:
        musicgen.read_audio(bad)
    assert not isinstance(e.value, FileNotFoundError)


def test_library_errors_keep_the_c_message(melody_tiny):
    with pytest.raises(ValueError) as e:
        musicgen.chroma_from_chords("C Xq7 G")
    assert "Xq7" in str(e.value)  # the message names the token


def test_error_classes():
    for cls in (musicgen.ModelError, musicgen.FormatError, musicgen.DeviceError, musicgen.AbortedError):
        assert issubclass(cls, musicgen.MusicGenError) and issubclass(cls, RuntimeError)
