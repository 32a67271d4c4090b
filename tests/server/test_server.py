"""musicgen-server's own behaviour (tools/musicgen-server/API.md) on the tiny model: routes,
audio of the right length, byte-identical outputs under continuous batching, streaming, the
queue limit, cancellation by disconnect and a clean SIGTERM. Bad-request coverage lives in
test_faults.py. Loopback only, ephemeral ports, every wait bounded."""
from __future__ import annotations

import concurrent.futures as cf
import io
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import wave

import pytest
import requests

from conftest import metric_value

GEN = "/v1/music/generations"


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def generate(server, timeout=120, **body) -> requests.Response:
    return requests.post(server.url + GEN, json=body, timeout=timeout)


def wait_metric(server, name, want, labels="", timeout=30.0) -> float:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = metric_value(server.metrics(), name, labels)
        if value == want:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{name}{{{labels}}} is {value}, expected {want} within {timeout} s")


def test_health_models_and_page(server):
    assert requests.get(server.url + "/health", timeout=5).json() == {"status": "ok"}
    models = requests.get(server.url + "/v1/models", timeout=5).json()
    card = models["data"][0]
    assert card["id"] == "musicgen_tiny" and card["sample_rate"] == 32000 and card["channels"] == 1
    assert card["melody"] is False and card["codec"] is False
    page = requests.get(server.url + "/", timeout=5)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()


@pytest.mark.parametrize("fmt,ctype", [("wav", "audio/wav"), ("flac", "audio/flac"), ("ogg", "audio/ogg"),
                                       ("mp3", "audio/mpeg")])
def test_generation_formats(server, fmt, ctype):
    r = generate(server, prompt="lofi", duration=1.0, seed=1, format=fmt)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == ctype
    assert r.headers["x-seed"] == "1"
    if fmt == "wav":
        assert abs(wav_seconds(r.content) - 1.0) <= 0.02
    assert len(r.content) > 100


def test_same_seed_same_bytes_and_seed_matters(server):
    a = generate(server, prompt="jazz", duration=0.5, seed=42)
    b = generate(server, prompt="jazz", duration=0.5, seed=42)
    c = generate(server, prompt="jazz", duration=0.5, seed=43)
    assert a.content == b.content
    assert a.content != c.content


def test_batched_requests_are_byte_identical_to_each_alone(server):
    """Three requests with different prompts, lengths and settings, started 20 ms apart so that
    they join the decode loop at different steps and leave at different steps: each output is
    byte-for-byte the output of the same request sent alone."""
    bodies = [dict(prompt="lofi beat", duration=6, seed=7),
              dict(prompt="", duration=4, seed=8, top_k=50),
              dict(prompt="drums", duration=5, seed=9, cfg=1.0, temperature=0.8)]
    alone = [generate(server, **b).content for b in bodies]
    before = metric_value(server.metrics(), "musicgen:decode_steps_total")
    loop_before = metric_value(server.metrics(), "musicgen:decode_step_seconds_total")
    t0 = time.monotonic()

    def staggered(i):
        time.sleep(0.02 * i)
        return generate(server, **bodies[i]).content

    with cf.ThreadPoolExecutor(3) as pool:
        together = list(pool.map(staggered, range(3)))
    for i in range(3):
        assert together[i] == alone[i], f"request {i} differs when batched"
    # They shared steps: fewer decoder steps than the three alone (50 frames/s + 3 delay steps each).
    steps = metric_value(server.metrics(), "musicgen:decode_steps_total") - before
    assert steps < sum(b["duration"] * 50 + 3 for b in bodies), steps
    # The decode loop's time: some, and no more than the wall time the three took.
    loop = metric_value(server.metrics(), "musicgen:decode_step_seconds_total") - loop_before
    assert 0 < loop <= time.monotonic() - t0, loop


def test_requests_sent_together_are_byte_identical_to_each_alone(server):
    """Requests sent at the same moment join at one step boundary (their prompts encoded in one
    pass) and finish at the same step: each output is byte-for-byte the output of the same request
    sent alone."""
    bodies = [dict(prompt="lofi beat", duration=2, seed=11), dict(prompt="jazz piano trio", duration=2, seed=12),
              dict(prompt="drums", duration=2, seed=13, cfg=1.0), dict(prompt="", duration=2, seed=14)]
    alone = [generate(server, **b).content for b in bodies]
    with cf.ThreadPoolExecutor(len(bodies)) as pool:
        together = list(pool.map(lambda b: generate(server, **b).content, bodies))
    for i in range(len(bodies)):
        assert together[i] == alone[i], f"request {i} differs when sent together"


