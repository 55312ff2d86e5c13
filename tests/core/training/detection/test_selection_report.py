"""The Models page's curves include a detector's validation mAP, the weak-result advice names a
reason, and the exported max detections follow the data."""

from __future__ import annotations

import numpy as np

from core.training.detection.trainer import auto_max_detections, weak_result_advice
from core.training.hparams import DetectionHParams
from core.training.report import history_rows


def test_history_rows_carry_the_val_map_curve():
    m = {"history": {"loss": [3.0, 2.0, 1.5]},
         "training": {"selection": {"val_mAP50": {"1": 0.1, "3": 0.4}}}}
    rows = history_rows(m)
    assert {"epoch": 3, "metric": "val_mAP50", "value": 0.4} in rows
    assert [r["epoch"] for r in rows if r["metric"] == "val_mAP50"] == [1, 3]
    assert len([r for r in rows if r["metric"] == "loss"]) == 3


def test_weak_result_advice_names_reasons_and_remedies():
    hp = DetectionHParams(weights="none", minutes=5)
    advice = weak_result_advice({"int8": {"mAP50": 0.12}}, 40, hp, 12)
    assert "0.12" in advice and "40 training photos" in advice and "from scratch" in advice
    assert "5 minutes" in advice and "pretrained" in advice
    assert weak_result_advice({"int8": {"mAP50": 0.45}}, 40, hp, 12) is None


class _Ex:
    def __init__(self, k):
        self.labels = np.zeros(k, np.int32)


def test_max_detections_follow_the_data():
    assert auto_max_detections([_Ex(1), _Ex(3)]) == 20
    assert auto_max_detections([_Ex(2), _Ex(35)]) == 70
    assert auto_max_detections([_Ex(80)]) == 100
