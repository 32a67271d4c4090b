"""MusicGen from Python: what comes back (dtype, shape, rate), that it is the C API's audio for
the same request, determinism, batches, streaming, melody and continuation."""
import numpy as np
import pytest

import musicgen
from conftest import model_path, sine


def test_module_facts():
    assert isinstance(musicgen.__version__, str) and musicgen.__version__.count(".") == 2
    assert "BLAS" in musicgen.system_info()
    assert musicgen._core.api_version() == musicgen._core.API_VERSION


def test_model_facts(tiny):
    assert tiny.sample_rate == 32000
    assert tiny.channels == 1
    assert tiny.device == "cpu"
    assert not tiny.is_melody
    assert tiny.max_window == pytest.approx(30.0)
    assert "musicgen_tiny" in repr(tiny)


def test_generate_returns_float32_batch_channels_samples(tiny):
    audio, sr = tiny.generate("80s pop track", duration=0.5, seed=3)
    assert sr == 32000
    assert isinstance(audio, np.ndarray)
    assert audio.dtype == np.float32
    assert audio.shape == (1, 1, 25 * 640)
    assert audio.flags.c_contiguous and audio.flags.writeable
    assert np.isfinite(audio).all()
    # peak normalisation (the default): the peak at -1 dBFS
    assert float(np.abs(audio).max()) == pytest.approx(10 ** (-1 / 20), rel=1e-3)


@pytest.mark.parametrize("kwargs", [
    dict(seed=7),
    dict(seed=123456789012, top_k=50, temperature=0.8, cfg=2.5),
    dict(seed=5, top_k=0, top_p=0.9),
    dict(seed=0, greedy=True),
])
def test_same_bytes_as_the_c_api(tiny, c_reference, kwargs):
    args = dict(top_k=250, top_p=0.0, temperature=1.0, cfg=3.0, greedy=False)
    args.update(kwargs)
    ref, rate = c_reference.generate(model_path("musicgen_tiny"), "lo-fi beat", 0.7, **args)
    audio, sr = tiny.generate("lo-fi beat", duration=0.7, normalize="none", **args)
    assert sr == rate
    assert audio.shape == (1,) + ref.shape
    assert audio[0].tobytes() == ref.tobytes()


def test_same_bytes_as_the_c_api_peak_normalised(tiny, c_reference):
    ref, _ = c_reference.generate(model_path("musicgen_tiny"), "jazz", 0.5, 11, normalize=0)
    audio, _ = tiny.generate("jazz", duration=0.5, seed=11)
    assert audio[0].tobytes() == ref.tobytes()


def test_same_seed_same_audio_other_seed_other_audio(tiny):
    a, _ = tiny.generate("techno", duration=0.4, seed=1)
    b, _ = tiny.generate("techno", duration=0.4, seed=1)
    c, _ = tiny.generate("techno", duration=0.4, seed=2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unconditional_and_empty_prompt(tiny):
    a, _ = tiny.generate(None, duration=0.3, seed=4)
    b, _ = tiny.generate("", duration=0.3, seed=4)
    assert a.shape == (1, 1, 15 * 640)
    assert np.array_equal(a, b)


def test_batch_of_prompts_and_takes(tiny):
    audio, sr = tiny.generate(["rock", "ambient"], duration=0.3, seed=9, takes=2)
    assert audio.shape == (4, 1, 15 * 640)
    assert audio.dtype == np.float32
    assert not np.array_equal(audio[0], audio[1])  # take 1 uses seed + 1


def test_progress_is_called(tiny):
    seen = []
    tiny.generate("x", duration=0.5, greedy=True, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] == 25 + 3


def test_progress_exception_propagates(tiny):
    def bad(done, total):
        raise RuntimeError("stop from progress")

    with pytest.raises(RuntimeError, match="stop from progress"):
        tiny.generate("x", duration=2, progress=bad)
    audio, _ = tiny.generate("x", duration=0.2, seed=1)  # still usable
    assert audio.shape == (1, 1, 10 * 640)


def test_stream_yields_the_raw_audio_in_order(tiny):
    chunks = list(tiny.stream("house", duration=1.0, seed=2))
    assert chunks and all(c.dtype == np.float32 and c.ndim == 2 and c.shape[0] == 1 for c in chunks)
    streamed = np.concatenate(chunks, axis=1)
    whole, _ = tiny.generate("house", duration=1.0, seed=2, normalize="none")
    assert streamed.shape == whole[0].shape
    np.testing.assert_allclose(streamed, whole[0], rtol=0, atol=1e-5)


def test_stream_stops_when_the_consumer_leaves(tiny):
    gen = tiny.stream("long", duration=60, seed=1)
    first = next(gen)
    assert first.shape[0] == 1
    gen.close()  # aborts the generation and joins its thread
    audio, _ = tiny.generate("after", duration=0.2, seed=1)
    assert audio.shape == (1, 1, 10 * 640)


def test_stereo_model(stereo_tiny):
    audio, sr = stereo_tiny.generate("wide", duration=0.3, seed=1)
    assert stereo_tiny.channels == 2
    assert audio.shape == (1, 2, 15 * 640)


def test_melody_from_array_path_and_chords(melody_tiny, tmp_path):
    assert melody_tiny.is_melody
    tune = sine(32000, 1.0)
    a, _ = melody_tiny.generate("pop", duration=0.4, seed=1, melody=tune)
    b, _ = melody_tiny.generate("pop", duration=0.4, seed=1, melody=(tune, 32000))
    path = tmp_path / "tune.wav"
    musicgen.write_audio(path, tune, 32000, subtype="float")
    c, _ = melody_tiny.generate("pop", duration=0.4, seed=1, melody=path)
    assert a.shape == (1, 1, 20 * 640)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    d, _ = melody_tiny.generate("pop", duration=0.4, seed=1, chords="C G Am F", bpm=100)
    e, _ = melody_tiny.generate("pop", duration=0.4, seed=1, chroma=musicgen.chroma_from_chords("C G Am F", 100))
    assert np.array_equal(d, e)
    chroma = musicgen.chroma_from_chords("C G Am F")
    assert chroma.shape == (235, 12) and chroma.dtype == np.float32


def test_continuation(tiny):
    start, sr = tiny.generate("intro", duration=0.4, seed=1, normalize="none")
    audio, _ = tiny.generate("intro", duration=0.8, seed=2, continuation=start[0], continuation_sr=sr)
    assert audio.shape == (1, 1, 40 * 640)
    dropped, _ = tiny.generate("intro", duration=0.8, seed=2, continuation=start[0], drop_prompt=True)
    assert dropped.shape[2] < audio.shape[2]
