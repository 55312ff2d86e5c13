"""Classification metrics: accuracy, per-class precision/recall/support, confusion matrix."""

from __future__ import annotations

import pytest

from core.training.evaluation import classification_metrics


def test_metrics_by_hand():
    m = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["recall"] == 1.0
    assert m["per_class"]["c"]["precision"] == 1.0 and m["per_class"]["c"]["recall"] == 0.5


def test_metrics_empty_and_missing_class():
    m = classification_metrics([], [], ["a", "b"])
    assert m["accuracy"] == 0.0 and m["confusion_matrix"] == [[0, 0], [0, 0]]
    m = classification_metrics([0, 0], [0, 0], ["a", "b"])
    assert m["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
