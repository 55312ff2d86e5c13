"""IoU and target assignment: which anchor learns which ground-truth box.

Rule (SSD / TF OD API ``ArgMaxMatcher``): an anchor whose best IoU with a ground-truth box is
``>= pos_iou`` is positive for that box, ``< neg_iou`` is background, in between is ignored
(no class loss, no box loss). Every ground-truth box is also forced onto its single best anchor,
so that small or oddly shaped boxes always have at least one positive anchor.

``iou_matrix`` is numpy (evaluation, NMS, tests); ``assign_targets`` is TensorFlow (it runs
inside the tf.data pipeline).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.training.detection import encoding

IGNORE = -1.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of ``a`` ``[N, 4]`` and ``b`` ``[K, 4]`` (corner boxes) -> ``[N, K]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ymin = np.maximum(a[:, None, 0], b[None, :, 0])
    xmin = np.maximum(a[:, None, 1], b[None, :, 1])
    ymax = np.minimum(a[:, None, 2], b[None, :, 2])
    xmax = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ymax - ymin, 0, None) * np.clip(xmax - xmin, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def iou_matrix_tf(a: Any, b: Any) -> Any:
    """TensorFlow version of :func:`iou_matrix`."""
    import tensorflow as tf

    ymin = tf.maximum(a[:, None, 0], b[None, :, 0])
    xmin = tf.maximum(a[:, None, 1], b[None, :, 1])
    ymax = tf.minimum(a[:, None, 2], b[None, :, 2])
    xmax = tf.minimum(a[:, None, 3], b[None, :, 3])
    inter = tf.nn.relu(ymax - ymin) * tf.nn.relu(xmax - xmin)
    area_a = tf.nn.relu(a[:, 2] - a[:, 0]) * tf.nn.relu(a[:, 3] - a[:, 1])
    area_b = tf.nn.relu(b[:, 2] - b[:, 0]) * tf.nn.relu(b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return tf.math.divide_no_nan(inter, union)


def assign_targets(gt_boxes: Any, gt_labels: Any, anchors: Any, anchor_corners: Any,
                   num_classes: int, pos_iou: float = 0.5, neg_iou: float = 0.4,
                   scales: tuple[float, ...] = encoding.SCALES) -> tuple[Any, Any]:
    """Training targets of one image (TensorFlow).

    ``gt_boxes`` ``[K, 4]`` corners, ``gt_labels`` ``[K]`` int class indices, ``anchors`` ``[N, 4]``
    ``(cy, cx, h, w)`` and the same anchors as corners. Returns

    - ``box_targets`` ``[N, 5]``: encoded box (zeros for non-positive anchors) + positive flag,
    - ``cls_targets`` ``[N, C + 1]``: one-hot class (all zeros for background) + loss weight
      (1 for positives and background, 0 for ignored anchors).
    """
    import tensorflow as tf

    gt_boxes = tf.cast(tf.reshape(gt_boxes, [-1, 4]), tf.float32)
    gt_labels = tf.cast(tf.reshape(gt_labels, [-1]), tf.int32)
    anchors = tf.cast(anchors, tf.float32)
    anchor_corners = tf.cast(anchor_corners, tf.float32)
    n = tf.shape(anchors)[0]
    k = tf.shape(gt_boxes)[0]

    def empty():
        return (tf.zeros([n, 5], tf.float32),
                tf.concat([tf.zeros([n, num_classes]), tf.ones([n, 1])], axis=1))

    def match():
        iou = iou_matrix_tf(anchor_corners, gt_boxes)  # [N, K]
        best_gt = tf.argmax(iou, axis=1, output_type=tf.int32)
        best_iou = tf.reduce_max(iou, axis=1)
        # force every ground-truth box onto its best anchor (if it overlaps any)
        best_anchor = tf.argmax(iou, axis=0, output_type=tf.int32)  # [K]
        overlaps = tf.reduce_max(iou, axis=0) > 0
        forced_anchor = tf.boolean_mask(best_anchor, overlaps)
        forced_gt = tf.boolean_mask(tf.range(k, dtype=tf.int32), overlaps)
        forced = tf.tensor_scatter_nd_update(-tf.ones([n], tf.int32), forced_anchor[:, None], forced_gt)
        is_forced = forced >= 0
        best_gt = tf.where(is_forced, forced, best_gt)
        best_iou = tf.where(is_forced, tf.ones_like(best_iou), best_iou)
        positive = best_iou >= pos_iou
        negative = best_iou < neg_iou
        pos_f = tf.cast(positive, tf.float32)
        matched = tf.gather(gt_boxes, best_gt)
        enc = encoding.encode(matched, anchors, scales) * pos_f[:, None]
        box_t = tf.concat([enc, pos_f[:, None]], axis=1)
        onehot = tf.one_hot(tf.gather(gt_labels, best_gt), num_classes) * pos_f[:, None]
        weight = tf.cast(positive | negative, tf.float32)
        return box_t, tf.concat([onehot, weight[:, None]], axis=1)

    return tf.cond(k > 0, match, empty)
