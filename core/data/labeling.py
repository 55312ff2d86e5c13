"""Pure logic behind the labelling page (no streamlit here).

* :class:`DisplayMapping` maps between original (upright) image pixels, where every
  stored box lives, and canvas pixels, where the image is shown scaled to fit.
* Converters between stored :class:`~core.data.annotations.Annotation` boxes and the
  ``labeled_rect`` objects of streamlit-drawable-canvas (``initial_drawing`` in,
  ``CanvasResult.boxes`` out), including the filter for accidental click-boxes.
* Navigation helpers (next unlabelled, clamping) and the progress figure.
* :func:`predictions_to_annotations`: the model-assisted labelling hook.
* Image helpers that make the canvas background / grid thumbnails (display copies
  only; the stored image is never changed).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from core.data.annotations import Annotation
from core.data.boxes import Box

# Colours for classes, indexed by the class's stable id (colour-blind friendly first).
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000",
    "#aaffc3", "#808000", "#ffd8b1", "#000075", "#a9a9a9",
)
UNREVIEWED_DASH = [8, 5]


# -- coordinate mapping ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DisplayMapping:
    """How an ``image_w`` x ``image_h`` image is shown on a ``canvas_w`` x ``canvas_h`` canvas.

    The background is stretched to the canvas exactly, so x and y scale independently
    (they differ only by the rounding of the canvas size).
    """

    image_w: int
    image_h: int
    canvas_w: int
    canvas_h: int

    def __post_init__(self) -> None:
        if min(self.image_w, self.image_h, self.canvas_w, self.canvas_h) <= 0:
            raise ValueError(f"sizes must be positive: {self}")

    @classmethod
    def fit(cls, image_w: int, image_h: int, max_w: int, max_h: int | None = None,
            max_upscale: float = 4.0) -> "DisplayMapping":
        """The largest canvas inside ``max_w`` x ``max_h`` keeping the aspect ratio.

        Images smaller than the box are enlarged at most ``max_upscale`` times.
        """
        if image_w <= 0 or image_h <= 0:
            raise ValueError(f"image size must be positive, got {image_w}x{image_h}")
        scale = max_w / image_w
        if max_h is not None:
            scale = min(scale, max_h / image_h)
        scale = min(scale, max_upscale)
        cw = max(1, int(round(image_w * scale)))
        ch = max(1, int(round(image_h * scale)))
        return cls(image_w, image_h, cw, ch)

    @property
    def sx(self) -> float:
        """Canvas pixels per image pixel, horizontally."""
        return self.canvas_w / self.image_w

    @property
    def sy(self) -> float:
        """Canvas pixels per image pixel, vertically."""
        return self.canvas_h / self.image_h

    @property
    def is_downscaled(self) -> bool:
        return self.canvas_w < self.image_w

    def to_canvas(self, box: Box) -> dict[str, float]:
        """An image-pixel box as a canvas ``{left, top, width, height}`` dict."""
        return {
            "left": box.x_min * self.sx,
            "top": box.y_min * self.sy,
            "width": box.width * self.sx,
            "height": box.height * self.sy,
        }

    def to_image(self, rect: Mapping[str, float], clip: bool = True) -> Box:
        """A canvas ``{left, top, width, height}`` rect as a box in image pixels.

        Negative widths/heights (a flipped object) are normalised; with ``clip`` the box
        is cut to the image.
        """
        left, top = float(rect["left"]), float(rect["top"])
        w, h = float(rect["width"]), float(rect["height"])
        x0, x1 = sorted((left / self.sx, (left + w) / self.sx))
        y0, y1 = sorted((top / self.sy, (top + h) / self.sy))
        box = Box(x0, y0, x1, y1)
        return box.clip(self.image_w, self.image_h) if clip else box

    def image_px_per_canvas_px(self) -> float:
        """How many image pixels one canvas pixel covers (the larger axis)."""
        return max(1.0 / self.sx, 1.0 / self.sy)


# -- canvas <-> annotations -----------------------------------------------------
def class_colors(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per class (by position in the label map's id order)."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


def annotations_to_drawing(annotations: Iterable[Annotation], mapping: DisplayMapping, *,
                           colors: Mapping[str, str] | None = None, stroke_width: int = 2,
                           default_color: str = "#ffcc00") -> dict[str, Any]:
    """An ``initial_drawing`` for the canvas from stored boxes (classification labels skipped).

    Objects have the same shape as ``streamlit_drawable_canvas.boxes_to_drawing`` makes;
    unreviewed boxes (model predictions) are dashed.
    """
    colors = colors or {}
    objects = []
    for a in annotations:
        if a.box is None:
            continue
        rect = mapping.to_canvas(a.box)
        obj = {
            "type": "LabeledRect", "label": a.label, **rect,
            "originX": "left", "originY": "top", "scaleX": 1, "scaleY": 1, "angle": 0,
            "stroke": colors.get(a.label, default_color), "strokeWidth": stroke_width,
            "fill": "rgba(0, 0, 0, 0)", "lockRotation": True, "strokeUniform": True,
        }
        if not a.reviewed:
            obj["strokeDashArray"] = list(UNREVIEWED_DASH)
        objects.append(obj)
    return {"objects": objects}


def is_click_box(rect: Mapping[str, float], stroke_width: int) -> bool:
    """True for a box made by a click or a near-zero drag, not a real drag.

    The canvas makes every new box at least ``2 * stroke_width`` canvas pixels per side,
    so a side at that minimum means the mouse barely moved along it.
    """
    limit = max(2 * stroke_width, 2) + 0.5
    return abs(float(rect["width"])) <= limit or abs(float(rect["height"])) <= limit


def _same_box(a: Box, b: Box, tol: float) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a.as_tuple(), b.as_tuple()))


@dataclass(frozen=True)
class CanvasChange:
    """The canvas content converted to annotations."""

    annotations: list[Annotation]
    dropped: int  # click-boxes and boxes with no area left after clipping


def canvas_to_annotations(rects: Iterable[Mapping[str, Any]], mapping: DisplayMapping, *,
                          default_label: str, baseline: Sequence[Annotation] = (),
                          stroke_width: int = 2, tol: float | None = None,
                          ndigits: int = 2) -> CanvasChange:
    """Canvas boxes (``CanvasResult.boxes``, canvas pixels) as annotations in image pixels.

    * a box without a label gets ``default_label``;
    * a box that matches a ``baseline`` box (same label, same place within ``tol`` image
      pixels; default a quarter canvas pixel) keeps that box's stored coordinates,
      ``reviewed`` flag and score -- so an untouched prediction stays unreviewed and an
      untouched box does not drift by rounding; anything new or changed is reviewed.
    * other click-boxes are dropped (see :func:`is_click_box`), as are boxes that lie
      outside the image;
    * image-level (classification) annotations of the baseline are kept.
    """
    tol = 0.25 * mapping.image_px_per_canvas_px() if tol is None else tol
    unused = [a for a in baseline if a.box is not None]
    out: list[Annotation] = [a for a in baseline if a.box is None]
    dropped = 0
    for r in rects:
        box = mapping.to_image(r).rounded(ndigits)
        label = str(r.get("label") or "") or default_label
        match = next((a for a in unused if a.label == label and _same_box(a.box, box, tol)), None)
        if match is not None:  # untouched (even when tiny on screen): keep it exactly
            unused.remove(match)
            out.append(match)
        elif is_click_box(r, stroke_width) or box.width <= 0 or box.height <= 0:
            dropped += 1
        else:
            out.append(Annotation(label=label, box=box, reviewed=True))
    return CanvasChange(out, dropped)


def same_annotations(a: Sequence[Annotation], b: Sequence[Annotation], tol: float = 0.01) -> bool:
    """Order-insensitive equality of two annotation lists (boxes within ``tol`` pixels)."""
    if len(a) != len(b):
        return False
    rest = list(b)
    for x in a:
        for i, y in enumerate(rest):
            if x.label != y.label or x.reviewed != y.reviewed or (x.box is None) != (y.box is None):
                continue
            if x.box is None or _same_box(x.box, y.box, tol):
                del rest[i]
                break
        else:
            return False
    return True


# -- editing helpers (the box list next to the canvas) ---------------------------
def relabel(annotations: Sequence[Annotation], index: int, label: str) -> list[Annotation]:
    """Annotations with the ``index``-th box's class changed (the box becomes reviewed)."""
    boxes = [i for i, a in enumerate(annotations) if a.box is not None]
    k = boxes[index]
    out = list(annotations)
    out[k] = replace(out[k], label=label, reviewed=True)
    return out


