"""Box encoding relative to anchors, as the TF OD API ``FasterRcnnBoxCoder`` and the TFLite
``TFLite_Detection_PostProcess`` op define it, with scales ``(y, x, h, w) = (10, 10, 5, 5)``::

    ty = (yc - ya) / ha * 10      tx = (xc - xa) / wa * 10
    th = log(h / ha) * 5          tw = log(w / wa) * 5

Boxes are ``(ymin, xmin, ymax, xmax)``, anchors ``(cy, cx, h, w)``, both normalised. The same
functions work on numpy arrays and TensorFlow tensors (the ops are picked from the input type).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCALES: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
EPS = 1e-8


def _ops(x: Any):
    if isinstance(x, np.ndarray):
        return np.log, np.exp, np.stack, np.maximum
    import tensorflow as tf

    return tf.math.log, tf.math.exp, tf.stack, tf.maximum


def encode(boxes: Any, anchors: Any, scales: tuple[float, ...] = SCALES) -> Any:
    """``[..., 4]`` corner boxes -> ``[..., 4]`` encodings ``(ty, tx, th, tw)``."""
    log, _, stack, maximum = _ops(boxes)
    ymin, xmin, ymax, xmax = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    ya, xa, ha, wa = anchors[..., 0], anchors[..., 1], anchors[..., 2], anchors[..., 3]
    h = maximum(ymax - ymin, EPS)
    w = maximum(xmax - xmin, EPS)
    yc = ymin + h / 2
    xc = xmin + w / 2
    ty = (yc - ya) / ha * scales[0]
    tx = (xc - xa) / wa * scales[1]
    th = log(h / ha) * scales[2]
    tw = log(w / wa) * scales[3]
    return stack([ty, tx, th, tw], axis=-1)


def decode(encodings: Any, anchors: Any, scales: tuple[float, ...] = SCALES) -> Any:
    """``[..., 4]`` encodings -> ``[..., 4]`` corner boxes ``(ymin, xmin, ymax, xmax)``."""
    _, exp, stack, _ = _ops(encodings)
    ty, tx, th, tw = encodings[..., 0], encodings[..., 1], encodings[..., 2], encodings[..., 3]
    ya, xa, ha, wa = anchors[..., 0], anchors[..., 1], anchors[..., 2], anchors[..., 3]
    yc = ty / scales[0] * ha + ya
    xc = tx / scales[1] * wa + xa
    half_h = exp(th / scales[2]) * ha / 2
    half_w = exp(tw / scales[3]) * wa / 2
    return stack([yc - half_h, xc - half_w, yc + half_h, xc + half_w], axis=-1)