def test_step_lanes_and_the_whole_pool_give_the_same_bytes(start_server):
    """Six requests, streamed and whole, on a server whose shared step may run as 2 lanes of
    requests (lm/step_lanes.h: the first steps try every way, then the fastest runs) and on one
    where it never does: byte for byte the same answers. /metrics counts the steps of each way:
    the first server tried both lane ways, the second never ran one."""
    bodies = [dict(prompt=f"lane {i}", duration=1.5, seed=30 + i, cfg=3.0 if i % 2 else 1.0, stream=i < 3)
              for i in range(6)]

    def answers(s):
        def one(b):
            with requests.post(s.url + GEN, json=b, stream=b["stream"], timeout=300) as r:
                assert r.status_code == 200, r.text
                return b"".join(r.iter_content(65536))
        with cf.ThreadPoolExecutor(len(bodies)) as pool:
            return list(pool.map(one, bodies))

    def ways(s):
        text = s.metrics()
        by_way = {w: metric_value(text, "musicgen:decode_steps_by_way_total", f'way="{w}"')
                  for w in ("shared", "lanes_paced", "lanes_free", "solo")}
        assert sum(by_way.values()) == metric_value(text, "musicgen:decode_steps_total"), by_way
        return by_way

    with_lanes, without = start_server("--threads", "2", "--step-lanes", "2"), start_server("--threads", "2",
                                                                                            "--step-lanes", "0")
    lanes, whole = answers(with_lanes), answers(without)
    for i in range(len(bodies)):
        assert lanes[i] == whole[i], f"request {i} differs between lanes and the whole pool"
    probe_steps = 3  # StepWayChooser::kProbeSteps: each way's timed steps in a probe
    tried = ways(with_lanes)
    assert tried["lanes_paced"] >= probe_steps and tried["lanes_free"] >= probe_steps, tried
    never = ways(without)
    assert never["lanes_paced"] == 0 and never["lanes_free"] == 0 and never["shared"] > 0, never


def test_streaming_wav(server):
    with requests.post(server.url + GEN, json={"prompt": "ambient", "duration": 2.0, "seed": 5, "stream": True},
                       stream=True, timeout=120) as r:
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "audio/wav"
        assert r.headers.get("transfer-encoding") == "chunked"
        data = b"".join(r.iter_content(4096))
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert data[4:8] == b"\xff\xff\xff\xff"  # unknown length
    samples = (len(data) - 44) // 2
    assert abs(samples / 32000 - 2.0) <= 0.05, samples


def test_streaming_pcm(server):
    with requests.post(server.url + GEN, json={"duration": 1.0, "seed": 5, "stream": True, "format": "pcm"},
                       stream=True, timeout=120) as r:
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("audio/L16")
        data = b"".join(r.iter_content(4096))
    assert abs(len(data) / 2 / 32000 - 1.0) <= 0.05


