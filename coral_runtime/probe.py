"""Crash isolation for the Edge TPU runtime: open the delegate in a child process first.

A libedgetpu built for another TensorFlow than the runtime loaded (Coral's stock 16.0 is built for
TF 2.5) can segfault inside ``load_delegate`` or at the first ``invoke``. ``probe()`` runs
``_probe_child.py`` with the same interpreter: it dlopens the library, reads ``edgetpu_version()``
and ``edgetpu_list_devices()``, loads the delegate for the device and (given a model) invokes it
once. Only when that child succeeded does ``guarded_delegate()`` load the delegate in this process.
A child killed by a signal reports "Edge TPU runtime crashed (signal N) — CPU used".

The first load after plugging in a USB Accelerator can fail while it re-enumerates (1a6e:089a ->
18d1:9302): a failed (not crashed) probe or load is retried once after ``RETRY_WAIT_S``.

``STUDIO_EDGETPU_LIB`` overrides the library name (tests use a library built with gcc).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

CHILD = Path(__file__).with_name("_probe_child.py")
ENV_LIB = "STUDIO_EDGETPU_LIB"
DEFAULT_LIB = {"linux": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib", "win32": "edgetpu.dll"}.get(
    sys.platform, "libedgetpu.so.1")
PROBE_TIMEOUT_S = 30.0
RETRY_WAIT_S = 2.0

_LOCK = threading.Lock()
_LAST: dict[str, "ProbeResult"] = {}  # the latest probe per library (for /healthz and the pages)


def edgetpu_lib() -> str:
    """The Edge TPU runtime library to load (``$STUDIO_EDGETPU_LIB`` or ``libedgetpu.so.1``)."""
    return os.environ.get(ENV_LIB, "").strip() or DEFAULT_LIB


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


@dataclass
class ProbeResult:
    """What the child process saw."""

    ok: bool
    lib: str
    device: str
    stage: str = ""  # the last stage reached: dlopen, version, devices, delegate, invoke, done
    error: str | None = None  # a normal failure (OSError/ValueError …)
    signal: int | None = None  # the child was killed by this signal
    timed_out: bool = False
    edgetpu_version: str | None = None
    devices: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 1
    seconds: float = 0.0

    @property
    def crashed(self) -> bool:
        return self.signal is not None or self.timed_out

    @property
    def message(self) -> str:
        """One sentence for people (Preview, Deploy, /healthz)."""
        if self.ok:
            return f"Edge TPU runtime works ({self.edgetpu_version or self.lib})"
        if self.signal is not None:
            return (f"Edge TPU runtime crashed (signal {self.signal}, {signal_name(self.signal)}) — CPU used "
                    f"[{self.lib}, during {self.stage or 'dlopen'}]")
        if self.timed_out:
            return f"Edge TPU runtime hung for over {PROBE_TIMEOUT_S:.0f} s — CPU used [{self.lib}]"
        return f"Edge TPU unavailable ({self.error}) — CPU used"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["crashed"] = self.crashed
        d["message"] = self.message
        return d


def _probe_once(lib: str, device: str, model: str | None, timeout: float) -> ProbeResult:
    args = json.dumps({"lib": lib, "device": device, "model": model})
    t0 = time.monotonic()
    res = ProbeResult(False, lib, device)
    try:
        proc = subprocess.run([sys.executable, str(CHILD), args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONFAULTHANDLER": ""})
        out, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc, res.timed_out = None, True
    res.seconds = round(time.monotonic() - t0, 3)
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        res.stage = msg.get("stage", res.stage)
        if "version" in msg:
            res.edgetpu_version = msg["version"]
        if "devices" in msg:
            res.devices = msg["devices"]
        if msg.get("ok") is False:
            res.error = msg.get("error")
        if msg.get("stage") == "done" and msg.get("ok"):
            res.ok = True
    if rc is not None and rc < 0:
        res.signal, res.ok = -rc, False
    elif rc not in (0, None) and not res.error:
        res.error, res.ok = f"the probe exited with status {rc}", False
    elif rc == 0 and not res.ok and not res.error:
        res.error = "the probe ended without an answer"
    return res


def probe(device: str = "auto", model: str | Path | None = None, *, lib: str | None = None,
          timeout: float = PROBE_TIMEOUT_S, retry_wait: float = RETRY_WAIT_S) -> ProbeResult:
    """Open the Edge TPU delegate (and run ``model`` once) in a child process; one retry after
    ``retry_wait`` seconds when the first attempt failed without crashing (USB re-enumeration)."""
    lib = lib or edgetpu_lib()
    model_s = str(model) if model else None
    res = _probe_once(lib, device, model_s, timeout)
    if not res.ok and not res.crashed and res.stage != "dlopen":
        time.sleep(retry_wait)
        res = _probe_once(lib, device, model_s, timeout)
        res.attempts = 2
    with _LOCK:
        _LAST[lib] = res
    return res


def last_probe(lib: str | None = None) -> ProbeResult | None:
    """The latest probe of ``lib`` in this process (None before the first)."""
    with _LOCK:
        return _LAST.get(lib or edgetpu_lib())


def load_with_retry(loader: Callable[[str], Any], device: str, retry_wait: float = RETRY_WAIT_S) -> Any:
    """``loader(device)``; when it raises OSError/ValueError/RuntimeError, wait and try once more."""
    try:
        return loader(device)
    except (OSError, ValueError, RuntimeError):
        time.sleep(retry_wait)
        return loader(device)


def guarded_delegate(device: str, model: str | Path | None, loader: Callable[[str], Any], *,
                     retry_wait: float = RETRY_WAIT_S) -> tuple[Any | None, str | None]:
    """(delegate, None) once a child process loaded it without dying, else (None, why)."""
    from coral_runtime import versions  # noqa: PLC0415 - versions imports this module

    mismatch = versions.stock_runtime_problem()
    if mismatch:
        return None, mismatch
    res = probe(device, model, retry_wait=retry_wait)
    if not res.ok:
        return None, res.message
    try:
        return load_with_retry(loader, device, retry_wait), None
    except (OSError, ValueError, RuntimeError) as exc:
        return None, f"Edge TPU unavailable ({type(exc).__name__}: {exc}) — CPU used"
