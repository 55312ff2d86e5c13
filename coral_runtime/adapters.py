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

from core.data.boxes import Box

RESIZE_MODES = ("stretch", "letterbox")
# Pillow first box-reduces by an integer factor, then resamples: antialiased like the trainer's
# tf.image.resize(antialias=True), and several times faster on camera-sized photos.
REDUCING_GAP = 3.0
# Opt-in speed for live preview: box-reduce by the whole integer factor first, then a bilinear step
# of less than 2x. 1.7-6x faster on a 640x480 frame, but pixels differ from the trainers' fair resize
# (raccoon photos at 640x480 -> 224 / 320x240: mean |diff| 1.0 / 1.7 levels, 99th pct 7 / 14).
FAST_REDUCING_GAP = 1.0


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

    def to_original_array(self, boxes: np.ndarray) -> np.ndarray:
        """Normalised model boxes ``[N, 4]`` (TFLite order ymin, xmin, ymax, xmax) -> original-image
        pixels ``[N, 4]`` (x0, y0, x1, y1), ordered and clipped to the image (float64)."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        xs = np.sort(b[:, [1, 3]] * self.in_w / self.scale_x, axis=1)
        ys = np.sort(b[:, [0, 2]] * self.in_h / self.scale_y, axis=1)
        xs = np.clip(xs, 0.0, float(self.width))
        ys = np.clip(ys, 0.0, float(self.height))
        return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)

    def to_original(self, ymin: float, xmin: float, ymax: float, xmax: float) -> Box:
        """A normalised model box (TFLite order) -> pixels of the original image, clipped."""
        x0, y0, x1, y1 = (float(v) for v in self.to_original_array(np.array([ymin, xmin, ymax, xmax]))[0])
        return Box(x0, y0, x1, y1)

    def to_model(self, box: Box) -> tuple[float, float, float, float]:
        """Original-pixel box -> normalised model ``(ymin, xmin, ymax, xmax)`` (the inverse)."""
        return (box.y_min * self.scale_y / self.in_h, box.x_min * self.scale_x / self.in_w,
                box.y_max * self.scale_y / self.in_h, box.x_max * self.scale_x / self.in_w)


def fit(width: int, height: int, size: tuple[int, int], mode: str = "stretch") -> tuple[int, int, Transform]:
    """Where a ``width x height`` image goes in a ``size`` = (h, w) input: ``(nw, nh, transform)``,
    the resized image occupying ``[:nh, :nw]`` (the whole input for ``"stretch"``)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, not {mode!r}")
    in_h, in_w = int(size[0]), int(size[1])
    w, h = int(width), int(height)
    if mode == "stretch":
        return in_w, in_h, Transform(w, h, in_w, in_h, mode, in_w / w, in_h / h)
    scale = min(in_w / w, in_h / h)
    nw = min(in_w, max(1, int(round(w * scale))))
    nh = min(in_h, max(1, int(round(h * scale))))
    # the box scale is the nominal one (the trainer's normalised box * max(w, h) = pixels)
    return nw, nh, Transform(w, h, in_w, in_h, mode, scale, scale)


def resize_into(image: Image.Image, out: np.ndarray, mode: str = "stretch", *,
                reducing_gap: float | None = REDUCING_GAP) -> Transform:
    """Resize ``image`` into ``out`` (uint8 ``[h, w, 3]``, e.g. a reused buffer): one Pillow resize,
    one copy, letterbox padding zeroed. Returns the transform to undo it.

    ``reducing_gap`` is Pillow's: ``None``/``>= 3`` is the fair antialiased bilinear resize the
    trainers use; smaller values box-reduce first (faster, slightly different pixels — see
    :data:`FAST_REDUCING_GAP`).
    """
    if out.dtype != np.uint8 or out.ndim != 3 or out.shape[2] != 3:
        raise ValueError(f"out must be a uint8 [h, w, 3] array, not {out.dtype} {out.shape}")
    img = image if image.mode == "RGB" else image.convert("RGB")
    nw, nh, tr = fit(img.width, img.height, out.shape[:2], mode)
    if (nw, nh) == img.size:
        resized = img
    else:
        resized = img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=reducing_gap)
    place_into(out, np.asarray(resized))
    return tr


