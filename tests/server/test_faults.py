"""musicgen-server under bad requests and bad clients: each gets a clear 4xx in API.md's JSON error
format, or a clean cancel; the server stays up and the next request succeeds.

One server for the module; every test ends by checking that it still generates
(`still_serves`)."""
from __future__ import annotations

import io
import json
import socket
import time
import urllib.parse
import wave

import pytest
import requests

from conftest import Server, metric_value, require_binary

GEN = "/v1/music/generations"
READ_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def server():
    # A short read timeout, so that the stalled upload is cut within seconds.
    require_binary()
    s = Server(["--read-timeout", str(READ_TIMEOUT_S)])
    yield s
    assert s.stop() == 0, "the server did not exit cleanly on SIGTERM:\n" + "".join(s.log[-50:])


def address(server):
    u = urllib.parse.urlparse(server.url)
    return u.hostname, u.port


def assert_error(r: requests.Response, statuses, kinds, words: str = "") -> dict:
    statuses = (statuses,) if isinstance(statuses, int) else statuses
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    assert r.status_code in statuses, f"HTTP {r.status_code}: {r.text[:500]}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    error = r.json()["error"]
    assert error["type"] in kinds, error
    assert isinstance(error["message"], str) and error["message"], error
    assert words.lower() in error["message"].lower(), error
    return error


def still_serves(server) -> None:
    assert server.alive(), "the server exited:\n" + "".join(server.log[-50:])
    r = requests.post(server.url + GEN, json={"prompt": "after", "duration": 0.5, "seed": 1}, timeout=120)
    assert r.status_code == 200, r.text
    with wave.open(io.BytesIO(r.content)) as w:
        assert abs(w.getnframes() / w.getframerate() - 0.5) <= 0.02


def post_raw(server, body: bytes, content_type: str = "application/json") -> requests.Response:
    return requests.post(server.url + GEN, data=body, headers={"Content-Type": content_type}, timeout=60)


@pytest.mark.parametrize("body", [b"{", b"{\"duration\": }", b"[1, 2", b"\xff\xfe{}", b"", b"null", b"[]", b"42"],
                         ids=["open-brace", "missing-value", "open-array", "not-utf8", "empty", "null", "array", "number"])
def test_malformed_or_non_object_json(server, body):
    assert_error(post_raw(server, body), 400, "invalid_request_error")
    still_serves(server)


@pytest.mark.parametrize("field,value", [
    ("duration", "5"), ("duration", True), ("duration", None), ("seed", "x"), ("seed", 1.5), ("seed", -1),
    ("top_k", 2.5), ("top_p", "high"), ("temperature", [1]), ("cfg", {"a": 1}), ("stream", "yes"),
    ("prompt", 5), ("format", "aiff"), ("normalize", "loud"), ("greedy", 1),
])
def test_wrong_types_and_values(server, field, value):
    assert_error(requests.post(server.url + GEN, json={"duration": 1, field: value}, timeout=60),
                 400, "invalid_request_error", field)


def test_unknown_field_is_named(server):
    assert_error(requests.post(server.url + GEN, json={"duration": 1, "durration": 2}, timeout=60),
                 400, "invalid_request_error", "durration")


def test_unknown_model(server):
    assert_error(requests.post(server.url + GEN, json={"duration": 1, "model": "no-such-model"}, timeout=60),
                 404, "not_found_error", "no-such-model")
    r = requests.post(server.url + GEN, json={"duration": 0.5, "model": "musicgen_tiny"}, timeout=120)
    assert r.status_code == 200, r.text
    still_serves(server)


@pytest.mark.parametrize("raw", ["-1", "0", "-0.0", "1e9", "121", "1e400", "NaN", "Infinity", "-Infinity"])
def test_bad_durations(server, raw):
    # Non-finite numbers are not JSON: a strict parser says so, a lenient one must refuse the value.
    r = post_raw(server, f'{{"duration": {raw}}}'.encode())
    assert_error(r, 400, "invalid_request_error")
    if raw not in ("NaN", "Infinity", "-Infinity", "1e400"):
        assert "duration" in r.json()["error"]["message"]
    still_serves(server)


