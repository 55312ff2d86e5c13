"""The fast numpy mAP used to pick the best weights agrees with pycocotools on the same detections,
and the learning-rate / epoch plan of a time budget behaves."""

from __future__ import annotations

import numpy as np
import pytest

from core.training.detection.budget import lr_at, plan_epochs
from core.training.detection.evaluate import coco_metrics
from core.training.detection.fast_map import average_precision


def _scene(rng, n_images=30, n_classes=3):
    gts, dets, sizes = [], [], []
    for _ in range(n_images):
        w, h = int(rng.integers(200, 640)), int(rng.integers(200, 640))
        k = int(rng.integers(0, 6))
        x0 = rng.uniform(0, w * 0.7, k)
        y0 = rng.uniform(0, h * 0.7, k)
        g = np.stack([x0, y0, x0 + rng.uniform(8, w * 0.3, k), y0 + rng.uniform(8, h * 0.3, k)], 1)
        gc = rng.integers(0, n_classes, k)
        # detections: jittered copies of the boxes (some badly), some wrong classes, random clutter
        jitter = rng.normal(0, rng.choice([2, 10, 30]), g.shape)
        d = np.concatenate([g + jitter, g[: k // 2] + rng.normal(0, 5, (k // 2, 4))])
        dc = np.concatenate([np.where(rng.random(k) < 0.85, gc, rng.integers(0, n_classes, k)), gc[: k // 2]])
        m = int(rng.integers(0, 120))
        cx0, cy0 = rng.uniform(0, w - 20, m), rng.uniform(0, h - 20, m)
        clutter = np.stack([cx0, cy0, cx0 + rng.uniform(5, 80, m), cy0 + rng.uniform(5, 80, m)], 1)
        d = np.concatenate([d, clutter]).reshape(-1, 4)
        d[:, [0, 2]] = np.sort(d[:, [0, 2]], 1)
        d[:, [1, 3]] = np.sort(d[:, [1, 3]], 1)
        dc = np.concatenate([dc, rng.integers(0, n_classes, m)]).astype(int)
        ds = np.concatenate([rng.uniform(0.3, 1.0, len(d) - m), rng.uniform(0.0, 0.6, m)])
        gts.append((g, gc))
        dets.append((d, dc, ds))
        sizes.append((w, h))
    return gts, dets, sizes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_map_agrees_with_pycocotools(seed):
    rng = np.random.default_rng(seed)
    gts, dets, sizes = _scene(rng)
    names = ["a", "b", "c"]
    coco = coco_metrics([[(int(c), *b) for b, c in zip(*g)] for g in gts],
                        [[(int(c), float(s), *b) for b, c, s in zip(*d)] for d in dets], names, sizes)
    fast50 = average_precision(gts, dets, 3, 0.5, 100)
    fast75 = average_precision(gts, dets, 3, 0.75, 100)
    assert 0.05 < coco["mAP50"] < 0.95  # a scene where the figure means something
    assert fast50 == pytest.approx(coco["mAP50"], abs=0.005)
    assert fast75 == pytest.approx(coco["mAP75"], abs=0.005)


def test_fast_map_edge_cases():
    g = [(np.array([[0, 0, 10, 10.0]]), np.array([0]))]
    assert average_precision(g, [(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0))], 1) == 0.0
    assert average_precision(g, [(np.array([[0, 0, 10, 10.0]]), np.array([0]), np.array([0.9]))], 1) == 1.0
    assert average_precision([(np.zeros((0, 4)), np.zeros(0, int))],
                             [(np.array([[0, 0, 1, 1.0]]), np.array([0]), np.array([0.5]))], 1) is None


def test_learning_rate_warms_up_then_decays_to_one_percent():
    lrs = [lr_at(s, 1e-3, 10, 100) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-3, rel=1e-6)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11]))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[100] == pytest.approx(1e-5)


def test_epoch_plan_fills_the_budget():
    # first epoch 30 s (tracing), then 10 s each: 120 s budget after 3 epochs (50 s) -> 7 more
    assert plan_epochs(3, 50.0, [30.0, 10.0, 10.0], 120.0) == 10
    assert plan_epochs(3, 50.0, [30.0, 10.0, 10.0], 40.0) == 3  # over budget: stop now
    assert plan_epochs(1, 90.0, [90.0], 120.0) == 2  # the first (tracing) epoch alone: measure one more
