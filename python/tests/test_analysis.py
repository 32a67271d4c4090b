"""musicgen.analyze: key, tempo and chords of synthetic signals with known answers, and of files."""
import math

import numpy as np
import pytest

import musicgen

SR = 22050


def tone(hz, dur, decay=0.6):
    t = np.arange(int(dur * SR)) / SR
    env = np.minimum(1.0, t / 0.01) * np.exp(-t / decay) * np.minimum(1.0, (dur - t) / 0.02)
    return env * sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 7) if hz * k < SR / 2)


def midi_hz(m):
    return 440.0 * 2 ** ((m - 69) / 12)


def progression(chords, bpm):
    """Triads struck on every beat, 4 beats a chord, with a click on every beat."""
    beat = 60.0 / bpm
    x = np.zeros(int((len(chords) * 4 * beat + 0.5) * SR))
    n = int(beat * SR)
    for i, (root, minor) in enumerate(chords):
        for b in range(4):
            start = int((i * 4 + b) * beat * SR)
            for iv in (0, 3 if minor else 4, 7):
                x[start:start + n] += 0.15 * tone(midi_hz(48 + root + iv), beat)[: len(x) - start]
            click = np.exp(-np.arange(300) / 40.0) * np.sin(np.arange(300) * 0.9)
            x[start:start + 300] += 0.5 * click[: len(x) - start]
    return x.astype(np.float32)


def test_chords_key_and_tempo_of_a_progression():
    x = progression([(0, False), (9, True), (5, False), (7, False)], 110)
    r = musicgen.analyze(x, sr=SR)
    assert r["key"] == "C" and r["mode"] == "major"
    assert 0 <= r["confidence"] <= 1
    assert abs(r["bpm"] / 110 - 1) <= 0.02 or r["octave_ambiguous"]
    labels = [c[0] for c in r["chords"] if c[0] != "N"]
    assert labels == ["C", "Am", "F", "G"]
    label, start, end = r["chords"][0]
    assert isinstance(label, str) and 0 <= start < end
    assert isinstance(r["octave_ambiguous"], bool)


def test_stereo_and_other_rates(tmp_path):
    x = progression([(2, True), (7, False)], 96)
    stereo = np.stack([x, x])
    path = tmp_path / "p.wav"
    musicgen.write_audio(path, stereo, SR)
    from_file = musicgen.analyze(path)
    from_array = musicgen.analyze(stereo, sr=SR)
    assert [c[0] for c in from_file["chords"] if c[0] != "N"] == ["Dm", "G"]
    assert from_array["key"] == from_file["key"]
    assert math.isclose(from_array["duration"], x.size / SR, rel_tol=1e-3)


def test_silence_has_no_key_and_no_tempo():
    r = musicgen.analyze(np.zeros(SR * 2, np.float32), sr=SR)
    assert r["key"] == "" and r["bpm"] == 0
    assert [c[0] for c in r["chords"]] == ["N"]


def test_errors():
    with pytest.raises(ValueError, match="needs sr"):
        musicgen.analyze(np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        musicgen.analyze(np.full(100, np.nan, np.float32), sr=SR)
    with pytest.raises(OSError):
        musicgen.analyze("/nonexistent/x.wav")
