"""EnCodec from Python: encode/decode round trip (the C API's codes and audio), Codes objects,
.ecdc files and bytes, 48 kHz segments."""
import numpy as np
import pytest

import musicgen
from conftest import model_path, sine


def test_facts(codec24):
    assert codec24.sample_rate == 24000
    assert codec24.channels == 1
    assert codec24.bandwidths == sorted(codec24.bandwidths) and codec24.bandwidths
    assert "EnCodec(" in repr(codec24)


def test_round_trip(codec24):
    audio = sine(24000, 1.0)
    codes = codec24.encode(audio, 24000)
    assert isinstance(codes, musicgen.Codes)
    arr = np.asarray(codes)
    assert arr.dtype == np.int64 and arr.ndim == 2 and arr.shape[0] == codes.num_codebooks
    assert codes.audio_length == 24000 and codes.scales == [1.0]
    decoded, sr = codec24.decode(codes)
    assert sr == 24000 and decoded.dtype == np.float32 and decoded.shape == (1, 24000)
    again, _ = codec24.decode(arr, audio_length=24000)  # a plain int array decodes the same
    assert np.array_equal(decoded, again)


# Codes made from a bare array carry no audio length: decode gives every frame (frames x hop), as
# encodec_codes_create documents for audio_length <= 0.
def test_array_without_length_decodes_to_frames_times_hop(codec24):
    arr = np.asarray(codec24.encode(sine(24000, 1.0), 24000))
    audio, _ = codec24.decode(arr)
    assert audio.shape == (1, arr.shape[1] * 320)


def test_same_codes_and_audio_as_the_c_api(codec24, c_reference, tmp_path):
    audio = sine(24000, 0.75, freq=330.0)
    path = tmp_path / "in.wav"
    musicgen.write_audio(path, audio, 24000, subtype="float")
    kbps = codec24.bandwidths[-1]
    ref_codes, ref_audio, ref_rate = c_reference.codec(model_path("encodec_24khz_tiny"), str(path), kbps)
    codes = codec24.encode(musicgen.read_audio(path)[0], 24000, bandwidth=kbps)
    assert np.array_equal(np.asarray(codes), ref_codes)
    decoded, sr = codec24.decode(codes)
    assert sr == ref_rate and decoded.tobytes() == ref_audio.tobytes()


def test_other_rates_and_channels_are_converted(codec24):
    codes = codec24.encode(sine(44100, 0.5, channels=2), 44100)
    decoded, sr = codec24.decode(codes)
    assert sr == 24000 and decoded.shape == (1, 12000)


def test_bandwidth_checked(codec24):
    with pytest.raises(ValueError, match="not one of this model's"):
        codec24.encode(sine(24000, 0.1), 24000, bandwidth=7.77)
    with pytest.raises(ValueError, match="sr must be >= 1"):
        codec24.encode(sine(24000, 0.1), 0)


def test_compress_decompress_files(codec24, tmp_path):
    src = tmp_path / "in.wav"
    musicgen.write_audio(src, sine(24000, 0.5), 24000)
    ecdc = tmp_path / "x.ecdc"
    out = tmp_path / "out.wav"
    codec24.compress(src, ecdc)
    assert ecdc.read_bytes()[:4]  # written
    codec24.decompress(ecdc, out, subtype="float")
    audio, sr = musicgen.read_audio(out)
    assert sr == 24000 and audio.shape == (1, 12000)
    # the same as from bytes in memory
    data = codec24.to_ecdc(musicgen.read_audio(src)[0], 24000)
    assert data == ecdc.read_bytes()
    mem, _ = codec24.from_ecdc(data)
    assert np.array_equal(mem, audio)


def test_decompress_errors(codec24, tmp_path):
    with pytest.raises(FileNotFoundError):
        codec24.decompress(tmp_path / "none.ecdc", tmp_path / "o.wav")
    bad = tmp_path / "bad.ecdc"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises((musicgen.FormatError, ValueError)):
        codec24.decompress(bad, tmp_path / "o.wav")
    with pytest.raises(musicgen.FormatError):
        codec24.from_ecdc(b"garbage bytes, not an ecdc file")


def test_48khz_segments_and_scales():
    codec = musicgen.EnCodec(model_path("encodec_48khz_tiny"), device="cpu", threads=1)
    assert codec.sample_rate == 48000 and codec.channels == 2
    codes = codec.encode(sine(48000, 2.5, channels=2), 48000)
    assert len(codes.segments) == len(codes.scales) >= 2
    assert all(s.dtype == np.int64 and s.shape[0] == codes.num_codebooks for s in codes.segments)
    assert all(sc > 0 for sc in codes.scales)
    with pytest.raises(ValueError, match="segments"):
        np.asarray(codes)
    decoded, sr = codec.decode(codes)
    assert sr == 48000 and decoded.shape == (2, 120000)


def test_threads_share_one_codec(codec24):
    import threading
    audio = sine(24000, 1.0)
    want = np.asarray(codec24.encode(audio, 24000))
    got = []
    threads = [threading.Thread(target=lambda: got.append(np.asarray(codec24.encode(audio, 24000)))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 3 and all(np.array_equal(g, want) for g in got)
