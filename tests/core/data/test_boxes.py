import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.data.boxes import Box, BoxError


def test_rejects_nan_inf_and_negative_size():
    for bad in [(math.nan, 0, 1, 1), (0, 0, math.inf, 1), (5, 0, 4, 1), (0, 5, 1, 4)]:
        with pytest.raises(BoxError):
            Box(*bad)
    with pytest.raises(BoxError):
        Box("1", 0, 2, 2)  # type: ignore[arg-type]


def test_zero_area_is_representable_and_frozen():
    b = Box(3, 3, 3, 10)
    assert b.area == 0
    with pytest.raises(AttributeError):
        b.x_min = 1  # type: ignore[misc]


def test_clip_and_iou():
    b = Box(-10, -5, 50, 300)
    assert b.clip(40, 200) == Box(0, 0, 40, 200)
    assert Box(0, 0, 10, 10).iou(Box(0, 0, 10, 10)) == 1.0
    assert Box(0, 0, 10, 10).iou(Box(20, 20, 30, 30)) == 0.0
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 15, 10)) == pytest.approx(50 / 150)


coords = st.floats(0, 4000, allow_nan=False)


@given(coords, coords, st.floats(0.1, 2000), st.floats(0.1, 2000), st.integers(1, 5000), st.integers(1, 5000))
def test_conversions_round_trip(x, y, w, h, width, height):
    b = Box(x, y, x + w, y + h)
    assert Box.from_xywh(*b.to_xywh()).iou(b) == pytest.approx(1.0)
    for a, c in zip(Box.from_yolo(*b.to_yolo(width, height), width, height).as_tuple(), b.as_tuple()):
        assert a == pytest.approx(c, abs=1e-6)
    for a, c in zip(Box.from_tflite(*b.to_tflite(width, height), width, height).as_tuple(), b.as_tuple()):
        assert a == pytest.approx(c, abs=1e-6)
    for a, c in zip(Box.from_normalized(*b.to_normalized(width, height), width, height).as_tuple(),
                    b.as_tuple()):
        assert a == pytest.approx(c, abs=1e-6)