def remove_box(annotations: Sequence[Annotation], index: int) -> list[Annotation]:
    """Annotations without the ``index``-th box."""
    boxes = [i for i, a in enumerate(annotations) if a.box is not None]
    k = boxes[index]
    return [a for i, a in enumerate(annotations) if i != k]


def accept_all(annotations: Sequence[Annotation]) -> list[Annotation]:
    """The same annotations, all marked reviewed (the user accepted the predictions)."""
    return [a if a.reviewed else replace(a, reviewed=True) for a in annotations]


# -- model-assisted labelling ----------------------------------------------------
def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def predictions_to_annotations(predictions: Any, *, min_score: float = 0.0,
                               image_size: tuple[int, int] | None = None) -> list[Annotation]:
    """Turn model predictions into editable annotations marked unreviewed.

    ``predictions`` may be a ``coral_runtime`` ``Prediction`` (its ``detections`` and/or
    ``classes``), or a sequence of detections / classes -- objects or dicts with
    ``label``, ``score`` and, for detections, ``box`` (a :class:`Box` or an
    ``(x_min, y_min, x_max, y_max)`` tuple in original image pixels). Predictions below
    ``min_score`` are skipped; with ``image_size=(w, h)`` boxes are clipped to the image
    and those left without area dropped. For classification only the best class is kept.
    """
    items: list[Any]
    if not isinstance(predictions, (list, tuple)) and (
            _get(predictions, "detections") is not None or _get(predictions, "classes") is not None):
        items = list(_get(predictions, "detections") or [])
        if not items:
            items = list(_get(predictions, "classes") or [])
    else:
        items = list(predictions or [])
    out: list[Annotation] = []
    best_class: Annotation | None = None
    for p in items:
        label = _get(p, "label")
        score = _get(p, "score")
        score = None if score is None else float(score)
        if label is None or (score is not None and (math.isnan(score) or score < min_score)):
            continue
        raw = _get(p, "box")
        if raw is None:
            cand = Annotation(label=str(label), box=None, reviewed=False, score=score)
            if best_class is None or (score or 0.0) > (best_class.score or 0.0):
                best_class = cand
            continue
        box = raw if isinstance(raw, Box) else Box(*map(float, raw))
        if image_size is not None:
            box = box.clip(*image_size)
        if box.width <= 0 or box.height <= 0:
            continue
        out.append(Annotation(label=str(label), box=box.rounded(2), reviewed=False, score=score))
    if best_class is not None and not out:
        out.append(best_class)
    return out


