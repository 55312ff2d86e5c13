"""Decode + non-maximum suppression in numpy: what ``TFLite_Detection_PostProcess`` does with
``use_regular_nms = false`` and ``max_classes_per_detection = 1`` ("fast NMS"):

1. decode every anchor's box (scales 10, 10, 5, 5),
2. take each anchor's best class score; keep anchors with score ``>= score_threshold``,
3. greedy NMS across classes on those scores (suppress IoU ``> iou_threshold``),
4. keep at most ``max_detections``, highest score first.

Used for the float Keras model, so that its metrics are comparable with the int8 model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.training.detection import encoding
from core.training.detection.matching import iou_matrix


@dataclass(frozen=True)
class PostprocessConfig:
    score_threshold: float = 0.3
    iou_threshold: float = 0.5
    max_detections: int = 20

    def to_dict(self) -> dict:
        return {"score_threshold": self.score_threshold, "iou_threshold": self.iou_threshold,
                "max_detections": self.max_detections}


@dataclass
class Detections:
    boxes: np.ndarray  # [D, 4] normalised ymin, xmin, ymax, xmax (model frame)
    classes: np.ndarray  # [D] int
    scores: np.ndarray  # [D] float

    def __len__(self) -> int:
        return len(self.scores)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int) -> np.ndarray:
    """Greedy NMS; ``boxes`` already sorted or not. Returns kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    active = np.ones(len(order), dtype=bool)
    sorted_boxes = boxes[order]
    for i in range(len(order)):
        if len(keep) >= max_out:
            break
        if not active[i]:
            continue
        keep.append(int(order[i]))
        active[i] = False
        if i + 1 < len(order):
            ious = iou_matrix(sorted_boxes[i:i + 1], sorted_boxes[i + 1:])[0]
            active[i + 1:] &= ~(ious > iou_threshold)
    return np.asarray(keep, dtype=np.int64)


def postprocess(box_encodings: np.ndarray, scores: np.ndarray, anchors: np.ndarray,
                cfg: PostprocessConfig = PostprocessConfig(),
                scales: tuple[float, ...] = encoding.SCALES) -> Detections:
    """One image: ``box_encodings [N, 4]``, ``scores [N, C]`` (sigmoid) -> detections."""
    box_encodings = np.asarray(box_encodings, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(len(box_encodings), -1)
    best_class = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), best_class]
    cand = np.nonzero(best >= cfg.score_threshold)[0]
    if len(cand) == 0:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))
    boxes = encoding.decode(box_encodings[cand], np.asarray(anchors, np.float32)[cand], scales)
    keep = nms(boxes, best[cand], cfg.iou_threshold, cfg.max_detections)
    return Detections(boxes[keep].astype(np.float32), best_class[cand][keep].astype(np.int64),
                      best[cand][keep].astype(np.float32))
