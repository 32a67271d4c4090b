#!/usr/bin/env python3
"""Load test of musicgen-server: N requests at concurrency C on the tiny model, then checks that
nothing failed, that the server let go of everything (running/waiting back to 0, sessions gauge back
to its level before, RSS within 10 % of its level before), and that it still answers.

    build/pyvenv/bin/python tests/server/load_test.py                   # 64 requests, 8 at a time
    build/pyvenv/bin/python tests/server/load_test.py --requests 256 --concurrency 16 --duration 2

The server is started here (the binary of $MUSICGEN_SERVER_BIN or --server-bin, on a free loopback
port). The RSS baseline is taken after a warm-up (default 128 requests at the same concurrency):
the first bursts grow pools to the concurrency (per-request state, HTTP worker threads, malloc's
per-thread arenas), which is not a leak: on the tiny model RSS goes from ~17 MiB at start to ~27 MiB
after one burst of 64 and ~29.5 MiB after two, then stays there. What the load adds after that is
what this test bounds.
Exit status 0 when every check passes, 1 otherwise (the report says which failed).
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import Server, metric_value, model_dir, server_binary  # noqa: E402

SESSIONS_GAUGE = "musicgen:sessions_active"


def one_request(url: str, index: int, duration: float) -> Tuple[Optional[str], float]:
    """(None or what went wrong, seconds). Even requests stream, odd ones get a finished file."""
    stream = index % 2 == 0
    start = time.monotonic()
    try:
        r = requests.post(url + "/v1/music/generations", timeout=600,
                          json={"prompt": f"load test {index}", "duration": duration, "seed": index, "stream": stream})
        seconds = time.monotonic() - start
        if r.status_code != 200:
            return f"request {index}: HTTP {r.status_code}: {r.text[:300]}", seconds
        data = r.content
        if stream:  # streamed WAV: header sizes unknown (0xFFFFFFFF), the samples follow it
            got = (len(data) - 44) / 2 / 32000
        else:
            with wave.open(io.BytesIO(data)) as w:
                got = w.getnframes() / w.getframerate()
        if data[:4] != b"RIFF" or abs(got - duration) > 0.05:
            return f"request {index}: {len(data)} bytes, {got:.3f} s of audio, not {duration} s", seconds
        return None, seconds
    except requests.RequestException as e:
        return f"request {index}: {e}", time.monotonic() - start


def burst(url: str, count: int, concurrency: int, duration: float, first: int = 0) -> List[Tuple[Optional[str], float]]:
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda i: one_request(url, i, duration), range(first, first + count)))


def settled(server: Server, timeout: float = 15.0) -> str:
    """/metrics once running and waiting are back to 0 (or the last text after timeout seconds)."""
    deadline = time.monotonic() + timeout
    text = server.metrics()
    while time.monotonic() < deadline:
        if (metric_value(text, "musicgen:requests_running") == 0
                and metric_value(text, "musicgen:requests_waiting") == 0):
            break
        time.sleep(0.2)
        text = server.metrics()
    return text


def run(args: argparse.Namespace) -> int:
    server = Server(args.server_args)
    failures: List[str] = []
    rss_start = server.rss_kib()
    try:
        warmup = burst(server.url, args.warmup, args.concurrency, args.duration, first=10_000)
        failures += [e for e, _ in warmup if e]
        before = settled(server)
        sessions_before = metric_value(before, SESSIONS_GAUGE)
        rss_before = server.rss_kib()

        start = time.monotonic()
        results = burst(server.url, args.requests, args.concurrency, args.duration)
        wall = time.monotonic() - start
        failures += [e for e, _ in results if e]

        after = settled(server)
        time.sleep(1.0)   # let freed memory go back (allocator trimming is not instant)
        rss_after = server.rss_kib()
        latencies = sorted(s for _, s in results)
        print(f"{args.requests} requests at concurrency {args.concurrency}, {args.duration} s each: "
              f"{len([e for e, _ in results if e])} failed, {wall:.1f} s wall, "
              f"{args.requests * args.duration / wall:.2f} audio s / s; latency p50 "
              f"{statistics.median(latencies):.2f} s, p95 {latencies[int(0.95 * (len(latencies) - 1))]:.2f} s, "
              f"max {latencies[-1]:.2f} s")
        print(f"RSS {rss_start / 1024:.1f} MiB at start, {rss_before / 1024:.1f} MiB after {args.warmup} warm-up requests -> {rss_after / 1024:.1f} MiB after the load "
              f"({100.0 * (rss_after - rss_before) / rss_before:+.1f} %); load average {os.getloadavg()[0]:.2f}")

        for name in ("musicgen:requests_running", "musicgen:requests_waiting"):
            if metric_value(after, name) != 0:
                failures.append(f"{name} is {metric_value(after, name)} after the load, not 0")
        if sessions_before is None:
            failures.append(f"/metrics has no {SESSIONS_GAUGE}: leaked sessions cannot be checked")
        elif metric_value(after, SESSIONS_GAUGE) != sessions_before:
            failures.append(f"{SESSIONS_GAUGE} went from {sessions_before} to {metric_value(after, SESSIONS_GAUGE)}")
        ok = metric_value(after, "musicgen:requests_total", 'status="ok"') or 0
        if ok != args.requests + args.warmup:
            failures.append(f"musicgen:requests_total{{status=\"ok\"}} is {ok}, not {args.requests + args.warmup}")
        if rss_after > rss_before * (1 + args.rss_tolerance):
            failures.append(f"RSS grew by more than {args.rss_tolerance:.0%}: {rss_before} KiB -> {rss_after} KiB")
        if requests.get(server.url + "/health", timeout=10).status_code != 200:
            failures.append("/health is not 200 after the load")
        if not server.alive():
            failures.append("the server exited")
    finally:
        rc = server.stop()
    if rc != 0:
        failures.append(f"the server exited with {rc} on SIGTERM, not 0")
    for f in failures:
        print("FAIL:", f)
    print("load test:", "passed" if not failures else f"failed ({len(failures)} problems)")
    return 0 if not failures else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds of audio per request")
    parser.add_argument("--warmup", type=int, default=128, help="requests before the RSS baseline")
    parser.add_argument("--rss-tolerance", type=float, default=0.10)
    parser.add_argument("--server-bin", help=f"default: $MUSICGEN_SERVER_BIN or {server_binary()}")
    parser.add_argument("--model", help=f"default: $MUSICGEN_SERVER_MODEL or {model_dir()}")
    parser.add_argument("server_args", nargs="*", help="more musicgen-server options (after --)")
    args = parser.parse_args()
    if args.server_bin:
        os.environ["MUSICGEN_SERVER_BIN"] = args.server_bin
    if args.model:
        os.environ["MUSICGEN_SERVER_MODEL"] = args.model
    if not server_binary().exists():
        print(f"load test: {server_binary()} does not exist: build the musicgen-server target", file=sys.stderr)
        return 1
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
