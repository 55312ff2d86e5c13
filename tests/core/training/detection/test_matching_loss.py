"""IoU, target assignment and the losses."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.boxes import Box
from core.training.detection import encoding
from core.training.detection.anchors import AnchorSpec, feature_sizes, generate_anchors, to_corners
from core.training.detection.matching import assign_targets, iou_matrix


def test_iou_matrix_agrees_with_box_iou():
    rng = np.random.default_rng(1)

    def boxes(n):
        y0, x0 = rng.uniform(0, 0.6, (2, n))
        h, w = rng.uniform(0.05, 0.4, (2, n))
        return np.stack([y0, x0, y0 + h, x0 + w], axis=1)

    a, b = boxes(7), boxes(5)
    a[0] = b[0]  # one exact overlap
    m = iou_matrix(a, b)
    assert m.shape == (7, 5)
    for i in range(7):
        for j in range(5):
            bi = Box(a[i, 1], a[i, 0], a[i, 3], a[i, 2])
            bj = Box(b[j, 1], b[j, 0], b[j, 3], b[j, 2])
            assert m[i, j] == pytest.approx(bi.iou(bj), abs=1e-9)
    assert iou_matrix(np.zeros((1, 4)), np.zeros((1, 4)))[0, 0] == 0.0


@pytest.fixture(scope="module")
def grid():
    anchors = generate_anchors(AnchorSpec(feature_sizes(160)))
    return anchors, to_corners(anchors)


def test_assign_targets_positive_negative_ignored(grid):
    anchors, corners = grid
    k = 150  # some anchor of the first level
    gt = corners[k:k + 1]
    box_t, cls_t = (t.numpy() for t in assign_targets(gt, np.array([1]), anchors, corners, 3))
    assert box_t.shape == (len(anchors), 5) and cls_t.shape == (len(anchors), 4)
    ious = iou_matrix(corners, gt)[:, 0]
    pos = box_t[:, 4] == 1
    assert pos[k] and np.allclose(box_t[k, :4], 0, atol=1e-5)
    assert np.array_equal(pos, ious >= 0.5)
    assert np.all(cls_t[pos, 1] == 1) and np.all(cls_t[pos][:, [0, 2]] == 0)
    assert np.all(cls_t[~pos, :3] == 0)  # background: all-zero one-hot
    weight = cls_t[:, 3]
    assert np.array_equal(weight == 0, (ious >= 0.4) & (ious < 0.5))  # ignored band
    # positives' encodings decode back to the ground truth
    dec = encoding.decode(box_t[pos, :4], anchors[pos])
    assert np.allclose(dec, np.repeat(gt, pos.sum(), axis=0), atol=1e-5)


def test_tiny_box_is_forced_onto_its_best_anchor(grid):
    anchors, corners = grid
    gt = np.array([[0.50, 0.50, 0.52, 0.53]], np.float32)  # far smaller than any anchor
    ious = iou_matrix(corners, gt)[:, 0]
    assert ious.max() < 0.4
    box_t, cls_t = (t.numpy() for t in assign_targets(gt, np.array([0]), anchors, corners, 1))
    pos = np.nonzero(box_t[:, 4])[0]
    assert list(pos) == [int(np.argmax(ious))]
    assert cls_t[pos[0], 0] == 1 and cls_t[pos[0], 1] == 1


def test_two_boxes_get_their_own_classes(grid):
    anchors, corners = grid
    gt = np.array([[0.05, 0.05, 0.45, 0.45], [0.5, 0.5, 0.95, 0.95]], np.float32)
    box_t, cls_t = (t.numpy() for t in assign_targets(gt, np.array([0, 1]), anchors, corners, 2))
    pos = box_t[:, 4] == 1
    dec = encoding.decode(box_t[pos, :4], anchors[pos])
    for d, c in zip(dec, cls_t[pos, :2]):
        expected = gt[int(np.argmax(c))]
        assert np.allclose(d, expected, atol=1e-5)
    assert cls_t[pos, 0].sum() > 0 and cls_t[pos, 1].sum() > 0


def test_no_ground_truth_means_all_background(grid):
    anchors, corners = grid
    box_t, cls_t = (t.numpy() for t in assign_targets(np.zeros((0, 4), np.float32), np.zeros(0, np.int32),
                                                      anchors, corners, 2))
    assert not box_t.any()
    assert not cls_t[:, :2].any() and np.all(cls_t[:, 2] == 1)


def test_losses_reward_the_right_answer():
    import tensorflow as tf

    from core.training.detection.loss import make_box_loss, make_focal_loss

    box_true = np.zeros((1, 4, 5), np.float32)
    box_true[0, 1] = [0.5, -0.5, 0.2, 0.1, 1.0]
    perfect = box_true[..., :4].copy()
    wrong = perfect + np.array([[[0, 0, 0, 0], [2, 0, 0, 0], [9, 9, 9, 9], [9, 9, 9, 9]]], np.float32)
    bl = make_box_loss()
    assert float(bl(tf.constant(box_true), tf.constant(perfect))) == pytest.approx(0.0)
    # only the positive anchor counts: |diff| = 2 -> Huber 1.5, one positive
    assert float(bl(tf.constant(box_true), tf.constant(wrong))) == pytest.approx(1.5)

    cls_true = np.array([[[0, 1], [1, 1], [0, 0], [0, 1]]], np.float32)  # bg, pos, ignored, bg
    good = np.array([[[-8.0], [8.0], [8.0], [-8.0]]], np.float32)
    bad = -good
    fl = make_focal_loss()
    lg = float(fl(tf.constant(cls_true), tf.constant(good)))
    lb = float(fl(tf.constant(cls_true), tf.constant(bad)))
    assert lg < 1e-4 < lb
    # the ignored anchor (weight 0) never contributes
    ignored_flip = good.copy()
    ignored_flip[0, 2] = -8.0
    assert float(fl(tf.constant(cls_true), tf.constant(ignored_flip))) == pytest.approx(lg, abs=1e-7)
