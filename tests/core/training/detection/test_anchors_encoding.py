"""Anchors and box encoding: grid layout, scales, and the encode/decode round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.training.detection import encoding
from core.training.detection.anchors import AnchorSpec, feature_sizes, generate_anchors, to_corners


def test_feature_sizes_follow_mobilenet_strides():
    assert feature_sizes(320) == (20, 10, 5, 3, 2, 1)
    assert feature_sizes(300) == (19, 10, 5, 3, 2, 1)
    assert feature_sizes(256) == (16, 8, 4, 2, 1)
    assert feature_sizes(160) == (10, 5, 3, 2, 1)


def test_anchor_count_order_and_shapes():
    spec = AnchorSpec(feature_sizes(320), (1.0, 2.0, 0.5))
    a = generate_anchors(spec)
    assert spec.anchors_per_location == 4
    assert a.shape == (spec.num_anchors, 4) == ((400 + 100 + 25 + 9 + 4 + 1) * 4, 4)
    assert a.dtype == np.float32
    # order: level, row, column, anchor (the heads' reshape order)
    A, W = 4, 20
    i = (3 * W + 7) * A + 1  # level 0, row 3, column 7, second aspect ratio (2.0)
    cy, cx, h, w = a[i]
    assert cy == pytest.approx(3.5 / 20) and cx == pytest.approx(7.5 / 20)
    s0 = spec.level_scales()[0]
    assert h == pytest.approx(s0 / math.sqrt(2)) and w == pytest.approx(s0 * math.sqrt(2))
    # the extra anchor of a cell is square, between this level's scale and the next
    s1 = spec.level_scales()[1]
    assert a[3, 2] == pytest.approx(math.sqrt(s0 * s1)) and a[3, 2] == pytest.approx(a[3, 3])
    # last level: one cell centred in the image with the largest anchors
    assert np.allclose(a[-4:, :2], 0.5)
    assert spec.level_scales()[-1] == pytest.approx(spec.max_scale)
    assert np.all(np.diff(spec.level_scales()) > 0)


def test_anchor_spec_round_trips_through_dict():
    spec = AnchorSpec((12, 6, 3, 2, 1), (1.0, 3.0), 0.1, 0.9)
    again = AnchorSpec.from_dict(spec.to_dict())
    assert again == spec
    assert np.array_equal(generate_anchors(again), generate_anchors(spec))


def test_corners():
    c = to_corners(np.array([[0.5, 0.5, 0.2, 0.4]], np.float32))
    assert np.allclose(c, [[0.4, 0.3, 0.6, 0.7]])


def test_encoding_uses_od_api_scales():
    anchors = np.array([[0.5, 0.5, 0.2, 0.4]], np.float32)
    same = to_corners(anchors)
    assert np.allclose(encoding.encode(same, anchors), 0, atol=1e-6)
    # centre moved down by 0.1 * anchor height -> ty = 0.1 * 10 = 1; height doubled -> th = 5 ln 2
    box = np.array([[0.52 - 0.2, 0.3, 0.52 + 0.2, 0.7]], np.float32)
    t = encoding.encode(box, anchors)[0]
    assert t[0] == pytest.approx(1.0, abs=1e-5)
    assert t[1] == pytest.approx(0.0, abs=1e-5)
    assert t[2] == pytest.approx(5 * math.log(2), abs=1e-5)
    assert t[3] == pytest.approx(0.0, abs=1e-5)
    assert encoding.SCALES == (10.0, 10.0, 5.0, 5.0)


def test_encode_decode_round_trip_numpy_and_tf():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    anchors = generate_anchors(AnchorSpec(feature_sizes(160)))
    y0, x0 = rng.uniform(0, 0.7, (2, len(anchors)))
    h, w = rng.uniform(0.01, 0.3, (2, len(anchors)))
    boxes = np.stack([y0, x0, y0 + h, x0 + w], axis=1).astype(np.float32)
    enc = encoding.encode(boxes, anchors)
    assert np.allclose(encoding.decode(enc, anchors), boxes, atol=1e-5)
    enc_tf = encoding.encode(tf.constant(boxes), tf.constant(anchors))
    assert np.allclose(enc_tf.numpy(), enc, atol=1e-4)
    assert np.allclose(encoding.decode(enc_tf, tf.constant(anchors)).numpy(), boxes, atol=1e-5)
