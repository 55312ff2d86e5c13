"""Losses: sigmoid focal loss for classes (RetinaNet; no hard-negative mining needed) and Huber
(smooth L1, delta 1) for the encoded boxes of positive anchors. Both are summed over anchors and
divided by the number of positive anchors in the batch (at least 1), as in the TF OD API.

Targets come from :func:`matching.assign_targets`: boxes ``[B, N, 5]`` (encoding + positive flag),
classes ``[B, N, C + 1]`` (one-hot + loss weight).
"""

from __future__ import annotations

from typing import Any


def _num_positives(pos):
    import tensorflow as tf

    return tf.maximum(tf.reduce_sum(pos), 1.0)


def make_box_loss(delta: float = 1.0):
    """Huber loss on the encodings of positive anchors, normalised by the positives."""
    import tensorflow as tf

    def box_loss(y_true: Any, y_pred: Any) -> Any:
        y_true = tf.cast(y_true, tf.float32)
        y_pred = tf.cast(y_pred, tf.float32)
        pos = y_true[..., 4]
        diff = tf.abs(y_true[..., :4] - y_pred)
        huber = tf.where(diff < delta, 0.5 * diff * diff, delta * (diff - 0.5 * delta))
        return tf.reduce_sum(tf.reduce_sum(huber, axis=-1) * pos) / _num_positives(pos)

    return box_loss


def make_focal_loss(alpha: float = 0.25, gamma: float = 2.0):
    """Sigmoid focal loss over all non-ignored anchors, normalised by the positives."""
    import tensorflow as tf

    def focal_loss(y_true: Any, y_pred: Any) -> Any:
        y_true = tf.cast(y_true, tf.float32)
        logits = tf.cast(y_pred, tf.float32)
        labels = y_true[..., :-1]
        weight = y_true[..., -1]
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        p = tf.sigmoid(logits)
        p_t = labels * p + (1 - labels) * (1 - p)
        alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
        fl = alpha_t * tf.pow(1.0 - p_t, gamma) * ce
        pos = tf.reduce_max(labels, axis=-1)
        return tf.reduce_sum(tf.reduce_sum(fl, axis=-1) * weight) / _num_positives(pos)

    return focal_loss
