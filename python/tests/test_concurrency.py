"""One model, several threads: each call runs on its own session, without the GIL; Ctrl-C
(KeyboardInterrupt) stops a generation cleanly and leaves the model usable."""
import _thread
import signal
import threading
import time

import numpy as np
import pytest


def test_two_threads_at_once_give_what_each_gives_alone(tiny):
    requests = [("rock", 3), ("jazz", 4)]
    alone = [tiny.generate(p, duration=2.0, seed=s)[0] for p, s in requests]
    results = [None, None]
    started = threading.Barrier(2)

    def run(i):
        started.wait()
        results[i] = tiny.generate(requests[i][0], duration=2.0, seed=requests[i][1])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, alone):
        assert got is not None and np.array_equal(got, want)


def test_generation_releases_the_gil(tiny):
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        tiny.generate("x", duration=8.0, seed=1)
    finally:
        stop.set()
        t.join()
    assert ticks > 20  # the counter ran while the C library generated


@pytest.fixture
def sigint_handled():
    # _thread.interrupt_main does nothing while SIGINT is ignored, and a shell starts background jobs
    # (`cmd &`, nohup) with SIGINT ignored, which Python then leaves alone: give Python its handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_keyboard_interrupt_aborts_a_long_generation(tiny, sigint_handled):
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            tiny.generate("very long", duration=600.0, seed=1)  # ~30 s on the tiny model
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 10.0
    audio, _ = tiny.generate("after", duration=0.2, seed=1)  # the model and its sessions still work
    assert audio.shape == (1, 1, 10 * 640)


def test_keyboard_interrupt_stops_a_stream(tiny, sigint_handled):
    timer = threading.Timer(0.3, _thread.interrupt_main)
    got = 0
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for chunk in tiny.stream("very long", duration=600.0, seed=1):
                got += chunk.shape[1]
    finally:
        timer.cancel()
    assert got > 0
