"""musicgen.compose: the notes, the chroma (= chroma_from_notes of the notes text), the MIDI file
read back by mido note for note, determinism and errors that name the field and token."""
import mido
import numpy as np
import pytest

import musicgen

DESCRIPTION = "A minor; i VI III VII; 8 bars; 90 bpm; ornaments 0.2"


def test_notes_and_determinism():
    a = musicgen.compose(DESCRIPTION, seed=3)
    b = musicgen.compose(DESCRIPTION, seed=3)
    assert a.notes == b.notes and len(a.notes) > 16
    assert a.notes != musicgen.compose(DESCRIPTION, seed=4).notes
    pitch, start, duration, flags = a.notes[0]
    assert start == 0 and duration > 0 and flags & musicgen.NOTE_CHORD_TONE
    assert a.notes[-1][0] % 12 == 9  # ends on the tonic, A
    end = a.notes[-1][1] + a.notes[-1][2]
    assert end == pytest.approx(8 * 4)
    assert a.bpm == pytest.approx(90)


def test_chroma_is_the_notes_path():
    c = musicgen.compose("D dorian; 3/4; 8 bars; 100 bpm; ornaments 0.5", seed=11)
    chroma = c.chroma()
    assert chroma.shape == (235, 12) and chroma.dtype == np.float32
    np.testing.assert_array_equal(chroma, musicgen.chroma_from_notes(c.notes_text, bpm=c.bpm))


@pytest.mark.parametrize("description", [DESCRIPTION, "E minor; 6/8; 4 bars; ornaments 0.3",
                                         "F major; F Bb C7 F; 3/4; 6 bars; 100 bpm; ornaments 1"])
def test_midi_reads_back_with_mido(tmp_path, description):
    c = musicgen.compose(description, seed=7)
    path = tmp_path / "melody.mid"
    c.write_midi(path)
    mid = mido.MidiFile(str(path))
    assert mid.type == 1
    tempo = [m.tempo for t in mid.tracks for m in t if m.type == "set_tempo"]
    assert tempo and mido.tempo2bpm(tempo[0]) == pytest.approx(c.bpm, rel=1e-4)
    sig = [m for t in mid.tracks for m in t if m.type == "time_signature"]
    assert sig
    notes, now, on = [], 0, {}
    for msg in mid.tracks[1]:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            on[msg.note] = now
        elif msg.type in ("note_off", "note_on"):
            notes.append((msg.note, on.pop(msg.note) / mid.ticks_per_beat, (now - 0) / mid.ticks_per_beat))
    assert len(notes) == len(c.notes)
    for (key, start, end), (pitch, s, d, _) in zip(notes, c.notes):
        assert key == pitch
        assert start == pytest.approx(s) and end == pytest.approx(s + d)
    assert (f"{sig[0].numerator}/{sig[0].denominator}") in description or "/" not in description


@pytest.mark.parametrize("description, expect", [
    ("H minor", "field 1 of 1 ('H minor')"),
    ("A minor; i VI X VII", "chord 3 of 4 ('X')"),
    ("A minor; 0 bars", "bars '0'"),
    ("A minor; 8 bars; 500 bpm", "field 3 of 3 ('500 bpm')"),
    ("A minor; ornaments 1.5", "[0, 1]"),
    ("A minor; loud", "unknown field 'loud'"),
])
def test_errors_name_the_token(description, expect):
    with pytest.raises(ValueError) as e:
        musicgen.compose(description)
    assert expect in str(e.value)


def test_generate_compose_is_the_chroma_shortcut(melody_tiny):
    args = dict(duration=0.3, seed=5, top_k=50)
    via_chroma, sr = melody_tiny.generate("strings", chroma=musicgen.compose(DESCRIPTION, seed=3).chroma(), **args)
    via_compose, sr2 = melody_tiny.generate("strings", compose=DESCRIPTION, compose_seed=3, **args)
    assert sr == sr2
    np.testing.assert_array_equal(via_chroma, via_compose)
    # compose_seed None: the generation's seed picks the melody, as musicgen-cli --compose does.
    same_seed, _ = melody_tiny.generate("strings", chroma=musicgen.compose(DESCRIPTION, seed=5).chroma(), **args)
    np.testing.assert_array_equal(same_seed, melody_tiny.generate("strings", compose=DESCRIPTION, **args)[0])
    with pytest.raises(ValueError, match="one melody condition"):
        melody_tiny.generate("strings", compose=DESCRIPTION, chords="C G", **args)
    with pytest.raises(TypeError, match="compose must be a str"):
        melody_tiny.generate("strings", compose=3, **args)
