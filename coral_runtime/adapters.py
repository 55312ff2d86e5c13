"""Input preprocessing and output decoding, as pycoral's adapters do, for the studio's models.

Input (INTERFACES.md): uint8 RGB resized to the model input — ``"stretch"`` (plain resize) or
``"letterbox"`` (aspect kept, image at the **top-left**, the rest zero, as
``pycoral.adapters.common.set_resized_input`` and the detection trainer do). The model scales to
[-1, 1] itself. If a model's input is quantised with another scale/zero-point than the identity
(or is int8/float), the 0..255 pixels are requantised: ``q = round(pixel / scale + zero_point)``.

Outputs: classification scores are dequantised ``scale * (q - zero_point)`` and the top-k kept
(pycoral ``classify.get_classes``); detections come from the TFLite_Detection_PostProcess outputs,
with normalised ``ymin, xmin, ymax, xmax`` boxes mapped back to ORIGINAL image pixels, undoing the
letterbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image

from core.boxes import Box

RESIZE_MODES = ("stretch", "letterbox")
# Pillow first box-reduces by an integer factor, then resamples: antialiased like the trainer's
# tf.image.resize(antialias=True), and several times faster on camera-sized photos.
REDUCING_GAP = 3.0


@dataclass(frozen=True)
class Class:
    id: int
    score: float
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": round(self.score, 5), "label": self.label}


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: Box  # original-image pixels
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "score": round(self.score, 5),
                "box": [round(v, 2) for v in self.box.as_tuple()]}


@dataclass(frozen=True)
class Transform:
    """How an original ``width x height`` image was placed into the ``in_w x in_h`` model input."""

    width: int
    height: int
    in_w: int
    in_h: int
    mode: str
    scale_x: float  # model-input pixels per original pixel
    scale_y: float

    def to_original(self, ymin: float, xmin: float, ymax: float, xmax: float) -> Box:
        """A normalised model box (TFLite order) -> pixels of the original image, clipped."""
        x0, x1 = xmin * self.in_w / self.scale_x, xmax * self.in_w / self.scale_x
        y0, y1 = ymin * self.in_h / self.scale_y, ymax * self.in_h / self.scale_y
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        return Box(x0, y0, x1, y1).clip(self.width, self.height)

    def to_model(self, box: Box) -> tuple[float, float, float, float]:
        """Original-pixel box -> normalised model ``(ymin, xmin, ymax, xmax)`` (the inverse)."""
        return (box.y_min * self.scale_y / self.in_h, box.x_min * self.scale_x / self.in_w,
                box.y_max * self.scale_y / self.in_h, box.x_max * self.scale_x / self.in_w)


def resize_image(image: Image.Image, size: tuple[int, int], mode: str = "stretch") -> tuple[np.ndarray, Transform]:
    """RGB uint8 ``[h, w, 3]`` model input for ``size`` = (h, w), and the transform to undo it."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, not {mode!r}")
    in_h, in_w = int(size[0]), int(size[1])
    img = image if image.mode == "RGB" else image.convert("RGB")
    w, h = img.size
    if mode == "stretch":
        arr = np.asarray(img.resize((in_w, in_h), Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP),
                         dtype=np.uint8)
        return arr, Transform(w, h, in_w, in_h, mode, in_w / w, in_h / h)
    scale = min(in_w / w, in_h / h)
    nw = min(in_w, max(1, int(round(w * scale))))
    nh = min(in_h, max(1, int(round(h * scale))))
    canvas = np.zeros((in_h, in_w, 3), dtype=np.uint8)
    canvas[:nh, :nw] = np.asarray(img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP),
                                  dtype=np.uint8)
    # the box scale is the nominal one (the trainer's normalised box * max(w, h) = pixels)
    return canvas, Transform(w, h, in_w, in_h, mode, scale, scale)


def quantize_input(pixels: np.ndarray, dtype: Any, quantization: tuple[float, int]) -> np.ndarray:
    """0..255 pixels as the model's input tensor (identity for the studio's uint8 scale-1 inputs)."""
    dt = np.dtype(dtype)
    scale, zero = float(quantization[0] or 0.0), int(quantization[1] or 0)
    if dt == np.float32:
        return pixels.astype(np.float32)
    if scale == 0.0 or (abs(scale - 1.0) < 1e-3 and zero == 0 and dt == np.uint8):
        return pixels.astype(dt, copy=False)
    info = np.iinfo(dt)
    q = np.round(pixels.astype(np.float32) / scale + zero)
    return np.clip(q, info.min, info.max).astype(dt)


def dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float values of an output tensor (``scale * (q - zero_point)`` for quantised ones)."""
    v = np.asarray(values)
    if np.issubdtype(v.dtype, np.floating):
        return v.astype(np.float32)
    scale, zero = detail.get("quantization", (0.0, 0))
    if not scale:
        return v.astype(np.float32)
    return (scale * (v.astype(np.float32) - zero)).astype(np.float32)


def classify(scores: np.ndarray, detail: dict[str, Any], labels: Sequence[str], top_k: int = 5,
             threshold: float = 0.0) -> list[Class]:
    """Top-k classes with dequantised scores >= ``threshold``, best first."""
    s = dequantize(scores, detail).reshape(-1)
    k = max(1, min(int(top_k), s.size))
    order = np.argsort(-s, kind="stable")[:k]
    return [Class(int(i), float(s[i]), labels[i] if i < len(labels) else str(int(i)))
            for i in order if s[i] >= threshold]


def detect(outputs: dict[str, np.ndarray], roles: dict[str, str], transform: Transform,
           labels: Sequence[str], threshold: float = 0.0, max_detections: int | None = None) -> list[Detection]:
    """Detections from the post-process outputs (roles: boxes/classes/scores/count -> output name)."""
    boxes = np.asarray(outputs[roles["boxes"]], np.float32).reshape(-1, 4)
    classes = np.asarray(outputs[roles["classes"]], np.float32).reshape(-1)
    scores = np.asarray(outputs[roles["scores"]], np.float32).reshape(-1)
    count = int(np.asarray(outputs[roles["count"]]).reshape(-1)[0]) if roles.get("count") else len(scores)
    count = max(0, min(count, len(scores), len(boxes)))
    out: list[Detection] = []
    for i in range(count):
        if scores[i] < threshold:
            continue
        cid = int(classes[i])
        ymin, xmin, ymax, xmax = (float(v) for v in boxes[i])
        box = transform.to_original(ymin, xmin, ymax, xmax)
        out.append(Detection(labels[cid] if 0 <= cid < len(labels) else str(cid), float(scores[i]), box, cid))
    out.sort(key=lambda d: d.score, reverse=True)
    return out[:max_detections] if max_detections else out
