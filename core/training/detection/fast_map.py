"""A fast COCO-style AP@IoU in numpy, for picking the best weights during training.

Same rules as ``pycocotools`` (``COCOeval``, area "all"): per image and class the detections are
sorted by score and cut to ``max_detections``; each one, best score first, takes the unmatched
ground-truth box of its class with the highest IoU ``>= iou`` (ties: the first); precision is made
monotone from the right and read at 101 recall points (``searchsorted`` left); a class without
ground truth is left out of the mean. No crowd boxes, no area ranges: the studio has neither.
Agreement with pycocotools is tested on the same detections.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from core.training.detection.matching import iou_matrix

RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def average_precision(ground_truth: Sequence[tuple[np.ndarray, np.ndarray]],
                      detections: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                      num_classes: int, iou: float = 0.5, max_detections: int = 100) -> float | None:
    """Mean AP over classes at one IoU threshold.

    ``ground_truth``: per image ``(boxes [K, 4], classes [K])``; ``detections``: per image
    ``(boxes [D, 4], classes [D], scores [D])``; boxes in any one consistent corner format
    (e.g. pixels ``x0, y0, x1, y1``). ``None`` when there is no ground truth at all.
    """
    aps = []
    for c in range(num_classes):
        n_gt = 0
        scores_all: list[np.ndarray] = []
        tp_all: list[np.ndarray] = []
        for (gb, gc), (db, dc, ds) in zip(ground_truth, detections):
            g = np.asarray(gb, np.float64).reshape(-1, 4)[np.asarray(gc) == c]
            m = np.asarray(dc) == c
            d = np.asarray(db, np.float64).reshape(-1, 4)[m]
            s = np.asarray(ds, np.float64)[m]
            n_gt += len(g)
            if not len(d):
                continue
            order = np.argsort(-s, kind="mergesort")[:max_detections]
            d, s = d[order], s[order]
            tp = np.zeros(len(d), bool)
            if len(g):
                ious = iou_matrix(d, g)
                taken = np.zeros(len(g), bool)
                for i in range(len(d)):
                    cand = np.where(taken, -1.0, ious[i])
                    j = int(np.argmax(cand))
                    if cand[j] >= iou:
                        taken[j] = True
                        tp[i] = True
            scores_all.append(s)
            tp_all.append(tp)
        if n_gt == 0:
            continue
        if not scores_all:
            aps.append(0.0)
            continue
        s = np.concatenate(scores_all)
        tp = np.concatenate(tp_all)
        order = np.argsort(-s, kind="mergesort")
        tp = tp[order]
        tps = np.cumsum(tp)
        fps = np.cumsum(~tp)
        recall = tps / n_gt
        precision = tps / np.maximum(tps + fps, np.finfo(np.float64).eps)
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        idx = np.searchsorted(recall, RECALL_POINTS, side="left")
        q = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
        aps.append(float(q.mean()))
    return float(np.mean(aps)) if aps else None


def make_val_evaluator(model: Any, inputs: Sequence[np.ndarray], examples: Sequence[Any], anchors: np.ndarray,
                       num_classes: int, resize: str, batch_size: int = 16, score_threshold: float = 0.01,
                       iou_threshold: float = 0.5, max_detections: int = 100) -> Callable[[], float | None]:
    """``evaluate() -> mAP@0.5`` of the float ``model`` (image -> [boxes, scores]) on fixed uint8
    model ``inputs`` of ``examples`` (COCO's 100 detections per image, low score threshold)."""
    from core.training.detection.data import boxes_to_pixels
    from core.training.detection.evaluate import predict_float
    from core.training.detection.postprocess import PostprocessConfig

    cfg = PostprocessConfig(score_threshold, iou_threshold, max_detections)
    gts = [(np.asarray(e.boxes, np.float64)[:, [1, 0, 3, 2]] * [e.width, e.height, e.width, e.height],
            np.asarray(e.labels)) for e in examples]

    def evaluate() -> float | None:
        dets = predict_float(model, inputs, anchors, cfg, batch_size=batch_size)
        out = [(boxes_to_pixels(d.boxes, e.width, e.height, resize), d.classes, d.scores)
               for d, e in zip(dets, examples)]
        return average_precision(gts, out, num_classes, 0.5, max_detections)

    return evaluate
