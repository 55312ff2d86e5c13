"""Preview page state: the cached Predictor, the device list, and the latency history.

The only Preview code touching ``st.session_state`` / ``st.cache_resource`` (the pages' rule).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from coral_runtime.devices import device_choices as _device_choices
from coral_runtime.latency import LatencyWindow, summarize
from coral_runtime.predictor import Prediction, Predictor
from pages._shared.state import StateKey

HISTORY_MAX = 500
# (model id, device asked, device that ran it, latency ms, invoke ms, time)
LATENCY: StateKey[list[tuple[str, str, str, float, float, float]]] = StateKey("studio.preview.latency", list)
# (model id, device asked) -> the live webcam's rolling latencies (filled on the video thread)
LIVE: StateKey[dict[tuple[str, str], LatencyWindow]] = StateKey("studio.preview.live", dict)
LIVE_REFRESH_SECONDS = 2.0

MODEL_WIDGET = "studio.preview.model"
DEVICE_WIDGET = "studio.preview.device"
SOURCE_WIDGET = "studio.preview.source"
SAMPLE_WIDGET = "studio.preview.sample"
THRESHOLD_WIDGET = "studio.preview.threshold"
TOPK_WIDGET = "studio.preview.topk"
WINDOW_WIDGET = "studio.preview.window"
UPLOAD_WIDGET = "studio.preview.upload"
CAMERA_WIDGET = "studio.preview.camera"
RUNS_WIDGET = "studio.preview.runs"


WEBRTC_MISSING = (
    "A live webcam stream needs the `streamlit-webrtc` package (WebRTC: browser camera -> this server), "
    "which is not installed here. Use **Take a photo** (one frame at a time) or upload photos; or "
    "`pip install streamlit-webrtc` in the studio's environment and restart it.")
WEBRTC_AFTER_TF = (
    "The live webcam is off in this server process: TensorFlow was loaded (a model was trained) before "
    "the WebRTC stack, and importing aiortc after TensorFlow crashes the process (a segfault in "
    "pylibsrtp's init). Restart the studio and open Preview before training — or use **Take a photo**.")


def _preload_webrtc() -> None:
    """Import the WebRTC stack while it is still safe (before TensorFlow); aiortc then TF is fine."""
    if "tensorflow" in sys.modules or "aiortc" in sys.modules:
        return
    if importlib.util.find_spec("streamlit_webrtc") is None:
        return
    try:
        import aiortc  # noqa: F401
        import streamlit_webrtc  # noqa: F401
    except Exception:  # noqa: BLE001 - the page says why the live mode is off
        pass


def webrtc_status() -> str | None:
    """None when the live webcam can be used, else why not (shown on the page)."""
    if importlib.util.find_spec("streamlit_webrtc") is None:
        return WEBRTC_MISSING
    if "aiortc" not in sys.modules and "tensorflow" in sys.modules:
        return WEBRTC_AFTER_TF
    return None


_preload_webrtc()


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _predictor(path: str, device: str, manifest_mtime: float) -> Predictor:  # noqa: ARG001 - cache key
    return Predictor(path, device=device)


def get_predictor(path: str | Path, device: str) -> Predictor:
    """One Predictor per (artefact, device), reloaded when the manifest changes (e.g. compiled)."""
    p = Path(path)
    try:
        mtime = (p / "manifest.json").stat().st_mtime
    except OSError:
        mtime = 0.0
    return _predictor(str(p), device, mtime)


@st.cache_data(ttl=10, show_spinner=False)
def device_choices() -> list[tuple[str, str]]:
    """Each Coral Edge TPU found, then the CPU (re-scanned every 10 s)."""
    return _device_choices()


def built_in_minimum(score_threshold: float) -> float:
    """The lowest score a detector's boxes can have (its post-process op drops the rest), rounded
    down to the Preview slider's 0.01 steps and kept below 1 so the slider still has a range."""
    return min(0.99, max(0.0, math.floor(float(score_threshold) * 100 + 1e-6) / 100))


def minimum_note(floor: float) -> str:
    """What the Preview page says about a detector's built-in minimum score."""
    if floor <= 0:
        return "This model keeps boxes of any score."
    return (f"This model drops boxes scoring below {floor:.2f} by itself: that is the *Minimum score* set on "
            "the Train page when it was trained. To see weaker boxes, train again with a lower Minimum score.")


def display_scale(width: int, height: int, max_side: int, min_side: int) -> float:
    """The factor that fits a photo into ``max_side`` and enlarges a small one to ``min_side``."""
    longest = max(width, height, 1)
    return max_side / longest if longest > max_side else max(1.0, min_side / longest)


@dataclass
class LatencyStats:
    n: int
    p50: float | None
    p95: float | None
    invoke_p50: float | None
    devices: list[str]


def record(model_id: str, device_asked: str, pred: Prediction) -> None:
    """Add one predict() call's latency to the history (every call that really ran is counted)."""
    hist = LATENCY.get()
    hist.append((model_id, device_asked, pred.device, pred.latency_ms, pred.invoke_ms, time.time()))
    del hist[:-HISTORY_MAX]


def stats(model_id: str, device_asked: str, window: int) -> LatencyStats:
    """p50/p95 over the last ``window`` predictions of this model on this device choice."""
    rows = [r for r in LATENCY.get() if r[0] == model_id and r[1] == device_asked][-max(1, window):]
    s = summarize([r[3] for r in rows], [r[4] for r in rows])
    return LatencyStats(s.n, s.p50, s.p95, s.invoke_p50, sorted({r[2] for r in rows}))


def live_window(model_id: str, device_asked: str, size: int) -> LatencyWindow:
    """The live webcam's latency window for this model and device choice (kept across reruns; the
    video thread only ever holds this object, never the session state)."""
    windows = LIVE.get()
    key = (model_id, device_asked)
    if key not in windows:
        windows[key] = LatencyWindow(size)
    windows[key].resize(size)
    return windows[key]


def clear_history() -> None:
    LATENCY.set([])
