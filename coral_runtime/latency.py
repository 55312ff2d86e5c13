"""Rolling latency figures of a stream of predictions (the live preview's p50/p95 over the last N frames).

Frames are predicted on a video worker thread while the page reads the figures on its own thread:
``LatencyWindow`` is the one object both share, guarded by a lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class WindowStats:
    """p50/p95 of the whole call and p50 of ``invoke()`` over the last ``n`` predictions."""

    n: int
    p50: float | None
    p95: float | None
    invoke_p50: float | None
    device: str | None  # the device of the newest prediction

    def caption(self) -> str:
        """``"p50 2.1 ms · p95 2.9 ms over 50 frames"`` (empty before the first frame)."""
        if not self.n or self.p50 is None or self.p95 is None:
            return ""
        return f"p50 {self.p50:.1f} ms · p95 {self.p95:.1f} ms over {self.n} frame{'s' if self.n != 1 else ''}"


def summarize(latency_ms: Sequence[float], invoke_ms: Sequence[float], device: str | None = None) -> WindowStats:
    """p50/p95 of whole calls and p50 of ``invoke()`` (all None for no calls)."""
    if not len(latency_ms):
        return WindowStats(0, None, None, None, device)
    lat = np.asarray(latency_ms, dtype=np.float64)
    return WindowStats(len(lat), float(np.percentile(lat, 50)), float(np.percentile(lat, 95)),
                       float(np.percentile(np.asarray(invoke_ms, dtype=np.float64), 50)), device)


class LatencyWindow:
    """The last ``size`` (latency, invoke) pairs in ms; thread-safe."""

    def __init__(self, size: int = 50):
        self._lock = threading.Lock()
        self._items: deque[tuple[float, float]] = deque(maxlen=max(1, int(size)))
        self._device: str | None = None

    @property
    def size(self) -> int:
        return int(self._items.maxlen or 1)

    def resize(self, size: int) -> None:
        """Keep the newest ``size`` entries from now on."""
        size = max(1, int(size))
        with self._lock:
            if size != self._items.maxlen:
                self._items = deque(self._items, maxlen=size)

    def add(self, latency_ms: float, invoke_ms: float, device: str) -> None:
        with self._lock:
            self._items.append((float(latency_ms), float(invoke_ms)))
            self._device = device

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._device = None

    def stats(self) -> WindowStats:
        with self._lock:
            items, device = list(self._items), self._device
        return summarize([lat for lat, _ in items], [inv for _, inv in items], device if items else None)