def test_streamed_pcm_is_the_whole_decode(server):
    """The streamed samples are the whole-file decode's (float rounding aside: at most 1 LSB of 16-bit PCM)."""
    body = {"prompt": "ambient", "duration": 2.0, "seed": 7, "normalize": "none"}
    whole = generate(server, **body)
    assert whole.status_code == 200, whole.text
    with wave.open(io.BytesIO(whole.content)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        pcm = w.readframes(w.getnframes())
    with requests.post(server.url + GEN, json=dict(body, stream=True, format="pcm"), stream=True, timeout=120) as r:
        assert r.status_code == 200, r.text
        streamed = b"".join(r.iter_content(4096))
    a = [int.from_bytes(pcm[i:i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]
    b = [int.from_bytes(streamed[i:i + 2], "little", signed=True) for i in range(0, len(streamed), 2)]
    assert len(a) == len(b) == 2 * 32000
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1


def test_metrics_are_prometheus_text(server):
    generate(server, duration=0.5, seed=1)
    text = server.metrics()
    for name in ["musicgen:requests_total", "musicgen:requests_running", "musicgen:requests_waiting",
                 "musicgen:batch_size", "musicgen:time_to_first_audio_seconds_bucket",
                 "musicgen:request_latency_seconds_count", "musicgen:generated_audio_seconds_total",
                 "musicgen:decode_steps_per_second", "musicgen:real_time_factor", "musicgen:model_load_seconds"]:
        assert name in text, name
    assert metric_value(text, "musicgen:requests_total", 'status="ok"') >= 1
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        # rc 1: the text does not parse; rc 3: lint problems. The llama.cpp/vLLM "prefix:name"
        # style (API.md) is flagged by the linter on purpose; any other problem fails.
        problems = [l for l in (check.stdout + check.stderr).splitlines()
                    if l.strip() and "should not contain ':'" not in l]
        assert check.returncode in (0, 3) and not problems, problems


def test_unknown_route_and_method(server):
    r = requests.get(server.url + "/v2/nothing", timeout=5)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = requests.get(server.url + GEN, timeout=5)
    assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed_error"


def test_oversized_body_is_413(start_server):
    s = start_server("--max-body-mb", "0.01")
    r = requests.post(s.url + GEN, data=b"{" + b" " * 20000 + b"}", headers={"Content-Type": "application/json"},
                      timeout=30)
    assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large_error"


def test_duration_above_server_limit(start_server):
    s = start_server("--max-duration", "2")
    r = requests.post(s.url + GEN, json={"duration": 3}, timeout=30)
    assert r.status_code == 400 and "duration" in r.json()["error"]["message"]


def test_queue_full_is_429_with_retry_after(start_server):
    s = start_server("--max-batch", "1", "--max-queue", "1")
    # Long enough that the second request is still waiting when it is looked for: the tiny model
    # makes 20 s of audio in well under a second on an idle machine.
    body = {"prompt": "long", "duration": 120, "seed": 1}
    results = []
    threads = [threading.Thread(target=lambda: results.append(requests.post(s.url + GEN, json=body, timeout=300)))
               for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.3)
    wait_metric(s, "musicgen:requests_waiting", 1)
    r = requests.post(s.url + GEN, json=body, timeout=30)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["type"] == "queue_full_error"
    assert int(r.headers["retry-after"]) >= 1
    for t in threads:
        t.join(300)
    assert [x.status_code for x in results] == [200, 200]


def raw_request(server, body: bytes):
    u = urllib.parse.urlparse(server.url)
    sock = socket.create_connection((u.hostname, u.port), timeout=10)
    sock.sendall(b"POST " + GEN.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return sock


@pytest.mark.parametrize("stream", [False, True])
def test_disconnect_cancels_and_frees_the_slot(start_server, stream):
    s = start_server("--max-batch", "1")
    body = ('{"prompt": "gone", "duration": 60, "seed": 1, "stream": %s}' % ("true" if stream else "false")).encode()
    sock = raw_request(s, body)
    wait_metric(s, "musicgen:requests_running", 1)
    if stream:
        sock.recv(100)  # the stream started
    sock.close()
    wait_metric(s, "musicgen:requests_total", 1, 'status="cancelled"', timeout=60)
    wait_metric(s, "musicgen:requests_running", 0)
    # The slot is free: a new request runs at once.
    r = requests.post(s.url + GEN, json={"duration": 0.5, "seed": 2}, timeout=60)
    assert r.status_code == 200


def test_timeout_is_504(start_server):
    s = start_server("--timeout", "0.5")
    r = requests.post(s.url + GEN, json={"duration": 60, "seed": 1}, timeout=60)
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"


def test_sigterm_finishes_running_work_and_exits_0(start_server):
    s = start_server()
    result = {}

    def run():
        try:
            result["r"] = requests.post(s.url + GEN, json={"duration": 20, "seed": 1}, timeout=300)
        except requests.RequestException as e:  # reported by the assertion below
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    wait_metric(s, "musicgen:requests_running", 1)
    s.proc.send_signal(signal.SIGTERM)
    t.join(300)
    assert "r" in result, result
    assert result["r"].status_code == 200, result["r"].text
    assert abs(wav_seconds(result["r"].content) - 20.0) <= 0.02
    assert s.proc.wait(timeout=60) == 0


def test_compress_decompress_roundtrip(start_server):
    from conftest import ROOT
    s = start_server("--codec", str(ROOT / "tests" / "data" / "models" / "encodec_32khz_tiny"))
    assert requests.get(s.url + "/v1/models", timeout=5).json()["data"][0]["codec"] is True
    audio = generate(s, duration=1.0, seed=3).content
    ecdc = requests.post(s.url + "/v1/audio/compress", data=audio, headers={"Content-Type": "audio/wav"}, timeout=60)
    assert ecdc.status_code == 200, ecdc.text
    assert ecdc.headers["content-type"] == "application/octet-stream" and len(ecdc.content) > 10
    back = requests.post(s.url + "/v1/audio/decompress", data=ecdc.content, timeout=60)
    assert back.status_code == 200, back.text
    assert abs(wav_seconds(back.content) - 1.0) <= 0.05
    bad = requests.post(s.url + "/v1/audio/decompress", data=b"not an ecdc file", timeout=60)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    bad = requests.post(s.url + "/v1/audio/compress", data=b"not audio", timeout=60)
    assert bad.status_code == 400


def test_compress_without_codec_is_501(server):
    r = requests.post(server.url + "/v1/audio/compress", data=b"x", timeout=10)
    assert r.status_code == 501 and r.json()["error"]["type"] == "not_implemented_error"


def test_melody_model_multipart_and_chords(start_server, monkeypatch):
    from conftest import ROOT
    monkeypatch.setenv("MUSICGEN_SERVER_MODEL", str(ROOT / "tests" / "data" / "models" / "musicgen_melody_tiny"))
    s = start_server()
    tune = generate(s, duration=1.0, seed=1).content  # any audio serves as a melody
    r = requests.post(s.url + GEN, data={"prompt": "piano", "duration": "1", "seed": "4"},
                      files={"melody": ("tune.wav", tune, "audio/wav")}, timeout=120)
    assert r.status_code == 200, r.text
    assert abs(wav_seconds(r.content) - 1.0) <= 0.02
    r = generate(s, prompt="piano", duration=1.0, seed=4, chords="C G Am F", bpm=100)
    assert r.status_code == 200, r.text
    r = requests.post(s.url + GEN, data={"duration": "1"}, files={"melody": ("x.wav", b"garbage", "audio/wav")},
                      timeout=60)
    assert r.status_code == 400 and "melody" in r.json()["error"]["message"]
