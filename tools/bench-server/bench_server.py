#!/usr/bin/env python3
"""musicgen-server throughput: one streamed request alone, then N at once (continuous batching).

Reports aggregate decode steps per second (request-steps: a step shared by 8 requests counts 8),
the speed-up of N over one, and time to first audio (first streamed byte) p50/p95, with the
machine's load average. Standard library only. One command (docs/PERFORMANCE.md):

  python3 tools/bench-server/bench_server.py --server build/tools/musicgen-server/musicgen-server \
      --model tools/reference/local/musicgen-small-random --concurrency 8 --duration 3 [--rounds 3]

Rounds: the pair (1 alone, N at once) is run --rounds times, alternating, on the same server, and
each round's speed-up is the ratio of two runs a few seconds apart: on a machine whose memory
bandwidth moves minute to minute, a ratio of runs far apart measures the machine as much as the
server. Each round's pair and speed-up is printed, then the median speed-up and its range; the
lines after those are the last round's, as before (its speed-up, times to first audio, CPU time).

Two speed-ups per round: by wall time (everything a request costs: the text encoder, the decode
steps, EnCodec, HTTP) and in the decode loop (request-steps per second of the server's
musicgen:decode_step_seconds_total: the decoder steps and their draws only, which is what the
requests share; EnCodec runs once per request however many share the steps).

Each round also says how the N requests' steps ran (musicgen:decode_steps_by_way_total): shared,
or as step lanes, paced or free (--step-lanes, chosen by timing). It says how long a cache line
took to go from one core to the other before, between and after its runs (bench-memory
--handoff, found beside the server in its build folder, or --handoff-tool). On a VM that number
tells the two placements of its vCPUs apart: near ~50 ns; far ~165 ns, where reads are faster and
every shared op slower (docs/PERFORMANCE.md, "Machine"). So the summary also gives the median
speed-up of the rounds that stayed near and of those that stayed far.

The same tool also reads 256 MB at the same three moments (bench-memory --mb 256 --reps 3, ~2 s):
the single request is bound by that rate, and the hand-off does not always tell it (a near round
can read fast). Rounds that read under 40 GB/s all three times are "slow reads" (the rate this
VM's issues were written at, ~34 GB/s), over 45 "fast reads"; the summary gives both medians, and
that of the rounds where both measures agree on the slow machine (near, slow reads). Both are
snapshots around the runs: the VM can change placement within a run.

Random weights: the timing is what matters here, not the music.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def first_audio_and_total(host, port, body):
    """(seconds to the first audio byte after the WAV header, seconds to the end, bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=3600)
    t0 = time.monotonic()
    conn.request("POST", "/v1/music/generations", json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
    got, first = 0, None
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        got += len(chunk)
        if first is None and got > (44 if r.getheader("Content-Type", "").startswith("audio/wav") and
                                    r.getheader("Transfer-Encoding") == "chunked" else 0):
            first = time.monotonic() - t0
    return first, time.monotonic() - t0, got


WAYS = ("shared", "lanes_paced", "lanes_free", "solo")  # musicgen:decode_steps_by_way_total's labels


def way_sample(way):
    return f'musicgen:decode_steps_by_way_total{{way="{way}"}}'


# The counters a batch is measured by: request-steps, decode-loop seconds, and the steps of each way.
COUNTERS = (["musicgen:request_decode_steps_total", "musicgen:decode_step_seconds_total"] +
            [way_sample(w) for w in WAYS])


def counters(host, port):
    """COUNTERS' values from one scrape of /metrics (0 for a sample that is not there)."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics")
    values = dict.fromkeys(COUNTERS, 0.0)
    for line in conn.getresponse().read().decode().splitlines():
        name, _, value = line.rpartition(" ")
        if name in values:
            values[name] = float(value)
    return values


NEAR_NS, FAR_NS = 100, 120  # hand-offs below / above: the vCPUs close together / far apart
SLOW_GBPS, FAST_GBPS = 40, 45  # read probes below / above: the VM's slow and fast memory periods


def tool_number(tool, args, timeout):
    """The last number bench-memory prints when run with args; None without the tool or a number."""
    if not tool:
        return None
    try:
        out = subprocess.run([tool] + args, capture_output=True, text=True, timeout=timeout).stdout
        value = float(out.split()[-1])
        return value if value > 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def handoff_ns(tool):
    """bench-memory --handoff: one cache line's trip between two cores, in ns."""
    return tool_number(tool, ["--handoff"], 30)


def read_gbps(tool):
    """bench-memory --mb 256 --reps 3: the machine's read rate now, in GB/s."""
    return tool_number(tool, ["--mb", "256", "--reps", "3"], 60)


def agreed(values, low, high, names):
    """names[0] when every value measured around a round is below low, names[1] when all are above
    high, else names[2] (or "unknown" when one is missing)."""
    if any(v is None for v in values):
        return "unknown"
    if all(v < low for v in values):
        return names[0]
    if all(v > high for v in values):
        return names[1]
    return names[2]


def placement(handoffs):
    return agreed(handoffs, NEAR_NS, FAR_NS, ("near", "far", "mixed"))


def read_period(rates):
    return agreed(rates, SLOW_GBPS, FAST_GBPS, ("slow reads", "fast reads", "mixed reads"))


def cpu_seconds(pid):
    """The server's CPU time so far (user + system, all threads), from /proc; 0 where there is none."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_batch(host, port, n, duration, seed0, stream=True):
    results = [None] * n
    before = counters(host, port)

    def one(i):
        results[i] = first_audio_and_total(host, port, {"prompt": f"benchmark {i}", "duration": duration,
                                                        "seed": seed0 + i, "stream": stream})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    after = counters(host, port)
    grew = {name: after[name] - before[name] for name in COUNTERS}
    ways = {w: grew[way_sample(w)] for w in WAYS}
    return (wall, grew["musicgen:request_decode_steps_total"], [r[0] for r in results],
            grew["musicgen:decode_step_seconds_total"], ways)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def positive_int(text):
    """argparse type: a whole number >= 1 ("0", "-2", "2.5" and "abc" are refused)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return v


def run_round(host, port, pid, args, stream):
    """One (1 alone, N at once) pair: wall, steps, first-audio times and server CPU seconds of each,
    and the core hand-off and the read rate before, between and after the two runs."""
    h0, g0 = handoff_ns(args.handoff_tool), read_gbps(args.handoff_tool)
    c0 = cpu_seconds(pid)
    w1, s1, f1, l1, _ = run_batch(host, port, 1, args.duration, 100, stream)
    hm, gm = handoff_ns(args.handoff_tool), read_gbps(args.handoff_tool)
    c1 = cpu_seconds(pid)
    wn, sn, fn, ln, ways = run_batch(host, port, args.concurrency, args.duration, 200, stream)
    cn = cpu_seconds(pid) - c1
    h1, g1 = handoff_ns(args.handoff_tool), read_gbps(args.handoff_tool)
    return {"handoff": (h0, hm, h1), "placement": placement((h0, hm, h1)),
            "reads": (g0, gm, g1), "period": read_period((g0, gm, g1)),
            "w1": w1, "s1": s1, "f1": f1, "c1": c1 - c0, "wn": wn, "sn": sn, "fn": fn, "cn": cn, "ways": ways,
            "one": s1 / w1, "many": sn / wn,
            "loop_one": s1 / l1 if l1 > 0 else 0.0, "loop_many": sn / ln if ln > 0 else 0.0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="build/tools/musicgen-server/musicgen-server")
    ap.add_argument("--model", default="tools/reference/local/musicgen-small-random")
    ap.add_argument("--concurrency", type=positive_int, default=8)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--weights", default="f32", help="f32, f16, bf16, q8 or q4")
    ap.add_argument("--no-stream", action="store_true",
                    help="whole files instead of streams: the EnCodec decode then runs beside the decode loop "
                         "instead of on it (time to first audio becomes the whole latency)")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="one more option for the server, repeated for each (e.g. --server-arg=--step-lanes "
                         "--server-arg=0)")
    ap.add_argument("--rounds", type=positive_int, default=3,
                    help="(1 alone, N at once) pairs run one after the other; the median speed-up is reported")
    ap.add_argument("--handoff-tool", default=None, metavar="PATH",
                    help="bench-memory, run with --handoff and as a 256 MB read around each round (default: the "
                         "one in the server's build folder, when there is one)")
    args = ap.parse_args()
    if args.handoff_tool is None:
        guess = Path(args.server).resolve().parent.parent / "bench-memory" / "bench-memory"
        args.handoff_tool = str(guess) if guess.exists() else ""

    cmd = [args.server, "--model", args.model, "--port", "0", "--max-batch", str(args.concurrency),
           "--threads", str(args.threads), "--weights", args.weights] + args.server_arg
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        m = None
        while m is None:
            line = proc.stdout.readline()
            if not line:
                sys.exit("the server exited before listening")
            m = re.search(r"listening on http://([\d.]+):(\d+)", line)
        host, port = m.group(1), int(m.group(2))
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        while True:
            try:
                c = http.client.HTTPConnection(host, port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        first_audio_and_total(host, port, {"prompt": "warm up", "duration": 0.5, "seed": 1, "stream": True})
        load = open("/proc/loadavg").read().split()[:3]
        stream = not args.no_stream
        rounds = []
        for i in range(args.rounds):
            r = run_round(host, port, proc.pid, args, stream)
            rounds.append(r)
            loop = (f"; in the decode loop {r['loop_one']:7.2f} and {r['loop_many']:7.2f}, "
                    f"x{r['loop_many'] / r['loop_one']:.2f}" if r["loop_one"] > 0 else "")
            ways = "/".join(f"{r['ways'][w]:.0f}" for w in WAYS[:3])
            hand = ("; hand-off " + "/".join(f"{h:.0f}" for h in r["handoff"]) + f" ns, {r['placement']}"
                    if r["placement"] != "unknown" else "")
            reads = ("; read " + "/".join(f"{g:.0f}" for g in r["reads"]) + f" GB/s, {r['period']}"
                     if r["period"] != "unknown" else "")
            print(f"round {i + 1}/{args.rounds}: 1 alone {r['one']:7.2f} decode steps/s, {args.concurrency} at once "
                  f"{r['many']:7.2f} decode steps/s, speed-up x{r['many'] / r['one']:.2f}{loop} "
                  f"(load {open('/proc/loadavg').read().split()[0]}; {args.concurrency} at once: steps "
                  f"shared/paced/free {ways}{hand}{reads})", flush=True)
        ratios = [r["many"] / r["one"] for r in rounds]
        loop_ratios = [r["loop_many"] / r["loop_one"] for r in rounds if r["loop_one"] > 0]
        load_after = open("/proc/loadavg").read().split()[:3]
        print(f"speed-up {args.concurrency} vs 1 over {args.rounds} rounds: median x{statistics.median(ratios):.2f} "
              f"(range x{min(ratios):.2f}-x{max(ratios):.2f}) by wall time" +
              (f"; in the decode loop median x{statistics.median(loop_ratios):.2f} "
               f"(range x{min(loop_ratios):.2f}-x{max(loop_ratios):.2f})" if loop_ratios else ""))
        groups = (("with the vCPUs near", lambda r: r["placement"] == "near"),
                  ("with the vCPUs far", lambda r: r["placement"] == "far"),
                  ("with slow reads (< 40 GB/s)", lambda r: r["period"] == "slow reads"),
                  ("with fast reads (> 45 GB/s)", lambda r: r["period"] == "fast reads"),
                  ("near with slow reads (both agree)",
                   lambda r: r["placement"] == "near" and r["period"] == "slow reads"))
        for words, member in groups:
            group = [r for r in rounds if member(r) and r["loop_one"] > 0]
            if group:
                by_wall = [r["many"] / r["one"] for r in group]
                by_loop = [r["loop_many"] / r["loop_one"] for r in group]
                print(f"  {len(group)} round{'s' if len(group) > 1 else ''} {words}: median "
                      f"x{statistics.median(by_wall):.2f} by wall time, x{statistics.median(by_loop):.2f} in the "
                      f"decode loop (range x{min(by_loop):.2f}-x{max(by_loop):.2f})")
        last = rounds[-1]
        w1, s1, f1, c1, wn, sn, fn, cn = (last[k] for k in ("w1", "s1", "f1", "c1", "wn", "sn", "fn", "cn"))
        one, many = last["one"], last["many"]
        print(f"model {args.model} weights {args.weights} duration {args.duration} s "
              f"{'streamed' if stream else 'whole files'}, load {' '.join(load)} -> "
              f"{' '.join(load_after)}; last round:")
        print(f"1 alone:          {one:7.2f} decode steps/s  ({w1:.1f} s), time to first audio {f1[0]:.2f} s")
        print(f"{args.concurrency} at once:        {many:7.2f} decode steps/s  ({wn:.1f} s), speed-up x{many / one:.2f}")
        print(f"time to first audio, {args.concurrency} at once: p50 {pct(fn, 0.5):.2f} s, p95 {pct(fn, 0.95):.2f} s")
        if c1 > 0 and cn > 0:  # CPU time grows less than wall time when others share the cores
            print(f"server CPU time: 1 alone {c1:.1f} s, {args.concurrency} at once {cn:.1f} s; request-steps per "
                  f"CPU second x{(sn / cn) / (s1 / c1):.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=120)


if __name__ == "__main__":
    main()
