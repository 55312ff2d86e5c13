"""The anchor grid of the detector: one set of boxes per feature-map cell.

Anchors are ``(cy, cx, h, w)`` normalised to the square model input, ordered level by level,
then row, column and anchor within a cell -- the same order as the heads' reshape of a
``[batch, H, W, A * k]`` convolution output into ``[batch, H * W * A, k]``. This is the layout the
``TFLite_Detection_PostProcess`` op expects for its third input.

Scales follow the SSD paper / TF OD API ``ssd_anchor_generator``: level ``k`` of ``L`` gets
``s_k = min_scale + (max_scale - min_scale) * k / (L - 1)``; every aspect ratio ``r`` gives
``h = s / sqrt(r)``, ``w = s * sqrt(r)``, plus one extra square anchor of scale
``sqrt(s_k * s_{k+1})`` (``s_L = 1``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np


def feature_sizes(image_size: int, num_levels: int = 6) -> tuple[int, ...]:
    """Grid sizes of the detector's feature maps for a square input.

    MobileNetV2's stride-16 and stride-32 maps, then stride-2 extra layers until 1x1 (or
    ``num_levels`` levels). Matches Keras' padding: ``ceil(size / stride)``.
    """
    sizes = [math.ceil(image_size / 16), math.ceil(image_size / 32)]
    while len(sizes) < num_levels and sizes[-1] > 1:
        sizes.append(math.ceil(sizes[-1] / 2))
    return tuple(sizes)


@dataclass(frozen=True)
class AnchorSpec:
    """Everything needed to regenerate the anchors (stored in the manifest)."""

    feature_sizes: tuple[int, ...]
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5)
    min_scale: float = 0.15
    max_scale: float = 0.95
    interpolated_scale: bool = True
    scales: tuple[float, ...] = field(default=())  # explicit per-level scales override min/max

    @property
    def anchors_per_location(self) -> int:
        return len(self.aspect_ratios) + (1 if self.interpolated_scale else 0)

    @property
    def num_anchors(self) -> int:
        return sum(s * s for s in self.feature_sizes) * self.anchors_per_location

    def level_scales(self) -> list[float]:
        n = len(self.feature_sizes)
        if self.scales:
            if len(self.scales) != n:
                raise ValueError(f"need {n} scales, got {len(self.scales)}")
            return list(self.scales)
        if n == 1:
            return [self.min_scale]
        return [self.min_scale + (self.max_scale - self.min_scale) * k / (n - 1) for k in range(n)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["feature_sizes"] = list(self.feature_sizes)
        d["aspect_ratios"] = list(self.aspect_ratios)
        d["scales"] = list(self.scales)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AnchorSpec":
        return cls(
            feature_sizes=tuple(int(v) for v in d["feature_sizes"]),
            aspect_ratios=tuple(float(v) for v in d.get("aspect_ratios", (1.0, 2.0, 0.5))),
            min_scale=float(d.get("min_scale", 0.15)),
            max_scale=float(d.get("max_scale", 0.95)),
            interpolated_scale=bool(d.get("interpolated_scale", True)),
            scales=tuple(float(v) for v in d.get("scales", ())),
        )


def generate_anchors(spec: AnchorSpec) -> np.ndarray:
    """All anchors as a float32 ``[N, 4]`` array of ``(cy, cx, h, w)`` (normalised)."""
    scales = spec.level_scales()
    out = []
    for level, size in enumerate(spec.feature_sizes):
        s = scales[level]
        s_next = scales[level + 1] if level + 1 < len(scales) else 1.0
        shapes = []  # (h, w) per anchor in a cell
        for r in spec.aspect_ratios:
            shapes.append((s / math.sqrt(r), s * math.sqrt(r)))
        if spec.interpolated_scale:
            si = math.sqrt(s * s_next)
            shapes.append((si, si))
        hw = np.asarray(shapes, dtype=np.float64)  # [A, 2]
        centres = (np.arange(size, dtype=np.float64) + 0.5) / size
        cy, cx = np.meshgrid(centres, centres, indexing="ij")  # [H, W]
        a = len(shapes)
        grid = np.zeros((size, size, a, 4), dtype=np.float64)
        grid[..., 0] = cy[:, :, None]
        grid[..., 1] = cx[:, :, None]
        grid[..., 2] = hw[None, None, :, 0]
        grid[..., 3] = hw[None, None, :, 1]
        out.append(grid.reshape(-1, 4))
    return np.concatenate(out, axis=0).astype(np.float32)


def to_corners(anchors: np.ndarray) -> np.ndarray:
    """``(cy, cx, h, w)`` -> ``(ymin, xmin, ymax, xmax)``."""
    cy, cx, h, w = (anchors[:, i] for i in range(4))
    return np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1).astype(np.float32)
