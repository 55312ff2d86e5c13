"""The int8 export's own checks: attribute string, and refusing models that are not detectors."""

from __future__ import annotations

import numpy as np
import pytest

from core.training.detection.export import ExportError, postprocess_signature, verify_detector
from core.training.detection.postprocess import PostprocessConfig


def test_postprocess_signature_carries_the_settings():
    s = postprocess_signature(3, PostprocessConfig(0.25, 0.45, 17))
    assert s.startswith('name: "TFLite_Detection_PostProcess"')
    for part in ('key: "max_detections" value { i: 17 }', 'key: "num_classes" value { i: 3 }',
                 'key: "nms_score_threshold" value { f: 0.250000 }',
                 'key: "nms_iou_threshold" value { f: 0.450000 }', 'key: "y_scale" value { f: 10.000000 }',
                 'key: "h_scale" value { f: 5.000000 }', 'key: "use_regular_nms" value { b: false }',
                 'key: "max_classes_per_detection" value { i: 1 }'):
        assert part in s


def test_verify_refuses_a_model_without_the_postprocess_op(tmp_path):
    import keras
    import tensorflow as tf

    inp = keras.Input((16, 16, 3))
    out = keras.layers.Conv2D(4, 3, activation="relu6")(keras.layers.Rescaling(1 / 127.5, offset=-1)(inp))
    model = keras.Model(inp, out)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.full((1, 16, 16, 3), v, np.float32)] for v in (0, 128, 255))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    path = tmp_path / "m.tflite"
    path.write_bytes(conv.convert())
    with pytest.raises(ExportError, match="exactly one TFLite_Detection_PostProcess"):
        verify_detector(path)
