"""LatencyWindow: the live preview's rolling p50/p95, shared by the video thread and the page."""

from __future__ import annotations

import threading

import numpy as np

from coral_runtime.latency import LatencyWindow


def test_percentiles_over_the_newest_entries():
    w = LatencyWindow(size=5)
    assert w.stats().n == 0 and w.stats().caption() == ""
    for ms in (100.0, 1.0, 2.0, 3.0, 4.0, 50.0):  # 100 falls out of the window
        w.add(ms, ms / 2, "cpu")
    s = w.stats()
    assert s.n == 5 and s.device == "cpu"
    assert s.p50 == np.percentile([1, 2, 3, 4, 50], 50) == 3.0
    assert s.p95 == np.percentile([1, 2, 3, 4, 50], 95)
    assert s.invoke_p50 == 1.5
    assert s.caption() == f"p50 3.0 ms · p95 {s.p95:.1f} ms over 5 frames"


def test_resize_keeps_the_newest_and_clear_empties():
    w = LatencyWindow(size=10)
    for ms in range(10):
        w.add(float(ms), 0.0, "usb:0")
    w.resize(3)
    assert w.size == 3 and w.stats().n == 3 and w.stats().p50 == 8.0
    w.resize(0)  # at least one
    assert w.size == 1 and w.stats().p50 == 9.0
    w.clear()
    assert w.stats().n == 0 and w.stats().device is None


def test_concurrent_writers_and_readers():
    w = LatencyWindow(size=50)
    errors: list[str] = []

    def write(k: int) -> None:
        for i in range(2000):
            w.add(float(k), float(k), f"d{k}")

    def read() -> None:
        for _ in range(500):
            s = w.stats()
            if s.n and not (0.0 <= s.p50 <= 3.0 and s.n <= 50):
                errors.append(repr(s))
            w.resize(20 + (_ % 3) * 15)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and 1 <= w.stats().n <= 50
