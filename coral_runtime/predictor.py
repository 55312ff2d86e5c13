"""Predictor: one model artefact folder -> predictions on PIL images or image bytes, on the Edge TPU or the CPU.

Reads ``manifest.json`` (task, labels, input_size, resize, detection thresholds). With a Coral
device (or ``"auto"``) it uses ``model_int8_edgetpu.tflite`` when the artefact has one, falling back
to ``model_int8.tflite`` on the CPU with a visible reason (see ``interpreter.make_interpreter``).

``predict_bytes`` decodes with ``coral_runtime.decode`` — the decode the robot image's model server
uses too — so the studio and the robot give the same answer for the same bytes. ``predict_frame``
takes live video frames (the Preview page's webcam): ``coral_runtime.frames`` converts and resizes
them to the model input in one pass.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.data import artefacts
from coral_runtime import adapters, frames
from coral_runtime.decode import DEFAULT_MAX_PIXELS, Decoded, decode_image
from coral_runtime.interpreter import RuntimeInterpreter, make_interpreter


@dataclass
class Prediction:
    task: str
    classes: list[adapters.Class] = field(default_factory=list)
    detections: list[adapters.Detection] = field(default_factory=list)
    latency_ms: float = 0.0  # the whole predict() call: preprocessing, invoke, decoding
    # (predict_bytes: the image decode included)
    invoke_ms: float = 0.0  # interpreter.invoke() alone
    device: str = "cpu"
    fallback_reason: str | None = None
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the original image

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "classes": [c.to_dict() for c in self.classes],
                "detections": [d.to_dict() for d in self.detections],
                "latency_ms": round(self.latency_ms, 3), "invoke_ms": round(self.invoke_ms, 3),
                "device": self.device, "fallback_reason": self.fallback_reason,
                "image_size": list(self.image_size)}


class Predictor:
    """Loads an artefact once; ``predict()`` is thread-safe (the interpreter's lock).

    ``num_threads`` is for the CPU path: 1 by default, because on a small shared machine a second
    XNNPACK thread that sleeps between single-image calls costs more to wake than it saves
    (measured by bench/bench_preview.py); the Edge TPU path does not use it.

    ``reducing_gap`` is Pillow's resize option (``adapters.REDUCING_GAP``: the trainers' fair
    antialiased resize); ``adapters.FAST_REDUCING_GAP`` trades a little pixel fidelity for speed.

    Per call, ``predict()`` resizes once into a reused per-thread buffer that is already the input
    tensor's bytes when the input quantisation is the identity (the studio's models), or maps it
    through a 256-entry table otherwise; then one copy into the interpreter, and each output is
    read once.
    """

    def __init__(self, artefact_dir: str | Path, device: str = "auto", *, num_threads: int | None = 1,
                 reducing_gap: float | None = adapters.REDUCING_GAP):
        self.folder = Path(artefact_dir)
        self.manifest = artefacts.load_manifest(self.folder)
        m = self.manifest
        self.task = str(m.get("task", "classification"))
        if self.task not in ("classification", "detection"):
            raise ValueError(f"unknown task {self.task!r} in {self.folder / artefacts.MANIFEST}")
        self.labels = list(m.get("labels") or self._read_labels())
        self.resize = str(m.get("resize") or ("letterbox" if m.get("detection", {}).get("letterbox_anchor")
                                              else "stretch"))
        det = m.get("detection") or {}
        self.score_threshold = float(det.get("score_threshold", 0.3 if self.task == "detection" else 0.0))
        self.max_detections = int(det.get("max_detections", 0) or 0) or None
        files = m.get("files") or {}
        int8 = self.folder / files.get("int8", artefacts.INT8_MODEL)
        tpu = self.folder / files.get("edgetpu", artefacts.EDGETPU_MODEL)
        model = tpu if device != "cpu" and tpu.exists() else int8
        self.interpreter: RuntimeInterpreter = make_interpreter(model, device, num_threads=num_threads)
        if self.interpreter.fallback_reason is None and device not in ("cpu", "auto") and not tpu.exists():
            self.interpreter.fallback_reason = ("this model has not been compiled for the Edge TPU yet "
                                                f"(no {tpu.name}): running {int8.name} on the CPU")
        h, w = self.interpreter.input_size
        size = m.get("input_size") or [h, w]
        if [int(size[0]), int(size[1])] != [h, w]:
            raise ValueError(f"manifest input_size {size} does not match the model's input {[h, w]}")
        self.input_size = (h, w)
        self.reducing_gap = reducing_gap
        it = self.interpreter
        self._identity_input = adapters.is_identity_quantization(it.input_dtype, it.input_quantization)
        self._input_lut = adapters.input_lut(it.input_dtype, it.input_quantization)
        names = it.output_names()
        self._outputs = [(int(d["index"]), names[int(d["index"])]) for d in it.outputs]
        self._local = threading.local()  # the per-thread resize buffer
        self._out_name = None
        if self.task == "classification":
            self._out_detail = self.interpreter.outputs[0]
            self._out_name = names[int(self._out_detail["index"])]
        else:
            self.roles = self.interpreter.detection_roles()

    def _read_labels(self) -> list[str]:
        p = self.folder / artefacts.LABELS
        return [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()] if p.exists() else []

    @property
    def device(self) -> str:
        return self.interpreter.device

    @property
    def fallback_reason(self) -> str | None:
        return self.interpreter.fallback_reason

    def preprocess(self, image: Image.Image) -> tuple[np.ndarray, adapters.Transform]:
        """The model input tensor ``[h, w, 3]`` for ``image`` (a new array) and the transform."""
        return self._preprocess(image, np.empty((*self.input_size, 3), np.uint8))

    def _preprocess(self, image: Image.Image, buf: np.ndarray) -> tuple[np.ndarray, adapters.Transform]:
        tr = adapters.resize_into(image, buf, self.resize, reducing_gap=self.reducing_gap)
        return self._tensor(buf), tr

    def _tensor(self, buf: np.ndarray) -> np.ndarray:
        """The input tensor for resized pixels ``buf``."""
        if self._identity_input:
            return buf  # the pixels are the tensor: no arithmetic, no copy
        if self._input_lut is not None:
            return self._input_lut[buf]
        it = self.interpreter
        return adapters.quantize_input(buf, it.input_dtype, it.input_quantization)

    def _buffer(self) -> np.ndarray:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = np.empty((*self.input_size, 3), np.uint8)
        return buf

    def predict(self, image: Image.Image, threshold: float | None = None, top_k: int | None = None) -> Prediction:
        """Classify or detect on one image (original-pixel boxes); times the whole call."""
        t0 = time.perf_counter()
        tensor, tr = self._preprocess(image, self._buffer())
        return self._infer(tensor, tr, threshold, top_k, t0)

    def predict_frame(self, frame: Any, threshold: float | None = None, top_k: int | None = None) -> Prediction:
        """``predict`` on a live video frame (a PyAV ``VideoFrame``): converted and resized to the
        model input in one swscale pass (``coral_runtime.frames``); boxes in frame pixels."""
        t0 = time.perf_counter()
        buf = self._buffer()
        tr = frames.scale_frame_into(frame, buf, self.resize)
        return self._infer(self._tensor(buf), tr, threshold, top_k, t0)

    def _infer(self, tensor: np.ndarray, tr: adapters.Transform, threshold: float | None, top_k: int | None,
               t0: float) -> Prediction:
        """Invoke on ``tensor`` and decode the outputs; ``latency_ms`` counts from ``t0``."""
        it = self.interpreter
        with it.lock:
            it.set_input(tensor)  # the one copy into the interpreter
            invoke_ms = it.invoke()
            get = it.interpreter.get_tensor  # returns a copy: read each output once
            outputs = {name: get(idx) for idx, name in self._outputs}
        pred = Prediction(self.task, device=it.device, fallback_reason=it.fallback_reason,
                          invoke_ms=invoke_ms, image_size=(tr.width, tr.height))
        if self.task == "classification":
            thr = 0.0 if threshold is None else float(threshold)
            pred.classes = adapters.classify(outputs[self._out_name], self._out_detail, self.labels,
                                             top_k=top_k or min(5, max(1, len(self.labels))), threshold=thr)
        else:
            thr = self.score_threshold if threshold is None else float(threshold)
            pred.detections = adapters.detect(outputs, self.roles, tr, self.labels, threshold=thr,
                                              max_detections=top_k or self.max_detections)
        pred.latency_ms = (time.perf_counter() - t0) * 1000.0
        return pred

    def decode_target(self) -> tuple[int, int]:
        """The (width, height) every image is resized to: the model input."""
        h, w = self.input_size
        return int(w), int(h)

    def decode(self, data: bytes, *, draft: bool = True,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Decoded:
        """``data`` decoded for this model (``coral_runtime.decode.decode_image``: upright RGB, a
        large JPEG at reduced scale unless ``draft`` is False); raises its ``DecodeError``."""
        return decode_image(data, self.decode_target(), draft=draft, max_pixels=max_pixels, resize=self.resize)

    def predict_decoded(self, decoded: Decoded, threshold: float | None = None,
                        top_k: int | None = None) -> Prediction:
        """``predict`` on a decoded image; boxes and ``image_size`` in ORIGINAL image pixels."""
        pred = self.predict(decoded.image, threshold=threshold, top_k=top_k)
        width, height = decoded.original_size
        if decoded.scale != 1.0:
            s = decoded.scale
            pred.detections = [replace(d, box=d.box.scale(s).clip(width, height)) for d in pred.detections]
        pred.image_size = (width, height)
        return pred

    def predict_bytes(self, data: bytes, threshold: float | None = None, top_k: int | None = None, *,
                      draft: bool = True, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Prediction:
        """Decode image bytes (``decode``) and predict: boxes and ``image_size`` in the pixels of
        the original upright image; ``latency_ms`` includes the decode. The robot image's
        ``/v1/predict`` is this call. Raises ``coral_runtime.decode.DecodeError``
        (``ImageTooLarge``) for bad images."""
        t0 = time.perf_counter()
        pred = self.predict_decoded(self.decode(data, draft=draft, max_pixels=max_pixels),
                                    threshold=threshold, top_k=top_k)
        pred.latency_ms = (time.perf_counter() - t0) * 1000.0
        return pred
