"""compare_predictions: the smoke test's rule (same classes; detections one to one with IoU >= 0.95)."""

from __future__ import annotations

from builder.docker import compare_predictions
from builder.registry import registry_reference


def det(label, box, score=0.9):
    return {"label": label, "score": score, "box": list(box)}


def test_classes_must_match_in_order_and_score():
    a = {"classes": [{"label": "cat", "score": 0.7}, {"label": "dog", "score": 0.3}]}
    assert compare_predictions(a, a)[0]
    b = {"classes": [{"label": "dog", "score": 0.7}, {"label": "cat", "score": 0.3}]}
    ok, msg = compare_predictions(a, b)
    assert not ok and "classes differ" in msg
    c = {"classes": [{"label": "cat", "score": 0.5}, {"label": "dog", "score": 0.5}]}
    assert not compare_predictions(a, c)[0]


def test_detections_match_by_label_and_iou():
    local = {"detections": [det("raccoon", (10, 10, 110, 110)), det("raccoon", (200, 50, 300, 150))]}
    shifted = {"detections": [det("raccoon", (201, 50, 301, 150)), det("raccoon", (10, 10, 110, 111))]}
    ok, msg = compare_predictions(shifted, local)
    assert ok, msg
    moved = {"detections": [det("raccoon", (10, 10, 110, 110)), det("raccoon", (215, 50, 315, 150))]}
    ok, msg = compare_predictions(moved, local)
    assert not ok and "IoU" in msg
    relabelled = {"detections": [det("raccoon", (10, 10, 110, 110)), det("dog", (200, 50, 300, 150))]}
    assert not compare_predictions(relabelled, local)[0]
    assert not compare_predictions({"detections": local["detections"][:1]}, local)[0]
    as_dicts = {"detections": [{"label": "raccoon", "score": 0.9,
                                "box": {"x_min": 10, "y_min": 10, "x_max": 110, "y_max": 110}},
                               det("raccoon", (200, 50, 300, 150))]}
    assert compare_predictions(as_dicts, local)[0]


def test_identical_zero_area_boxes_match():
    flat = {"detections": [det("raccoon", (0, 417, 183.6, 417)), det("raccoon", (135.6, 417, 346.1, 417))]}
    assert compare_predictions(flat, flat)[0]
    other = {"detections": [det("raccoon", (0, 417, 183.6, 417)), det("raccoon", (140, 417, 346.1, 417))]}
    assert not compare_predictions(other, flat)[0]


def test_registry_reference_replaces_the_registry_part():
    assert registry_reference("studio/raccoons:1", "127.0.0.1:5000") == ("127.0.0.1:5000/studio/raccoons", "1")
    assert registry_reference("old.host:5000/studio/x:2", "http://new:80/") == ("new:80/studio/x", "2")
    assert registry_reference("plain", "r:1") == ("r:1/plain", "latest")