def test_ten_megabyte_prompt(server):
    r = requests.post(server.url + GEN, json={"prompt": "a" * (10 * 1024 * 1024), "duration": 1}, timeout=120)
    error = assert_error(r, (400, 413), ("invalid_request_error", "payload_too_large_error"))
    if r.status_code == 400:
        assert "prompt" in error["message"]
    still_serves(server)


@pytest.mark.parametrize("payload", [b"", b"not audio at all" * 100, b"RIFF\x10\x00\x00\x00WAVEfmt "],
                         ids=["empty", "text", "truncated-wav"])
def test_bad_audio_upload(server, payload):
    r = requests.post(server.url + GEN, data={"duration": "1", "prompt": "x"},
                      files={"melody": ("melody.wav", payload, "audio/wav")}, timeout=60)
    # The tiny model is not a melody model: any melody upload is refused, undecodable or not.
    assert_error(r, 400, "invalid_request_error", "melody")
    still_serves(server)


def test_wrong_content_type(server):
    assert_error(post_raw(server, b"duration=1", "text/plain"), 415, "unsupported_media_type_error")


def test_unknown_route_and_wrong_method(server):
    assert_error(requests.get(server.url + "/v1/nothing", timeout=30), 404, "not_found_error")
    assert_error(requests.get(server.url + GEN, timeout=30), 405, "method_not_allowed_error")


def read_response_head(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def test_oversized_body_sent_whole(server):
    r = requests.post(server.url + GEN, data=b" " * (17 * 1024 * 1024),
                      headers={"Content-Type": "application/json"}, timeout=120)
    assert_error(r, 413, "payload_too_large_error")
    still_serves(server)


def test_oversized_body_announced_and_not_sent(server):
    # Headers announce 64 MB (over --max-body-mb 16) and the body never comes: a 413, without
    # waiting for (or buffering) the body. cpp-httplib discards an oversized body before it
    # answers, so the answer may come when --read-timeout ends the wait.
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(b"POST " + GEN.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 67108864\r\n\r\n{\"duration\": 1, \"prompt\": \"")
        head = read_response_head(sock, 30)
    assert head.startswith(b"HTTP/1.1 413"), head[:300]
    still_serves(server)


def test_stalled_upload_is_timed_out_and_freed(server):
    # Half a body, then silence: --read-timeout closes the connection (or it answers 4xx),
    # and the request never holds a slot.
    start = time.monotonic()
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(b"POST " + GEN.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"duration\": 1, \"pro")
        head = read_response_head(sock, 60)
    waited = time.monotonic() - start
    assert waited < READ_TIMEOUT_S + 10, f"the server kept a stalled upload open for {waited:.0f} s (--read-timeout {READ_TIMEOUT_S})"
    assert head == b"" or head.split(b" ")[1].startswith(b"4"), head[:300]
    text = server.metrics()
    assert metric_value(text, "musicgen:requests_running") == 0
    assert metric_value(text, "musicgen:requests_waiting") == 0
    still_serves(server)


def cancelled_count(server) -> float:
    return metric_value(server.metrics(), "musicgen:requests_total", 'status="cancelled"') or 0


def test_client_disconnecting_mid_stream_cancels(server):
    before = cancelled_count(server)
    body = json.dumps({"prompt": "long", "duration": 120, "seed": 1, "stream": True}).encode()
    with socket.create_connection(address(server), timeout=60) as sock:
        sock.sendall(b"POST " + GEN.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = read_response_head(sock, 60)
        assert head.startswith(b"HTTP/1.1 200"), head[:300]
    # Closed after the first audio: the request is cancelled at the next step and frees its slot.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = server.metrics()
        if cancelled_count(server) == before + 1 and metric_value(text, "musicgen:requests_running") == 0:
            break
        time.sleep(0.2)
    assert cancelled_count(server) == before + 1, "the dropped stream was not counted as cancelled"
    assert metric_value(server.metrics(), "musicgen:requests_running") == 0, "the dropped stream still runs"
    still_serves(server)
