"""Fixtures for the musicgen-server integration tests: a real server on a free loopback port.

The binary comes from $MUSICGEN_SERVER_BIN (default build/tools/musicgen-server/musicgen-server),
the model from $MUSICGEN_SERVER_MODEL (default tests/data/models/musicgen_tiny). Without the binary
the tests fail (not skip) when $MUSICGEN_REQUIRE_SERVER=1, as scripts/server-integration.sh sets.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import List, Optional

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = ROOT / "build" / "tools" / "musicgen-server" / "musicgen-server"
TINY_MODEL = ROOT / "tests" / "data" / "models" / "musicgen_tiny"


def server_binary() -> Path:
    return Path(os.environ.get("MUSICGEN_SERVER_BIN", str(DEFAULT_BIN)))


def model_dir() -> Path:
    return Path(os.environ.get("MUSICGEN_SERVER_MODEL", str(TINY_MODEL)))


class Server:
    """One musicgen-server process: started with --port 0, its URL read from its first line."""

    def __init__(self, extra_args: Optional[List[str]] = None, startup_timeout: float = 60.0) -> None:
        binary = server_binary()
        cmd = [str(binary), "--model", str(model_dir()), "--host", "127.0.0.1", "--port", "0"]
        cmd += extra_args or []
        self.log: List[str] = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.pid = self.proc.pid
        self.url = self._read_url(startup_timeout)
        self._drain = threading.Thread(target=self._keep_reading, daemon=True)
        self._drain.start()
        self.wait_healthy(startup_timeout)

    def _read_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"musicgen-server exited ({self.proc.wait()}) before listening:\n"
                                   + "".join(self.log))
            self.log.append(line)
            m = re.search(r"listening on (http://[\w.\[\]:-]+)", line)
            if m:
                return m.group(1)
        self.stop()
        raise RuntimeError("musicgen-server printed no 'listening on' line in time:\n" + "".join(self.log))

    def _keep_reading(self) -> None:
        # The pipe must be drained or a chatty server would block on a full pipe.
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("musicgen-server exited during start:\n" + "".join(self.log))
            time.sleep(0.1)
        raise RuntimeError(f"{self.url}/health did not turn 200 within {timeout} s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        """Resident memory now (VmRSS of /proc/<pid>/status), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS in /proc/{self.pid}/status")

    def metrics(self) -> str:
        r = requests.get(self.url + "/metrics", timeout=10)
        r.raise_for_status()
        return r.text

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def metric_value(text: str, name: str, labels: str = "") -> Optional[float]:
    """The value of one sample in Prometheus text (labels as written, e.g. 'status="ok"')."""
    want = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) == 2 and parts[0] == want:
            return float(parts[1])
    return None


def require_binary() -> None:
    if not server_binary().exists():
        msg = (f"{server_binary()} does not exist: build the musicgen-server target "
               "(or set MUSICGEN_SERVER_BIN)")
        if os.environ.get("MUSICGEN_REQUIRE_SERVER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def server():
    require_binary()
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def start_server():
    """Starts servers with extra options; stops them all at the end of the test."""
    require_binary()
    started: List[Server] = []

    def start(*args: str) -> Server:
        s = Server(list(args))
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
