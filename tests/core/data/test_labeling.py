"""Pure labelling logic: coordinate mapping, canvas conversion, navigation, predictions."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.data import labeling as lb
from core.data.annotations import Annotation
from core.data.boxes import Box
from core.data.imaging import probe_image

sizes = st.integers(min_value=1, max_value=8000)
display = st.integers(min_value=50, max_value=2000)


@st.composite
def image_and_box(draw):
    w, h = draw(sizes), draw(sizes)
    x0 = draw(st.floats(0, w, allow_nan=False))
    y0 = draw(st.floats(0, h, allow_nan=False))
    x1 = draw(st.floats(x0, w, allow_nan=False))
    y1 = draw(st.floats(y0, h, allow_nan=False))
    return w, h, Box(x0, y0, x1, y1)


@settings(max_examples=400, deadline=None)
@given(image_and_box(), display, st.one_of(st.none(), display))
def test_mapping_round_trip_within_one_pixel(ib, max_w, max_h):
    w, h, box = ib
    m = lb.DisplayMapping.fit(w, h, max_w, max_h)
    assert m.canvas_w <= max(max_w, 1) and (max_h is None or m.canvas_h <= max(max_h, 1) or
                                            m.canvas_h == 1)
    back = m.to_image(m.to_canvas(box))
    assert all(abs(a - b) <= 1.0 for a, b in zip(back.as_tuple(), box.as_tuple()))
    # the save path: stored box -> initial_drawing -> canvas JSON (Fabric rounds to 2
    # decimals) -> annotations. An untouched box comes back exactly, at any scale.
    ann = Annotation("a", box)
    objs = lb.annotations_to_drawing([ann], m)["objects"]
    rects = [{**o, **{k: round(o[k], 2) for k in ("left", "top", "width", "height")}} for o in objs]
    change = lb.canvas_to_annotations(rects, m, default_label="a", baseline=[ann])
    assert change.annotations == [ann] and change.dropped == 0
    # a new box read back from rounded canvas JSON is off by at most the rounding
    stored = m.to_image(rects[0]).rounded(2)
    bound = 0.011 * m.image_px_per_canvas_px() + 0.011
    assert all(abs(a - b) <= max(bound, 1e-6) for a, b in zip(stored.as_tuple(), box.as_tuple()))


@settings(max_examples=300, deadline=None)
@given(sizes, sizes, display, st.data())
def test_canvas_drag_maps_into_the_image(w, h, max_w, data):
    """A whole-pixel drag on the canvas maps to image pixels and back to the same canvas rect."""
    m = lb.DisplayMapping.fit(w, h, max_w, max_w)
    x0 = data.draw(st.integers(0, m.canvas_w))
    y0 = data.draw(st.integers(0, m.canvas_h))
    x1 = data.draw(st.integers(x0, m.canvas_w))
    y1 = data.draw(st.integers(y0, m.canvas_h))
    rect = {"left": x0, "top": y0, "width": x1 - x0, "height": y1 - y0}
    box = m.to_image(rect)
    assert box.is_inside(w, h)
    again = m.to_canvas(box)
    for k in rect:
        assert abs(again[k] - rect[k]) <= 1e-6 * max(m.canvas_w, m.canvas_h, 1)


def test_fit_keeps_aspect_and_limits_upscale():
    m = lb.DisplayMapping.fit(4000, 3000, 800, 600)
    assert (m.canvas_w, m.canvas_h) == (800, 600) and m.is_downscaled
    m = lb.DisplayMapping.fit(3000, 4000, 800, 600)
    assert (m.canvas_w, m.canvas_h) == (450, 600)
    m = lb.DisplayMapping.fit(64, 32, 800, 600)  # small images are enlarged at most 4x
    assert (m.canvas_w, m.canvas_h) == (256, 128)
    with pytest.raises(ValueError):
        lb.DisplayMapping.fit(0, 10, 100)


def test_drawing_round_trip_keeps_boxes_and_flags():
    m = lb.DisplayMapping.fit(1200, 900, 600)
    anns = [Annotation("raccoon", Box(100, 50, 700, 800)),
            Annotation("dog", Box(10.5, 20.25, 30, 40), reviewed=False, score=0.7)]
    drawing = lb.annotations_to_drawing(anns, m, colors={"raccoon": "#ff0000"})
    objs = drawing["objects"]
    assert [o["label"] for o in objs] == ["raccoon", "dog"]
    assert objs[0]["stroke"] == "#ff0000" and "strokeDashArray" in objs[1]
    assert objs[0]["left"] == pytest.approx(50) and objs[0]["width"] == pytest.approx(300)
    change = lb.canvas_to_annotations(objs, m, default_label="raccoon", baseline=anns)
    assert change.dropped == 0
    assert change.annotations == anns  # untouched: exact stored values and flags kept


def test_moved_box_becomes_reviewed_and_new_box_gets_default_label():
    m = lb.DisplayMapping.fit(1000, 1000, 500)
    pred = Annotation("dog", Box(100, 100, 300, 300), reviewed=False, score=0.9)
    rects = [{"label": "dog", "left": 60, "top": 50, "width": 100, "height": 100},
             {"label": "", "left": 200, "top": 200, "width": 50, "height": 60}]
    change = lb.canvas_to_annotations(rects, m, default_label="cat", baseline=[pred])
    assert change.annotations[0] == Annotation("dog", Box(120, 100, 320, 300), reviewed=True)
    assert change.annotations[1] == Annotation("cat", Box(400, 400, 500, 520), reviewed=True)


def test_click_boxes_and_outside_boxes_are_dropped():
    m = lb.DisplayMapping.fit(100, 100, 100)
    rects = [{"label": "a", "left": 5, "top": 5, "width": 4, "height": 4},  # click (2*stroke)
             {"label": "a", "left": 5, "top": 5, "width": 40, "height": 4},  # sideways drag
             {"label": "a", "left": 150, "top": 150, "width": 20, "height": 20},  # outside
             {"label": "a", "left": 90, "top": 90, "width": 20, "height": 20}]  # clipped
    change = lb.canvas_to_annotations(rects, m, default_label="a", stroke_width=2)
    assert change.dropped == 3
    assert [a.box for a in change.annotations] == [Box(90, 90, 100, 100)]


def test_classification_labels_survive_canvas_conversion():
    m = lb.DisplayMapping.fit(100, 100, 100)
    base = [Annotation("cat")]
    change = lb.canvas_to_annotations([], m, default_label="cat", baseline=base)
    assert change.annotations == base


def test_same_annotations_is_order_insensitive():
    a = [Annotation("x", Box(0, 0, 1, 1)), Annotation("y", Box(1, 1, 2, 2))]
    assert lb.same_annotations(a, list(reversed(a)))
    assert not lb.same_annotations(a, a[:1])
    assert not lb.same_annotations(a, [a[0], Annotation("y", Box(1, 1, 2, 3))])
    assert not lb.same_annotations(a, [a[0], Annotation("y", Box(1, 1, 2, 2), reviewed=False)])


def test_edit_helpers():
    anns = [Annotation("img"), Annotation("a", Box(0, 0, 5, 5), reviewed=False),
            Annotation("b", Box(1, 1, 6, 6))]
    assert lb.relabel(anns, 0, "c")[1] == Annotation("c", Box(0, 0, 5, 5), reviewed=True)
    assert lb.remove_box(anns, 1) == anns[:2]
    assert all(a.reviewed for a in lb.accept_all(anns))


def test_predictions_to_annotations_marks_unreviewed():
    class Det:
        def __init__(self, label, score, box):
            self.label, self.score, self.box = label, score, box

    class Pred:
        detections = [Det("raccoon", 0.9, Box(10, 10, 50, 60)), Det("raccoon", 0.1, Box(0, 0, 5, 5)),
                      Det("dog", 0.8, Box(90, 90, 130, 130)), Det("dog", 0.7, Box(150, 150, 160, 160))]
        classes = []

    anns = lb.predictions_to_annotations(Pred(), min_score=0.5, image_size=(100, 100))
    assert anns == [Annotation("raccoon", Box(10, 10, 50, 60), reviewed=False, score=0.9),
                    Annotation("dog", Box(90, 90, 100, 100), reviewed=False, score=0.8)]
    dicts = lb.predictions_to_annotations([{"label": "a", "score": 0.5, "box": (1, 2, 3, 4)}])
    assert dicts == [Annotation("a", Box(1, 2, 3, 4), reviewed=False, score=0.5)]
    cls = lb.predictions_to_annotations([{"label": "a", "score": 0.2}, {"label": "b", "score": 0.7}])
    assert cls == [Annotation("b", None, reviewed=False, score=0.7)]
    assert lb.predictions_to_annotations([]) == []


def test_navigation_helpers():
    ids = ["a", "b", "c", "d"]
    assert lb.next_unlabelled(ids, {"a", "c"}, 0) == 2
    assert lb.next_unlabelled(ids, {"a"}, 2) == 0  # wraps
    assert lb.next_unlabelled(ids, {"b"}, 1) == 1  # only the current one left
    assert lb.next_unlabelled(ids, set(), 1) is None
    assert lb.clamp_index(7, 4) == 3 and lb.clamp_index(-2, 4) == 0 and lb.clamp_index(3, 0) == 0
    assert lb.progress_text(1, 4) == "1 / 4 labelled (25%)"
    assert lb.page_count(0, 24) == 1 and lb.page_count(49, 24) == 3


def _jpeg(w: int, h: int, orientation: int | None = None) -> bytes:
    im = Image.new("RGB", (w, h), (200, 30, 30))
    im.paste((20, 20, 220), (0, 0, w // 2, h // 4))  # blue band at the top-left
    buf = io.BytesIO()
    kw = {}
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    im.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def test_display_image_is_upright_and_sized():
    data = _jpeg(400, 200, orientation=6)  # stored sideways, shown 200 x 400
    info = probe_image(data)
    assert (info.width, info.height) == (200, 400)
    m = lb.DisplayMapping.fit(info.width, info.height, 300, 300)
    out = Image.open(io.BytesIO(lb.display_image(data, m.canvas_w, m.canvas_h)))
    assert out.size == (m.canvas_w, m.canvas_h) == (150, 300)
    thumb = Image.open(io.BytesIO(lb.thumbnail(data, 100)))
    assert thumb.size == (50, 100)
