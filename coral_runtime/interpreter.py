"""A LiteRT interpreter on the Edge TPU (``libedgetpu.so.1`` delegate) or on the CPU, with one lock.

``make_interpreter(model, device)``:

- ``device="cpu"`` runs the model on the CPU. A ``*_edgetpu.tflite`` cannot run there (its
  ``edgetpu-custom-op`` exists only in libedgetpu), so the sibling CPU model (``model_int8.tflite``
  for ``model_int8_edgetpu.tflite``) is used instead, and ``fallback_reason`` says so.
- ``"auto"`` / ``":0"`` / ``"usb"`` / ``"usb:0"`` / ``"pci:0"`` (pycoral's device strings) load the
  Edge TPU delegate for a ``*_edgetpu.tflite``. When the runtime or the device is missing
  (``load_delegate`` raises ``OSError``/``ValueError``) the CPU model is used and ``fallback_reason``
  tells why. A model that is not compiled runs on the CPU (with a reason when a TPU was asked for).

A LiteRT interpreter is not thread-safe: ``run()`` holds ``.lock`` around set-input / invoke /
read-outputs.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from coral_runtime import probe

EDGETPU_LIB = probe.DEFAULT_LIB  # $STUDIO_EDGETPU_LIB overrides it (probe.edgetpu_lib)
DETECTION_SIGNATURE = {"count": "output_0", "scores": "output_1", "classes": "output_2", "boxes": "output_3"}
POSTPROCESS_ORDER = ("boxes", "classes", "scores", "count")  # the kernel's outputs = pycoral's order


class RuntimeUnavailable(RuntimeError):
    """Neither the Edge TPU nor a CPU model can run this artefact."""


def _litert():
    try:
        from ai_edge_litert import interpreter as lite  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - ai-edge-litert is a dependency
        raise RuntimeUnavailable("ai-edge-litert is not installed (pip install ai-edge-litert)") from exc
    return lite


def is_edgetpu_model(path: str | Path) -> bool:
    return Path(path).name.endswith("_edgetpu.tflite")


def cpu_sibling(path: str | Path) -> Path:
    """``model_int8_edgetpu.tflite`` -> ``model_int8.tflite`` (same folder)."""
    p = Path(path)
    return p.with_name(p.name.removesuffix("_edgetpu.tflite") + ".tflite")


def normalize_device(device: str | None) -> str:
    """``None``/``""``/``"auto"`` -> ``"auto"``; otherwise validated pycoral device strings or ``cpu``."""
    d = (device or "auto").strip().lower()
    if d in ("auto", "cpu", "usb", "pci"):
        return d
    kind, _, num = d.partition(":")
    if kind in ("", "usb", "pci") and num.isdigit():
        return d
    raise ValueError(f"unknown device {device!r}: use auto, cpu, :N, usb, usb:N, pci or pci:N")


@contextlib.contextmanager
def _quiet_delegate_del():
    """LiteRT's ``Delegate.__del__`` raises AttributeError after a failed load: keep it off stderr."""
    old = sys.unraisablehook

    def hook(u):
        if isinstance(u.exc_value, AttributeError) and "Delegate" in repr(u.object):
            return
        old(u)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = old


def load_edgetpu_delegate(device: str = "auto"):
    """The Edge TPU delegate for ``device`` (raises OSError/ValueError when unavailable)."""
    lite = _litert()
    options = {} if device in ("auto", "") else {"device": device}
    return lite.load_delegate(probe.edgetpu_lib(), options)


