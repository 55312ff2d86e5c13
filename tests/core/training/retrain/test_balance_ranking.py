"""Class balance (counts, warnings, modes, balanced sampling) and the ranking scores, without a model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.training.active_learning import classification_scores, detection_scores
from core.data.annotations import Annotation
from core.data.boxes import Box
from core.data.store import NewImage
from core.training import class_balance
from tests.core.data.helpers import jpeg_bytes


def test_counts_and_warning_for_rare_detection_classes(store):
    p = store.create_project("p", "detection")
    items = []
    for i in range(14):
        anns = [Annotation("car", Box(1, 1, 10, 10))] + ([Annotation("cat", Box(12, 12, 20, 20))] if i < 3 else [])
        items.append(NewImage(jpeg_bytes(40 + i, 30), f"{i}.jpg", 40 + i, 30, annotations=anns, split="train"))
    store.add_images(p, items)
    counts = class_balance.class_counts(store, p)
    assert counts == {"car": 14, "cat": 3}
    [msg] = class_balance.few_warnings(counts)
    assert "'cat' has only 3" in msg and "largest has 14" in msg


@pytest.mark.parametrize("task,choice,used", [("classification", "auto", "weights"), ("classification", "none", "none"),
                                              ("detection", "auto", "none"), ("detection", "sampling", "sampling"),
                                              ("detection", "weights", "sampling")])
def test_modes(task, choice, used):
    assert class_balance.mode(task, choice) == used


def test_balanced_sampling_repeats_photos_of_rare_classes():
    ex = [SimpleNamespace(labels=np.array([0])) for _ in range(12)] + [SimpleNamespace(labels=np.array([1]))] * 3
    ctx = SimpleNamespace()
    out = class_balance.balanced_examples(ctx, SimpleNamespace(class_balance="sampling"), ex, ["a", "b"])
    assert len(out) == 12 + 3 * 4
    assert ctx.class_balance["sampled_counts"] == {"a": 12, "b": 12}
    same = class_balance.balanced_examples(ctx, SimpleNamespace(class_balance="none"), ex, ["a", "b"])
    assert same == ex and ctx.class_balance == {"mode": "none", "counts": {"a": 12, "b": 3}}


def test_detection_scores_find_missing_and_unfound_boxes():
    car, cat = Box(0, 0, 50, 50), Box(60, 60, 100, 100)
    good = detection_scores([("car", 0.9, car), ("cat", 0.8, cat)], [("car", car), ("cat", cat)])
    assert good["mistake"] == 0 and not good["reasons"]
    missing = detection_scores([("car", 0.9, car), ("cat", 0.8, cat)], [("car", car)])
    assert missing["mistake"] == pytest.approx(0.8) and "no box" in missing["reasons"][0]
    wrong = detection_scores([("car", 0.9, car)], [("cat", car)])
    assert "the box says cat" in wrong["reasons"][0] and "never finds the cat" in wrong["reasons"][1]
    unsure = detection_scores([("car", 0.5, car)], [])
    sure = detection_scores([("car", 0.95, car)], [])
    assert unsure["uncertainty"] == pytest.approx(1.0) and sure["uncertainty"] < 0.2


def test_classification_scores():
    s = classification_scores(np.array([0.1, 0.85, 0.05]), ["a", "b", "c"], "a")
    assert s["mistake"] == pytest.approx(0.85) and "model says b" in s["reasons"][0]
    assert classification_scores(np.array([0.5, 0.5]), ["a", "b"], None)["uncertainty"] == pytest.approx(1.0)