def place_into(out: np.ndarray, pixels: np.ndarray) -> None:
    """Copy ``pixels`` (``[nh, nw, 3]``, already the size :func:`fit` gave) to the top-left of
    ``out`` and zero the rest (the letterbox padding; nothing for ``"stretch"``)."""
    nh, nw = pixels.shape[:2]
    out[:nh, :nw] = pixels
    if nh < out.shape[0]:
        out[nh:] = 0
    if nw < out.shape[1]:
        out[:nh, nw:] = 0


def resize_image(image: Image.Image, size: tuple[int, int], mode: str = "stretch", *,
                 reducing_gap: float | None = REDUCING_GAP) -> tuple[np.ndarray, Transform]:
    """RGB uint8 ``[h, w, 3]`` model input for ``size`` = (h, w), and the transform to undo it."""
    out = np.empty((int(size[0]), int(size[1]), 3), np.uint8)
    return out, resize_into(image, out, mode, reducing_gap=reducing_gap)


def is_identity_quantization(dtype: Any, quantization: tuple[float, int]) -> bool:
    """True when 0..255 pixels ARE the input tensor's values (uint8, scale ~1, zero point 0, or an
    unquantised uint8 input): no arithmetic and no copy are needed.

    The studio's contract is that a pixel's real value is the pixel itself (the model rescales in
    its graph), so a uint8 input with scale 1/255 or 1/127.5 is *not* the identity here.
    """
    scale, zero = float(quantization[0] or 0.0), int(quantization[1] or 0)
    return np.dtype(dtype) == np.uint8 and (scale == 0.0 or (abs(scale - 1.0) < 1e-3 and zero == 0))


def _requantize(values: np.ndarray, dt: np.dtype, scale: float, zero: int) -> np.ndarray:
    info = np.iinfo(dt)
    q = np.round(values.astype(np.float32) / scale + zero)
    return np.clip(q, info.min, info.max).astype(dt)


def input_lut(dtype: Any, quantization: tuple[float, int]) -> np.ndarray | None:
    """A 256-entry table pixel -> quantised input value, or ``None`` when no table is needed
    (identity quantisation or a float input). ``lut[pixels]`` equals :func:`quantize_input`."""
    dt = np.dtype(dtype)
    scale = float(quantization[0] or 0.0)
    if dt == np.float32 or is_identity_quantization(dt, quantization) or scale == 0.0:
        return None
    return _requantize(np.arange(256, dtype=np.uint8), dt, scale, int(quantization[1] or 0))


def quantize_input(pixels: np.ndarray, dtype: Any, quantization: tuple[float, int]) -> np.ndarray:
    """0..255 pixels as the model's input tensor (identity for the studio's uint8 scale-1 inputs)."""
    dt = np.dtype(dtype)
    scale, zero = float(quantization[0] or 0.0), int(quantization[1] or 0)
    if dt == np.float32:
        return pixels.astype(np.float32)
    if scale == 0.0 or is_identity_quantization(dt, quantization):
        return pixels.astype(dt, copy=False)
    if pixels.dtype == np.uint8:  # one table look-up per pixel instead of float arithmetic
        lut = input_lut(dt, quantization)
        if lut is not None:
            return lut[pixels]
    return _requantize(pixels, dt, scale, zero)


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
    """Detections from the post-process outputs (roles: boxes/classes/scores/count -> output name).

    Vectorised: the threshold, the sort and the box mapping (:meth:`Transform.to_original_array`)
    run on whole arrays; a ``Detection`` is made only for the kept ones.
    """
    boxes = np.asarray(outputs[roles["boxes"]], np.float32).reshape(-1, 4)
    classes = np.asarray(outputs[roles["classes"]], np.float32).reshape(-1)
    scores = np.asarray(outputs[roles["scores"]], np.float32).reshape(-1)
    count = int(np.asarray(outputs[roles["count"]]).reshape(-1)[0]) if roles.get("count") else len(scores)
    count = max(0, min(count, len(scores), len(boxes)))
    keep = np.flatnonzero(~(scores[:count] < threshold))  # as `if score < threshold: skip`
    if keep.size == 0:
        return []
    keep = keep[np.argsort(-scores[keep], kind="stable")]  # best first, ties in output order
    if max_detections:
        keep = keep[:max_detections]
    pixels = transform.to_original_array(boxes[keep])
    out: list[Detection] = []
    for j, i in enumerate(keep.tolist()):
        cid = int(classes[i])
        box = Box(*(float(v) for v in pixels[j]))
        out.append(Detection(labels[cid] if 0 <= cid < len(labels) else str(cid), float(scores[i]), box, cid))
    return out
