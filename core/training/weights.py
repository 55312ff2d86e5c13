"""Pretrained ImageNet weights for the MobileNetV2 backbone: local cache, download, or a given file.

Keras keeps downloaded weights in ``$KERAS_HOME/models`` (``~/.keras/models`` by default).
When the download fails (no internet), :class:`WeightsUnavailableError` says in plain
words what to do: put the weights file there by hand, or train from scratch.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)
DOWNLOAD_TIMEOUT_S = float(os.environ.get("STUDIO_WEIGHTS_TIMEOUT", "30"))

_socket_lock = threading.Lock()


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights that cannot be obtained; the message says what to do."""


def weights_size(image_size: int) -> int:
    """The ImageNet checkpoint size Keras uses for ``image_size`` (224 when there is none for it)."""
    return image_size if image_size in IMAGENET_SIZES else 224


def weights_filename(alpha: float, image_size: int) -> str:
    """Exact Keras file name of the headless MobileNetV2 ImageNet weights for ``alpha``/``image_size``."""
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{weights_size(image_size)}_no_top.h5"


def keras_models_dir() -> Path:
    """Where Keras looks for (and caches) downloaded model weights."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


DOWNLOAD_FAILED = "The pretrained ImageNet weights could not be downloaded"


def is_download_failure(message: str | None) -> bool:
    """True when a job's error is :func:`resolve_weights` failing to download the weights."""
    return bool(message) and DOWNLOAD_FAILED in str(message)


def _offline_message(alpha: float, image_size: int, reason: str) -> str:
    name = weights_filename(alpha, image_size)
    return (
        f"{DOWNLOAD_FAILED} "
        f"({reason}). Without internet access you can either put the Keras weights file "
        f"'{name}' (from {BASE_URL}{name}) into {keras_models_dir()} and start training again, "
        "give the path of a local weights file instead of 'imagenet', "
        "or choose 'from scratch' (weights 'none')."
    )


def resolve_weights(weights: str | None, alpha: float, image_size: int,
                    timeout: float | None = None, log=None) -> str | None:
    """Turn the ``weights`` hyperparameter into what ``keras.applications.MobileNetV2`` accepts.

    ``"none"``/``None``/``""`` → ``None`` (random init); ``"imagenet"`` → a local path to the
    headless weights file (cached or downloaded with a socket timeout); anything else is a
    local file path that must exist. Raises :class:`WeightsUnavailableError` with advice.
    """
    w = (weights or "none").strip()
    if w.lower() in ("none", "scratch", "from scratch", "random"):
        return None
    if w.lower() != "imagenet":
        p = Path(w).expanduser()
        if not p.is_file():
            raise WeightsUnavailableError(
                f"The weights file {str(p)!r} does not exist. Give the path of a Keras MobileNetV2 "
                f"weights file (e.g. '{weights_filename(alpha, image_size)}'), 'imagenet' or 'none'.")
        return str(p)
    if float(alpha) not in ALPHAS:
        raise WeightsUnavailableError(
            f"ImageNet weights exist only for alpha in {', '.join(map(str, ALPHAS))} (got {alpha}). "
            "Pick one of those or train from scratch.")
    name = weights_filename(alpha, image_size)
    cached = keras_models_dir() / name
    if cached.is_file() and cached.stat().st_size > 0:
        return str(cached)
    if log:
        log(f"Downloading ImageNet weights {name} …")
    from keras.utils import get_file

    timeout = DOWNLOAD_TIMEOUT_S if timeout is None else timeout
    with _socket_lock:  # keras' download has no timeout of its own
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout)
        try:
            return get_file(name, BASE_URL + name, cache_subdir="models")
        except Exception as exc:  # noqa: BLE001 - every failure gets the same advice
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reason = reason.split(" -- ")[-1]  # keras: "URL fetch failure on <url>: None -- <why>"
            raise WeightsUnavailableError(_offline_message(alpha, image_size, reason[:200])) from None
        finally:
            socket.setdefaulttimeout(old)
