"""Live video frames -> model input in one pass: colour conversion and resize by the video scaler.

A browser camera reaches the preview as decoded video frames (PyAV ``VideoFrame``, usually
``yuv420p`` from the VP8/H.264 decoder). The still-photo path would convert the whole frame to RGB
(``frame.to_image()``, ~1.6 ms at 640x480 here) and then resize it with Pillow (~1 ms). Here
libswscale does both at once, straight from the camera's pixels to the model-input size
(~0.35 ms in a tight loop, ~0.6 ms between two invokes of a 224 px MobileNetV2 once its weights have
pushed the frame out of the cache — bench/bench_preview.py): the way Coral's camera examples let the
video pipeline scale frames to the model before inference.

The resize is swscale's ``BILINEAR``, which widens its filter when it shrinks (antialiased, like
the trainers' ``tf.image.resize(antialias=True)`` and Pillow's bilinear), with accurate rounding and
full chroma interpolation: from a ``yuv420p`` camera frame it differs from the fair Pillow resize of
the same picture in RGB by ~0.4 levels on average (99th percentile 1; without the chroma flags 1.8
and 6). Geometry is :func:`coral_runtime.adapters.fit`'s, so boxes map back to frame pixels exactly
as for photos.

swscale slices each conversion over :data:`SCALER_THREADS` threads (two here: 0.29 instead of
0.53 ms between invokes; the pixels are the same — PyAV's default, "auto", scaled on one thread).

PyAV makes a new swscale context for every frame object (``frame.to_ndarray(width=…)``: ~0.8 ms
instead of ~0.35 ms at 640x480 -> 224); the scalers here are kept per thread and per purpose (model
input, whole frame), so consecutive frames of a stream reuse their context.

PyAV is imported only when a frame arrives (the robot image does not ship it); without it, any
object with ``width``, ``height`` and PyAV's ``to_ndarray(width=, height=, format=, interpolation=)``
works.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from coral_runtime import adapters

# swscale flags: SWS_BILINEAR (antialiased when downscaling) | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT
# | SWS_FULL_CHR_H_INP (libswscale/swscale.h)
INTERPOLATION = 0x2 | 0x40000 | 0x2000 | 0x4000


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


# Slice threads per conversion: two halve a VGA frame's ~0.55 ms; more do not pay for their
# hand-over on frames this small (and the robot's other work needs the cores).
SCALER_THREADS = max(1, min(2, _usable_cpus()))
_local = threading.local()


def _scaler(purpose: str, threads: int) -> Any:
    """This thread's PyAV reformatter for ``purpose`` on ``threads`` slice threads (None when PyAV's
    class is not there). PyAV keeps a reformatter's swscale context while the sizes, formats and
    flags stay the same and ignores a new thread count, so the count is part of the key."""
    cache = getattr(_local, "scalers", None)
    if cache is None:
        cache = _local.scalers = {}
    key = (purpose, threads)
    if key not in cache:
        try:
            from av.video.reformatter import VideoReformatter
        except ImportError:  # duck-typed frames without PyAV: their own to_ndarray
            cache[key] = None
        else:
            cache[key] = VideoReformatter()
    return cache[key]


def _to_rgb(frame: Any, purpose: str, threads: int | None = None, **size: int) -> np.ndarray:
    threads = int(threads or SCALER_THREADS)
    scaler = _scaler(purpose, threads)
    if scaler is None:
        return frame.to_ndarray(format="rgb24", interpolation=INTERPOLATION, **size)
    return scaler.reformat(frame, format="rgb24", interpolation=INTERPOLATION, threads=threads,
                           **size).to_ndarray()


def frame_size(frame: Any) -> tuple[int, int]:
    """(width, height) of a video frame."""
    return int(frame.width), int(frame.height)


def scale_frame_into(frame: Any, out: np.ndarray, mode: str = "stretch", *,
                     threads: int | None = None) -> adapters.Transform:
    """Convert and resize ``frame`` into ``out`` (uint8 ``[h, w, 3]``, RGB) the way
    :func:`coral_runtime.adapters.resize_into` places a photo (``"stretch"``, or ``"letterbox"``
    top-left with zero padding), on ``threads`` slice threads (default :data:`SCALER_THREADS`).
    Returns the transform back to frame pixels."""
    if out.dtype != np.uint8 or out.ndim != 3 or out.shape[2] != 3:
        raise ValueError(f"out must be a uint8 [h, w, 3] array, not {out.dtype} {out.shape}")
    width, height = frame_size(frame)
    if width < 1 or height < 1:
        raise ValueError(f"empty video frame ({width}x{height})")
    nw, nh, tr = adapters.fit(width, height, out.shape[:2], mode)
    adapters.place_into(out, _to_rgb(frame, "model", threads, width=nw, height=nh))
    return tr


def frame_rgb(frame: Any) -> np.ndarray:
    """The whole frame as RGB ``[h, w, 3]`` uint8 (to draw on): swscale's conversion, several times
    faster than ``frame.to_image()``."""
    return _to_rgb(frame, "full")
