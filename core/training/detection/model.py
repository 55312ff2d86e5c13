"""The detector: SSDLite heads on a Keras 3 MobileNetV2 backbone.

- Input: ``[S, S, 3]`` raw RGB 0..255 (float in Keras, uint8 after int8 export); a ``Rescaling``
  layer maps it to [-1, 1] inside the graph.
- Features: MobileNetV2 at stride 16 (``block_13_expand_relu``) and stride 32 (``out_relu``), then
  SSDLite extra layers (1x1 conv -> 3x3 depthwise stride 2 -> 1x1 conv, BN + ReLU6) down to 1x1.
- Heads per level (SSDLite): 3x3 depthwise + BN + ReLU6, then a 1x1 conv to ``A * 4`` box
  encodings and another to ``A * C`` class logits; reshaped to ``[B, H*W*A, k]`` and concatenated.
- Everything is CONV_2D / DEPTHWISE_CONV_2D / ADD / MUL / RESHAPE / CONCATENATION / LOGISTIC after
  int8 conversion: Edge TPU ops with at most 3-D tensors.

``build_detector`` returns the training model (outputs ``boxes``, ``class_logits``) and the
inference model sharing its layers (outputs ``boxes``, ``scores`` = sigmoid of the logits), which
is the one saved as ``model_float.keras`` and exported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.training.detection.anchors import feature_sizes

PRIOR_PROBABILITY = 0.01  # focal-loss bias init: every anchor starts as "1% object"
SUPPORTED_SIZES = (256, 300, 320)


@dataclass
class Detector:
    train_model: Any  # keras.Model: image -> [boxes [B,N,4], class_logits [B,N,C]]
    model: Any  # keras.Model: image -> [boxes [B,N,4], scores [B,N,C]]
    feature_sizes: tuple[int, ...]
    anchors_per_location: int
    weights_used: str


def _depth(d: float, alpha: float, min_depth: int = 16) -> int:
    return max(min_depth, int(round(d * alpha / 8)) * 8)


def check_image_size(size: int) -> None:
    """Accept 256/300/320 (the UI's choices) and any multiple of 32 from 96 (quick runs, tests)."""
    if size in SUPPORTED_SIZES or (size >= 96 and size % 32 == 0 and size <= 640):
        return
    raise ValueError(f"image_size {size} is not supported: use 256, 300 or 320")


def _backbone(image_size: int, alpha: float, weights: str | None):
    """MobileNetV2 feature extractor -> (keras.Model with two outputs, weights actually used)."""
    import keras

    shape = (image_size, image_size, 3)
    used = "none"
    kw = dict(input_shape=shape, include_top=False, alpha=alpha)
    if weights in (None, "", "none"):
        net = keras.applications.MobileNetV2(weights=None, **kw)
    else:  # "imagenet" (Keras downloads it) or a local weights file (core.training.weights resolves it)
        net = keras.applications.MobileNetV2(weights=weights, **kw)
        used = str(weights)
    feats = keras.Model(
        net.input,
        [net.get_layer("block_13_expand_relu").output, net.get_layer("out_relu").output],
        name="mobilenetv2_features",
    )
    return feats, used


def build_detector(num_classes: int, image_size: int = 320, alpha: float = 1.0,
                   weights: str | None = None, anchors_per_location: int = 4,
                   num_levels: int = 6, bn_momentum: float | None = None) -> Detector:
    """Build the SSDLite detector (see the module docstring)."""
    import keras
    from keras import layers

    check_image_size(image_size)
    if num_classes < 1:
        raise ValueError("a detector needs at least one class")
    sizes = feature_sizes(image_size, num_levels)
    backbone, used = _backbone(image_size, alpha, weights)

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
    c4, c5 = backbone(x)
    features = [c4, c5]

    def bn_relu6(t, name):
        t = layers.BatchNormalization(name=f"{name}_bn")(t)
        return layers.ReLU(6.0, name=f"{name}_relu6")(t)

    extra_depths = [512, 256, 256, 128, 128, 128]
    t = c5
    for i in range(len(sizes) - 2):
        d = _depth(extra_depths[i], alpha)
        name = f"extra{i + 1}"
        t = layers.Conv2D(d // 2, 1, use_bias=False, name=f"{name}_pw1")(t)
        t = bn_relu6(t, f"{name}_pw1")
        t = layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name=f"{name}_dw")(t)
        t = bn_relu6(t, f"{name}_dw")
        t = layers.Conv2D(d, 1, use_bias=False, name=f"{name}_pw2")(t)
        t = bn_relu6(t, f"{name}_pw2")
        features.append(t)

    a = anchors_per_location
    prior_bias = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
    box_parts, cls_parts = [], []
    for level, f in enumerate(features):
        for kind, k in (("box", 4), ("cls", num_classes)):
            name = f"head{level}_{kind}"
            h = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(f)
            h = bn_relu6(h, f"{name}_dw")
            init = keras.initializers.Constant(prior_bias) if kind == "cls" else "zeros"
            h = layers.Conv2D(a * k, 1, name=f"{name}_pw", bias_initializer=init,
                              kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(h)
            h = layers.Reshape((-1, k), name=f"{name}_reshape")(h)
            (box_parts if kind == "box" else cls_parts).append(h)
    boxes = layers.Concatenate(axis=1, name="boxes")(box_parts)
    logits = layers.Concatenate(axis=1, name="class_logits")(cls_parts)
    scores = layers.Activation("sigmoid", name="scores")(logits)

    train_model = keras.Model(inputs, [boxes, logits], name="ssdlite_mobilenetv2_train")
    model = keras.Model(inputs, [boxes, scores], name="ssdlite_mobilenetv2")
    if bn_momentum is not None:
        set_bn_momentum(model, bn_momentum)
    got = tuple(int(t.shape[1]) for t in features)
    if got != sizes:  # the anchor grid must match the real feature maps
        raise RuntimeError(f"feature maps {got} do not match the anchor grid {sizes}")
    return Detector(train_model, model, sizes, a, used)


def set_bn_momentum(model: Any, momentum: float) -> None:
    """Set every BatchNormalization's momentum (MobileNetV2's 0.999 is far too slow from scratch)."""
    import keras

    def walk(m):
        for layer in getattr(m, "layers", []):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = momentum
            walk(layer)

    walk(model)
