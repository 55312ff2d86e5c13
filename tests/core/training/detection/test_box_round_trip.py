"""Real raccoon boxes, encoded against their matched anchors exactly as training does, come back
on themselves through the decode the deployed model uses: the numpy post-process (float
evaluation, fast mAP) and the ``TFLite_Detection_PostProcess`` op of the int8 export.

A model whose outputs are those encodings (constants) stands in for a perfectly trained net: any
disagreement between the training targets and the deployed decode (scales, (y, x) order, anchor
centres, non-square photos) shows up as a box off its object.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.core.training.detection.helpers import raccoon_files, voc_boxes


def _constant_detector(encodings: np.ndarray, logits: np.ndarray, size: int):
    """image -> (boxes [1, N, 4], scores [1, N, 1]) that ignores the image."""
    import keras
    from keras import layers

    n = len(encodings)
    inp = keras.Input((size, size, 3))
    pooled = layers.GlobalAveragePooling2D()(layers.Rescaling(1 / 255.0)(inp))
    box = layers.Dense(n * 4, kernel_initializer="zeros",
                       bias_initializer=keras.initializers.Constant(encodings.reshape(-1)))(pooled)
    cls = layers.Dense(n, kernel_initializer="zeros",
                       bias_initializer=keras.initializers.Constant(logits.reshape(-1)))(pooled)
    boxes = layers.Reshape((n, 4))(box)
    scores = layers.Activation("sigmoid")(layers.Reshape((n, 1))(cls))
    return keras.Model(inp, [boxes, scores])


@pytest.mark.parametrize("stem", ["raccoon-1", "raccoon-12", "raccoon-45"])
def test_real_boxes_survive_encode_and_the_deployed_decode(raccoon_dir, tmp_path, stem):
    import tensorflow as tf
    from PIL import Image

    from core.training.detection.anchors import AnchorSpec, feature_sizes, generate_anchors, to_corners
    from core.training.detection.export import Int8Detector, export_int8
    from core.training.detection.matching import assign_targets, iou_matrix
    from core.training.detection.postprocess import PostprocessConfig, postprocess

    path = next(p for p in raccoon_files(raccoon_dir) if p.stem == stem)
    w, h = Image.open(path).size
    gt = np.array([[y0 / h, x0 / w, y1 / h, x1 / w] for _, x0, y0, x1, y1 in
                   voc_boxes(raccoon_dir / "annotations" / f"{stem}.xml")], np.float32).clip(0, 1)
    size = 96
    anchors = generate_anchors(AnchorSpec(feature_sizes(size)))
    box_t, cls_t = assign_targets(tf.constant(gt), tf.zeros(len(gt), tf.int32), anchors,
                                  to_corners(anchors), 1)
    box_t = box_t.numpy()
    pos = box_t[:, 4] > 0
    assert pos.sum() >= len(gt)
    # the best anchor of each box gets the top score: NMS then keeps exactly the ground truth
    best = iou_matrix(to_corners(anchors), gt).argmax(axis=0)
    logits = np.full(len(anchors), -8.0, np.float32)
    logits[pos] = 0.0
    logits[best] = 6.0
    cfg = PostprocessConfig(score_threshold=0.9, iou_threshold=0.5, max_detections=10)

    d = postprocess(box_t[:, :4], 1 / (1 + np.exp(-logits[:, None])), anchors, cfg)
    assert len(d) == len(gt)
    assert iou_matrix(gt, d.boxes).max(axis=1).min() > 0.999  # float decode: exact

    model = _constant_detector(box_t[:, :4], logits, size)
    img = np.zeros((size, size, 3), np.uint8)
    export_int8(model, anchors, [img], tmp_path / "m.tflite", 1, cfg, work_dir=tmp_path)
    boxes, classes, scores = Int8Detector(tmp_path / "m.tflite")(img)
    assert len(boxes) == len(gt)
    # int8 quantises the encodings (one scale for all anchors): within a few % of the box
    assert iou_matrix(gt, boxes).max(axis=1).min() > 0.95, (gt, boxes)
