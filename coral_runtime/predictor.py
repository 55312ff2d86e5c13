"""Predictor: one model artefact folder -> predictions on PIL images, on the Edge TPU or the CPU.

Reads ``manifest.json`` (task, labels, input_size, resize, detection thresholds). With a Coral
device (or ``"auto"``) it uses ``model_int8_edgetpu.tflite`` when the artefact has one, falling back
to ``model_int8.tflite`` on the CPU with a visible reason (see ``interpreter.make_interpreter``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from core import artefacts
from coral_runtime import adapters
from coral_runtime.interpreter import RuntimeInterpreter, make_interpreter


@dataclass
class Prediction:
    task: str
    classes: list[adapters.Class] = field(default_factory=list)
    detections: list[adapters.Detection] = field(default_factory=list)
    latency_ms: float = 0.0  # the whole predict() call: preprocessing, invoke, decoding
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
    """

    def __init__(self, artefact_dir: str | Path, device: str = "auto", *, num_threads: int | None = 1):
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
        self._out_name = None
        if self.task == "classification":
            names = self.interpreter.output_names()
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

    def preprocess(self, image: Image.Image):
        pixels, tr = adapters.resize_image(image, self.input_size, self.resize)
        it = self.interpreter
        return adapters.quantize_input(pixels, it.input_dtype, it.input_quantization), tr

    def predict(self, image: Image.Image, threshold: float | None = None, top_k: int | None = None) -> Prediction:
        """Classify or detect on one image (original-pixel boxes); times the whole call."""
        t0 = time.perf_counter()
        tensor, tr = self.preprocess(image)
        it = self.interpreter
        names = it.output_names()
        with it.lock:
            it.set_input(tensor)
            invoke_ms = it.invoke()
            outputs = {names[int(d["index"])]: it.interpreter.get_tensor(d["index"]).copy()
                       for d in it.outputs}
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