class RuntimeInterpreter:
    """One LiteRT interpreter plus what the predictor needs to feed and read it."""

    def __init__(self, interpreter: Any, model_path: Path, device: str, requested: str,
                 fallback_reason: str | None = None):
        self.interpreter = interpreter
        self.model_path = Path(model_path)
        self.device = device  # what really runs it: "cpu" or the Edge TPU device string
        self.requested_device = requested
        self.fallback_reason = fallback_reason
        self.lock = threading.Lock()
        self.last_invoke_ms: float | None = None
        interpreter.allocate_tensors()
        self.input = interpreter.get_input_details()[0]
        self.outputs = interpreter.get_output_details()
        self._sig_outputs = self._signature_outputs()
        self._detection = None

    # -- description ----------------------------------------------------------
    @property
    def on_edgetpu(self) -> bool:
        return self.device != "cpu"

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        shape = [int(x) for x in self.input["shape"]]
        return shape[1], shape[2]

    @property
    def input_dtype(self):
        return self.input["dtype"]

    @property
    def input_quantization(self) -> tuple[float, int]:
        return tuple(self.input.get("quantization", (0.0, 0)))  # type: ignore[return-value]

    def _signature_outputs(self) -> dict[str, int]:
        try:
            sigs = self.interpreter.get_signature_list()
            if not sigs:
                return {}
            key = "serving_default" if "serving_default" in sigs else next(iter(sigs))
            runner = self.interpreter.get_signature_runner(key)
            return {name: int(d["index"]) for name, d in runner.get_output_details().items()}
        except Exception:  # noqa: BLE001 - models without signatures
            return {}

    def output_names(self) -> dict[int, str]:
        """tensor index -> signature output name (or the tensor name)."""
        names = {int(d["index"]): d["name"] for d in self.outputs}
        names.update({i: n for n, i in self._sig_outputs.items()})
        return names

    # -- running ----------------------------------------------------------------
    def set_input(self, array: np.ndarray) -> None:
        arr = np.asarray(array)
        if arr.ndim == 3:
            arr = arr[None]
        self.interpreter.set_tensor(self.input["index"], arr.astype(self.input["dtype"], copy=False))

    def invoke(self) -> float:
        """Bare ``invoke()`` (the caller holds the lock); returns milliseconds."""
        t0 = time.perf_counter()
        self.interpreter.invoke()
        ms = (time.perf_counter() - t0) * 1000.0
        self.last_invoke_ms = ms
        return ms

    def run(self, input_array: np.ndarray) -> dict[str, np.ndarray]:
        """Set the input, invoke, copy every output (keyed by signature name), under the lock."""
        names = self.output_names()
        with self.lock:
            self.set_input(input_array)
            self.invoke()
            return {names[int(d["index"])]: np.array(self.interpreter.get_tensor(d["index"]))
                    for d in self.outputs}

    def output_detail(self, name_or_index: str | int) -> dict[str, Any]:
        if isinstance(name_or_index, str):
            idx = self._sig_outputs.get(name_or_index)
            if idx is None:
                idx = next(int(d["index"]) for d in self.outputs if d["name"] == name_or_index)
        else:
            idx = int(name_or_index)
        return next(d for d in self.outputs if int(d["index"]) == idx)

    # -- detection outputs -----------------------------------------------------
    def detection_roles(self) -> dict[str, str]:
        """role (boxes/classes/scores/count) -> output name in ``run()``'s dict.

        1. the TFLite_Detection_PostProcess op's own output order (boxes, classes, scores, count);
        2. the signature names of the studio's export (output_0 count, output_1 scores,
           output_2 classes, output_3 boxes);
        3. pycoral's order of the output tensors (boxes, classes, scores, count).
        """
        if self._detection is not None:
            return self._detection
        names = self.output_names()
        roles: dict[str, str] = {}
        try:
            for op in self.interpreter._get_ops_details():  # noqa: SLF001 - the only way to see op wiring
                if op.get("op_name") == "TFLite_Detection_PostProcess":
                    outs = [int(i) for i in op["outputs"]]
                    if len(outs) == 4 and all(i in names for i in outs):
                        roles = {r: names[i] for r, i in zip(POSTPROCESS_ORDER, outs)}
                    break
        except Exception:  # noqa: BLE001
            roles = {}
        if not roles and set(DETECTION_SIGNATURE.values()) <= set(self._sig_outputs):
            roles = dict(DETECTION_SIGNATURE)
        if not roles and len(self.outputs) == 4:
            roles = {r: names[int(d["index"])] for r, d in zip(POSTPROCESS_ORDER, self.outputs)}
        if not roles:
            raise ValueError(f"{self.model_path.name} does not have the 4 detection outputs")
        self._detection = roles
        return roles


def _cpu(lite, path: Path, num_threads: int | None):
    return lite.Interpreter(model_path=str(path), num_threads=num_threads)


def make_interpreter(model_path: str | Path, device: str = "auto", *, num_threads: int | None = 2,
                     delegate_loader=None, retry_wait: float = probe.RETRY_WAIT_S) -> RuntimeInterpreter:
    """An interpreter for ``model_path`` on ``device`` (see the module docstring for the fallbacks).

    The real Edge TPU delegate is first opened in a child process (``probe.guarded_delegate``): a
    runtime that crashes there costs only the child, and the CPU is used with the reason. A load
    that fails is retried once after ``retry_wait`` s (a USB Accelerator re-enumerating)."""
    lite = _litert()
    path = Path(model_path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    requested = normalize_device(device)
    loader = delegate_loader or load_edgetpu_delegate

    if not is_edgetpu_model(path):
        reason = None
        if requested not in ("cpu", "auto"):
            reason = (f"{path.name} is not compiled for the Edge TPU (no *_edgetpu.tflite), so it runs on "
                      "the CPU")
        return RuntimeInterpreter(_cpu(lite, path, num_threads), path, "cpu", requested, reason)

    if requested != "cpu":
        why: str | None = None
        with _quiet_delegate_del():
            try:
                if delegate_loader is None:
                    delegate, why = probe.guarded_delegate(requested, path, loader, retry_wait=retry_wait)
                else:
                    delegate = probe.load_with_retry(loader, requested, retry_wait)
                if delegate is not None:
                    it = lite.Interpreter(model_path=str(path), experimental_delegates=[delegate],
                                          num_threads=num_threads)
                    dev = requested if requested != "auto" else ":0"
                    return RuntimeInterpreter(it, path, dev, requested, None)
            except (OSError, ValueError, RuntimeError) as exc:
                why = f"Edge TPU unavailable ({type(exc).__name__}: {exc})"
    else:
        why = "CPU requested"
    sibling = cpu_sibling(path)
    if not sibling.exists():
        raise RuntimeUnavailable(f"{why}, and {path.name} can only run on an Edge TPU (no {sibling.name} "
                                 "next to it to run on the CPU)")
    return RuntimeInterpreter(_cpu(lite, sibling, num_threads), sibling, "cpu", requested,
                              f"{why}: running {sibling.name} on the CPU instead of {path.name}")
