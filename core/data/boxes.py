"""One immutable bounding box in original-image pixel coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass


class BoxError(ValueError):
    """A box that cannot exist (NaN, infinite, or negative size)."""


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box, pixel ``x_min, y_min, x_max, y_max`` in the upright original image.

    Zero-area boxes are representable (importers decide to skip them); negative
    sizes and non-finite coordinates are rejected at construction.
    """

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def __post_init__(self) -> None:
        vals = (self.x_min, self.y_min, self.x_max, self.y_max)
        for v in vals:
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise BoxError(f"box coordinate {v!r} is not a finite number")
        if self.x_max < self.x_min or self.y_max < self.y_min:
            raise BoxError(
                f"box has negative size: ({self.x_min}, {self.y_min}, {self.x_max}, {self.y_max})"
            )
        for name, v in zip(("x_min", "y_min", "x_max", "y_max"), vals):
            object.__setattr__(self, name, float(v))

    # -- geometry ---------------------------------------------------------
    @property
    def width(self) -> float:
        return self.x_max - self.x_min

    @property
    def height(self) -> float:
        return self.y_max - self.y_min

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_tuple(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)``."""
        return (self.x_min, self.y_min, self.x_max, self.y_max)

    def is_inside(self, width: float, height: float) -> bool:
        """True when the box lies entirely within a ``width`` x ``height`` image."""
        return self.x_min >= 0 and self.y_min >= 0 and self.x_max <= width and self.y_max <= height

    def clip(self, width: float, height: float) -> "Box":
        """The part of the box inside the image (may have zero area)."""
        x0 = min(max(self.x_min, 0.0), width)
        y0 = min(max(self.y_min, 0.0), height)
        x1 = min(max(self.x_max, 0.0), width)
        y1 = min(max(self.y_max, 0.0), height)
        return Box(x0, y0, x1, y1)

    def scale(self, sx: float, sy: float | None = None) -> "Box":
        """Box with x coordinates multiplied by ``sx`` and y by ``sy`` (default ``sx``)."""
        sy = sx if sy is None else sy
        return Box(self.x_min * sx, self.y_min * sy, self.x_max * sx, self.y_max * sy)

    def intersection(self, other: "Box") -> float:
        w = min(self.x_max, other.x_max) - max(self.x_min, other.x_min)
        h = min(self.y_max, other.y_max) - max(self.y_min, other.y_min)
        return max(w, 0.0) * max(h, 0.0)

    def iou(self, other: "Box") -> float:
        """Intersection over union (0 when both are empty)."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def rounded(self, ndigits: int = 2) -> "Box":
        return Box(*(round(v, ndigits) for v in self.as_tuple()))

    # -- conversions ------------------------------------------------------
    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> "Box":
        """From top-left corner plus width/height (COCO)."""
        return cls(x, y, x + w, y + h)

    def to_xywh(self) -> tuple[float, float, float, float]:
        return (self.x_min, self.y_min, self.width, self.height)

    @classmethod
    def from_yolo(cls, cx: float, cy: float, w: float, h: float, width: int, height: int) -> "Box":
        """From YOLO-normalised centre/size in a ``width`` x ``height`` image."""
        return cls(
            (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height
        )

    def to_yolo(self, width: int, height: int) -> tuple[float, float, float, float]:
        """YOLO-normalised ``(cx, cy, w, h)``."""
        return (
            (self.x_min + self.x_max) / 2 / width,
            (self.y_min + self.y_max) / 2 / height,
            self.width / width,
            self.height / height,
        )

    @classmethod
    def from_normalized(cls, x_min: float, y_min: float, x_max: float, y_max: float,
                        width: int, height: int) -> "Box":
        """From corners normalised to [0, 1] (Coral/AutoML CSV)."""
        return cls(x_min * width, y_min * height, x_max * width, y_max * height)

    def to_normalized(self, width: int, height: int) -> tuple[float, float, float, float]:
        """Corners normalised to [0, 1]: ``(x_min, y_min, x_max, y_max)``."""
        return (self.x_min / width, self.y_min / height, self.x_max / width, self.y_max / height)

    @classmethod
    def from_tflite(cls, ymin: float, xmin: float, ymax: float, xmax: float,
                    width: int, height: int) -> "Box":
        """From the TFLite detection layout: normalised ``ymin, xmin, ymax, xmax``."""
        return cls(xmin * width, ymin * height, xmax * width, ymax * height)

    def to_tflite(self, width: int, height: int) -> tuple[float, float, float, float]:
        """Normalised ``(ymin, xmin, ymax, xmax)`` as TFLite detectors emit them."""
        return (self.y_min / height, self.x_min / width, self.y_max / height, self.x_max / width)