# -- navigation -------------------------------------------------------------------
def clamp_index(index: int, count: int) -> int:
    """``index`` limited to ``0 .. count-1`` (0 when there is nothing)."""
    return 0 if count <= 0 else min(max(int(index), 0), count - 1)


def next_unlabelled(image_ids: Sequence[str], unlabelled: set[str] | frozenset[str],
                    current: int) -> int | None:
    """Index of the first unlabelled image after ``current`` (wrapping around), or None.

    The current image itself is found last, when it is the only unlabelled one.
    """
    n = len(image_ids)
    for step in range(1, n + 1):
        i = (current + step) % n
        if image_ids[i] in unlabelled:
            return i
    return None


def progress_text(labelled: int, total: int) -> str:
    """``"12 / 40 labelled (30%)"``."""
    pct = 0 if total == 0 else round(100 * labelled / total)
    return f"{labelled} / {total} labelled ({pct}%)"


def page_count(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


# -- display images ---------------------------------------------------------------
def display_image(data: bytes, width: int, height: int, quality: int = 88) -> bytes:
    """The upright image resized to exactly ``width`` x ``height`` as JPEG bytes (display only)."""
    from PIL import Image

    from core.data.imaging import open_upright

    im = open_upright(data)
    if im.size != (width, height):
        resample = Image.Resampling.LANCZOS if width < im.size[0] else Image.Resampling.BILINEAR
        im = im.resize((width, height), resample)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def thumbnail(data: bytes, size: int = 160) -> bytes:
    """An upright thumbnail that fits in ``size`` x ``size`` as JPEG bytes."""
    from core.data.imaging import open_upright

    im = open_upright(data)
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return buf.getvalue()
