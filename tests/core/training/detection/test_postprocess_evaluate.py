"""Post-process (decode + fast NMS) and the COCO mAP sanity checks against pycocotools."""

from __future__ import annotations

import numpy as np
import pytest

from core.training.detection import encoding
from core.training.detection.evaluate import coco_metrics
from core.training.detection.postprocess import PostprocessConfig, nms, postprocess


def test_nms_keeps_best_and_suppresses_overlaps():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.95], [0, 2, 1, 3], [0, 0, 1, 0.4]], np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.7], np.float32)
    assert list(nms(boxes, scores, 0.5, 10)) == [1, 3, 2]
    assert list(nms(boxes, scores, 0.5, 2)) == [1, 3]


def test_postprocess_decodes_thresholds_and_takes_best_class():
    anchors = np.array([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.3, 0.3, 0.5, 0.5]], np.float32)
    target = np.array([[0.1, 0.2, 0.4, 0.35], [0.5, 0.5, 1.0, 1.0], [0.1, 0.2, 0.42, 0.36]], np.float32)
    enc = encoding.encode(target, anchors)
    scores = np.array([[0.1, 0.8], [0.2, 0.25], [0.7, 0.3]], np.float32)
    d = postprocess(enc, scores, anchors, PostprocessConfig(0.3, 0.5, 10))
    # anchor 1 is below the threshold; anchor 2 overlaps anchor 0 (IoU > 0.5) with a lower score
    assert len(d) == 1
    assert np.allclose(d.boxes[0], target[0], atol=1e-5)
    assert d.classes[0] == 1 and d.scores[0] == pytest.approx(0.8)
    none = postprocess(enc, scores * 0.1, anchors, PostprocessConfig(0.3, 0.5, 10))
    assert len(none) == 0 and none.boxes.shape == (0, 4)


GT = [[(0, 10, 10, 50, 60), (1, 70, 20, 120, 90)], [(0, 0, 0, 30, 30)], [(1, 40, 40, 90, 95)]]
SIZES = [(128, 100), (64, 64), (100, 100)]


def test_map_perfect_predictions_is_one():
    preds = [[(c, 0.9, *b) for c, *b in img] for img in GT]
    m = coco_metrics(GT, preds, ["a", "b"], SIZES)
    assert m["mAP"] == pytest.approx(1.0) and m["mAP50"] == pytest.approx(1.0)
    assert m["per_class_AP"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    assert len(m["pr_curve"]["precision"]) == 101 and m["pr_curve"]["precision"][-1] == pytest.approx(1.0)


def test_map_no_predictions_is_zero():
    m = coco_metrics(GT, [[], [], []], ["a", "b"], SIZES)
    assert m["mAP"] == 0.0 and m["mAP50"] == 0.0 and m["num_detections"] == 0
    assert m["per_class_AP"] == {"a": 0.0, "b": 0.0}


def test_map_partial_and_wrong_class():
    # class a found perfectly, class b predicted with the wrong class -> AP(b) = 0, mAP = 0.5
    preds = [[(0, 0.9, 10, 10, 50, 60), (0, 0.8, 70, 20, 120, 90)], [(0, 0.9, 0, 0, 30, 30)],
             [(0, 0.7, 40, 40, 90, 95)]]
    m = coco_metrics(GT, preds, ["a", "b"], SIZES)
    assert m["per_class_AP50"]["b"] == 0.0
    assert 0.3 < m["per_class_AP50"]["a"] <= 1.0
    assert m["mAP50"] == pytest.approx((m["per_class_AP50"]["a"] + 0.0) / 2)
    # a box shifted to IoU ~0.6 counts at 0.5 but not at 0.75
    shifted = [[(c, 0.9, b[0] + 0.2 * (b[2] - b[0]), b[1], b[2] + 0.2 * (b[2] - b[0]), b[3]) for c, *b in img]
               for img in GT]
    m2 = coco_metrics(GT, shifted, ["a", "b"], SIZES)
    assert m2["mAP50"] == pytest.approx(1.0) and m2["mAP75"] == pytest.approx(0.0)


def test_class_without_ground_truth_is_none():
    gt = [[(0, 10, 10, 50, 60)]]
    m = coco_metrics(gt, [[(0, 0.9, 10, 10, 50, 60)]], ["a", "unused"], [(100, 100)])
    assert m["per_class_AP"]["unused"] is None and m["mAP50"] == pytest.approx(1.0)
    empty = coco_metrics([[]], [[]], ["a"], [(10, 10)])
    assert empty["mAP"] is None
