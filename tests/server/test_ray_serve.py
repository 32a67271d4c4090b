"""deploy/ray on a local Ray cluster (this machine, loopback): two replicas of the tiny model behind
Serve's HTTP proxy, concurrent requests, valid WAVs of the right length, both replicas serving,
and the API's JSON errors. Needs ray[serve] and the musicgen package in the same environment."""
from __future__ import annotations

import io
import os
import socket
import sys
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
RAY_APP = ROOT / "deploy" / "ray"
TINY_MODEL = ROOT / "tests" / "data" / "models" / "musicgen_tiny"


def _import_or_fail(name: str):
    try:
        return __import__(name)
    except ImportError as e:
        if os.environ.get("MUSICGEN_REQUIRE_SERVER") == "1":
            pytest.fail(f"{name} is not importable: {e}")
        pytest.skip(f"{name} is not importable: {e}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_url():
    _import_or_fail("musicgen")
    ray = _import_or_fail("ray")
    from ray import serve
    # Replica processes import musicgen_serve from deploy/ray: they inherit PYTHONPATH.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RAY_APP), os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(RAY_APP))
    import musicgen_serve

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="warning", log_to_driver=False)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        # Autoscaling pinned to two replicas; one request in hand each, so that concurrent requests
        # must use both.
        app = musicgen_serve.MusicGenServer.options(
            autoscaling_config={"min_replicas": 2, "max_replicas": 2, "target_ongoing_requests": 1},
            max_ongoing_requests=1, ray_actor_options={"num_cpus": 1},
        ).bind(str(TINY_MODEL), device="cpu", threads=1)
        serve.run(app, name="musicgen", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getsampwidth() == 2 and w.getframerate() == 32000
        return w.getnframes() / w.getframerate()


def generate(url: str, seed: int, **extra) -> requests.Response:
    body = {"prompt": "a drum loop", "duration": 1.0, "seed": seed, **extra}
    return requests.post(url + "/v1/music/generations", json=body, timeout=300)


def test_two_replicas_serve_concurrent_requests(ray_url):
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda seed: generate(ray_url, seed), range(6)))
    replicas = set()
    for seed, r in enumerate(answers):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "audio/wav"
        assert r.headers["x-seed"] == str(seed)
        assert abs(wav_seconds(r.content) - 1.0) <= 0.02
        replicas.add(r.headers["x-replica-id"])
    assert len(replicas) == 2, f"replicas that served: {replicas}"


def test_same_seed_same_bytes_on_any_replica(ray_url):
    first = [generate(ray_url, 42).content for _ in range(3)]
    assert first[0] == first[1] == first[2]


def test_streamed_wav(ray_url):
    r = generate(ray_url, 3, stream=True)
    assert r.status_code == 200, r.text
    data = r.content
    assert data[:4] == b"RIFF" and data[36:40] == b"data"
    assert abs((len(data) - 44) / 2 / 32000 - 1.0) <= 0.02


def test_models_and_health(ray_url):
    models = requests.get(ray_url + "/v1/models", timeout=30).json()["data"]
    assert models[0]["id"] == "musicgen_tiny" and models[0]["sample_rate"] == 32000
    assert requests.get(ray_url + "/health", timeout=30).json() == {"status": "ok"}


@pytest.mark.parametrize("body,status,kind,words", [
    ({"duration": -1}, 400, "invalid_request_error", "duration"),
    ({"duration": "5"}, 400, "invalid_request_error", "duration"),
    ({"duration": 1, "model": "nope"}, 404, "not_found_error", "nope"),
    ({"duration": 1, "tempo": 3}, 400, "invalid_request_error", "tempo"),
    ({"duration": 1, "chords": "C G"}, 400, "invalid_request_error", "melody model"),
])
def test_json_errors(ray_url, body, status, kind, words):
    r = requests.post(ray_url + "/v1/music/generations", json=body, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == kind and words in error["message"], error


def test_malformed_json_and_unknown_route(ray_url):
    r = requests.post(ray_url + "/v1/music/generations", data=b"{nope",
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = requests.get(ray_url + "/v1/nothing", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_multipart_fields_and_melody_upload(ray_url):
    # Form fields are read as their JSON types; the tiny model follows no melody, so an upload is refused.
    r = requests.post(ray_url + "/v1/music/generations", files={"prompt": (None, "123"), "duration": (None, "0.5"),
                                                               "seed": (None, "9")}, timeout=300)
    assert r.status_code == 200, r.text
    assert abs(wav_seconds(r.content) - 0.5) <= 0.02 and r.headers["x-seed"] == "9"
    r = requests.post(ray_url + "/v1/music/generations", data={"duration": "1"},
                      files={"melody": ("tune.wav", b"RIFF....WAVE", "audio/wav")}, timeout=60)
    assert r.status_code == 400 and "melody" in r.json()["error"]["message"], r.text
    r = requests.post(ray_url + "/v1/music/generations", data=b"duration=1",
                      headers={"Content-Type": "text/plain"}, timeout=60)
    assert r.status_code == 415 and r.json()["error"]["type"] == "unsupported_media_type_error", r.text
