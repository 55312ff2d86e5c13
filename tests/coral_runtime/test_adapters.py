"""Adapters: letterbox/stretch round trips in original pixels, quantised inputs and scores."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.data.boxes import Box
from coral_runtime import adapters as A


def test_letterbox_places_image_top_left_and_pads_with_zero():
    img = Image.new("RGB", (200, 100), (255, 255, 255))
    arr, tr = A.resize_image(img, (32, 32), "letterbox")
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    assert arr[:16].min() == 255 and arr[16:].max() == 0  # image on top, zero padding below
    assert tr.scale_x == tr.scale_y == pytest.approx(0.16)


@settings(max_examples=60, deadline=None)
@given(w=st.integers(10, 2000), h=st.integers(10, 2000), mode=st.sampled_from(A.RESIZE_MODES),
       fx=st.tuples(st.floats(0, 1), st.floats(0, 1)), fy=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_box_round_trip_in_original_pixels(w, h, mode, fx, fy):
    tr = A.Transform(w, h, 64, 64, mode, *((64 / w, 64 / h) if mode == "stretch"
                                          else (min(64 / w, 64 / h),) * 2))
    box = Box(min(fx) * w, min(fy) * h, max(fx) * w, max(fy) * h)
    back = tr.to_original(*tr.to_model(box))
    for a, b in zip(back.as_tuple(), box.as_tuple()):
        assert a == pytest.approx(b, abs=1e-6 * max(w, h))


def test_letterbox_detection_maps_to_original_pixels():
    # 400 x 200 image in a 100 x 100 input: scale 0.25, image occupies the top 50 rows
    img = Image.new("RGB", (400, 200))
    _, tr = A.resize_image(img, (100, 100), "letterbox")
    # an object at x 100..300, y 50..150 of the original is at model 25..75, 12.5..37.5
    outputs = {"b": np.array([[[0.125, 0.25, 0.375, 0.75]]], np.float32),
               "c": np.array([[1.0]], np.float32), "s": np.array([[0.9]], np.float32),
               "n": np.array([1.0], np.float32)}
    roles = {"boxes": "b", "classes": "c", "scores": "s", "count": "n"}
    (d,) = A.detect(outputs, roles, tr, ["cat", "dog"], threshold=0.5)
    assert d.label == "dog" and d.score == pytest.approx(0.9)
    assert d.box.as_tuple() == pytest.approx((100, 50, 300, 150))
    assert A.detect(outputs, roles, tr, ["cat", "dog"], threshold=0.95) == []


def test_stretch_detection_and_clipping():
    _, tr = A.resize_image(Image.new("RGB", (640, 480)), (32, 32), "stretch")
    outputs = {"b": np.array([[[0.5, 0.5, 1.2, 1.0], [0, 0, 0.1, 0.1]]], np.float32),
               "c": np.array([[0, 0]], np.float32), "s": np.array([[0.8, 0.7]], np.float32),
               "n": np.array([1.0], np.float32)}  # count says only the first one is real
    dets = A.detect(outputs, {"boxes": "b", "classes": "c", "scores": "s", "count": "n"}, tr, ["x"])
    assert len(dets) == 1 and dets[0].box.as_tuple() == pytest.approx((320, 240, 640, 480))


def test_quantised_scores_are_dequantised_top_k():
    detail = {"quantization": (1 / 256, 0)}
    q = np.array([[10, 200, 46]], np.uint8)
    top = A.classify(q, detail, ["a", "b", "c"], top_k=2)
    assert [c.label for c in top] == ["b", "c"]
    assert top[0].score == pytest.approx(200 / 256) and top[1].score == pytest.approx(46 / 256)
    assert A.classify(q, detail, ["a", "b", "c"], top_k=3, threshold=0.5) == [A.Class(1, 200 / 256, "b")]
    # int8 output with a zero point
    s = A.classify(np.array([[-128, 127]], np.int8), {"quantization": (1 / 255, -128)}, ["a", "b"], top_k=1)
    assert s[0].label == "b" and s[0].score == pytest.approx(1.0)


def test_input_quantisation():
    px = np.array([[[0, 128, 255]]], np.uint8)
    assert (A.quantize_input(px, np.uint8, (1.0, 0)) == px).all()
    q = A.quantize_input(px, np.int8, (1.0, -128))
    assert q.dtype == np.int8 and q.tolist() == [[[-128, 0, 127]]]
    q = A.quantize_input(px, np.uint8, (2.0, 10))
    assert q.tolist() == [[[10, 74, 138]]]
    assert A.quantize_input(px, np.float32, (0.0, 0)).dtype == np.float32
