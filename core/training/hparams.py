"""Hyperparameters as dataclasses (in the spirit of Model Maker): defaults that just work."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Weights = str  # "imagenet" | "none" | a path to a local Keras weights file


@dataclass
class CommonHParams:
    """Settings shared by every trainer."""

    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    augment: bool = True
    alpha: float = 1.0  # MobileNetV2 width multiplier: 0.35, 0.5, 0.75, 1.0, 1.3, 1.4
    weights: Weights = "imagenet"
    early_stopping_patience: int = 5
    seed: int = 0
    train_on: Literal["split", "all"] = "split"  # "all": every image, whatever its split
    max_images: int | None = None  # cap (for quick runs and tests)
    representative_samples: int = 100  # images used to calibrate int8 quantisation (detection adds their mirror images)
    init_from: str | None = None  # continue from this model of the project (its id): core/training/continue_from
    class_balance: str = "auto"  # "auto" (classification: weights; detection: none) | "none" | "weights" | "sampling"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CommonHParams":
        """Build from a dict, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class ClassificationHParams(CommonHParams):
    image_size: int = 224  # 96 for quick runs
    dropout: float = 0.2
    label_smoothing: float = 0.0


@dataclass
class DetectionHParams(CommonHParams):
    image_size: int = 320  # 256, 300 or 320
    batch_size: int = 8
    score_threshold: float = 0.3  # post-process op: minimum score kept
    iou_threshold: float = 0.5  # post-process op: NMS IoU
    max_detections: int = 0  # exported model's max boxes per photo; 0 = from the data (20..100)
    minutes: float | None = None  # a time budget for training (epochs then only cap it)
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5)
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    extra: dict[str, Any] = field(default_factory=dict)


def hparams_for(task: str, d: dict[str, Any] | None = None) -> CommonHParams:
    """The hyperparameter dataclass for ``task`` filled from ``d``."""
    cls = DetectionHParams if task == "detection" else ClassificationHParams
    return cls.from_dict(d or {})
