"""musicgen-server's /metrics: promtool accepts it, and a real Prometheus scrapes it.

Needs Debian's `prometheus` package (promtool and prometheus). The Prometheus run listens on a free
loopback port with a temporary config (scrape every 1 s) and storage, and is stopped at the end."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from conftest import metric_value

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

# Every metric API.md names: they must all be there from the start (zeros), so dashboards and
# alerts never see a series appear late.
EXPECTED = [
    "musicgen:requests_total", "musicgen:requests_running", "musicgen:requests_waiting",
    "musicgen:batch_size", "musicgen:decode_steps_total", "musicgen:decode_steps_by_way_total",
    "musicgen:request_decode_steps_total",
    "musicgen:decode_step_seconds_total",
    "musicgen:decode_steps_per_second", "musicgen:time_to_first_audio_seconds",
    "musicgen:request_latency_seconds", "musicgen:queue_wait_seconds",
    "musicgen:generated_audio_seconds_total", "musicgen:real_time_factor",
    "musicgen:model_load_seconds", "musicgen:max_batch", "musicgen:max_queue",
    "musicgen:http_requests_total", "musicgen:sessions_active",
]


def need(tool: str) -> None:
    if not os.path.exists(tool):
        msg = f"{tool} not found (Debian: apt-get install prometheus)"
        if os.environ.get("MUSICGEN_REQUIRE_SERVER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_promtool_accepts_metrics_after_a_request(server):
    need(PROMTOOL)
    r = requests.post(server.url + "/v1/music/generations", json={"prompt": "drums", "duration": 0.5,
                                                                  "seed": 1}, timeout=120)
    assert r.status_code == 200, r.text
    text = server.metrics()
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    # promtool exits 1 when the text does not parse, 3 on lint problems. The names use the
    # llama.cpp/vLLM "prefix:name" style on purpose (API.md), which its linter flags; every other
    # lint problem (missing HELP, counter without _total, bad units...) fails the test.
    problems = [line for line in (check.stdout + check.stderr).splitlines()
                if line.strip() and not line.endswith("metric names should not contain ':'")]
    assert check.returncode in (0, 3) and not problems, (
        f"promtool check metrics (rc {check.returncode}):\n" + "\n".join(problems) + f"\n--- metrics:\n{text}")
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    missing = [n for n in EXPECTED if n not in names]
    assert not missing, f"/metrics lacks {missing}"
    assert metric_value(text, "musicgen:requests_total", 'status="ok"') >= 1


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "musicgen-server.json"


def check_dashboard_queries(api: str) -> None:
    """Every query of the Grafana dashboard is valid PromQL over metrics the server exports."""
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
            answer = requests.get(api + "/query", params={"query": expr}, timeout=5).json()
            assert answer["status"] == "success", f"panel {panel['title']!r}: {expr}: {answer}"
            names = {w for w in expr.replace("(", " ").replace("{", " ").split() if w.startswith("musicgen:")}
            for name in names:
                series = requests.get(api + "/series", params={"match[]": name}, timeout=5).json()["data"]
                assert series, f"panel {panel['title']!r} uses {name}, which the server does not export"


def test_prometheus_scrapes_the_server(server, tmp_path: Path):
    need(PROMETHEUS)
    target = urllib.parse.urlparse(server.url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "musicgen", "scrape_interval": "1s",
                            "static_configs": [{"targets": [target]}]}],
    }))
    port = free_port()
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        health, up = None, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                targets = requests.get(api + "/targets", timeout=2).json()["data"]["activeTargets"]
                health = [t["health"] for t in targets]
                result = requests.get(api + "/query", params={"query": 'up{job="musicgen"}'},
                                      timeout=2).json()["data"]["result"]
                up = [r["value"][1] for r in result]
                if health == ["up"] and up == ["1"]:
                    break
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.5)
        assert health == ["up"] and up == ["1"], (
            f"no successful scrape of {target}: targets {health}, up {up}; prometheus rc {proc.poll()}:\n"
            + (tmp_path / "prometheus.log").read_text()[-3000:])
        # The scraped series are queryable under their own names.
        result = requests.get(api + "/query", params={"query": "musicgen:requests_running"},
                              timeout=5).json()["data"]["result"]
        assert result, "musicgen:requests_running was scraped but cannot be queried"
        check_dashboard_queries(api)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
