"""Property: any valid boxes survive export → parse in every detection format within 1 px."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data.annotations import Annotation, ImageRecord
from core.data.boxes import Box
from core.data.formats.base import ExportItem
from core.data.formats.registry import FORMATS
from core.data.sources import DirSource
from tests.core.data.helpers import jpeg_bytes

IMG = jpeg_bytes(8, 8)


@st.composite
def records(draw):
    w, h = draw(st.integers(2, 5000)), draw(st.integers(2, 5000))
    boxes = []
    for _ in range(draw(st.integers(0, 4))):
        x0 = draw(st.floats(0, w - 1, allow_nan=False))
        y0 = draw(st.floats(0, h - 1, allow_nan=False))
        x1 = draw(st.floats(x0 + 1, w, allow_nan=False))
        y1 = draw(st.floats(y0 + 1, h, allow_nan=False))
        label = draw(st.sampled_from(["cat", "dog", "a b", "x,y", "é"]))
        boxes.append(Annotation(label, Box(x0, y0, x1, y1)))
    split = draw(st.sampled_from(["train", "val", "test"]))
    return ImageRecord("ab" * 32, "p.jpg", w, h, split, tuple(boxes))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=records())
def test_boxes_survive_every_detection_format(rec):
    item = ExportItem(rec, lambda: IMG)
    for name, mod in FORMATS.items():
        if "detection" not in mod.TASKS:
            continue
        with tempfile.TemporaryDirectory() as d:
            mod.export([item], ["cat", "dog"], Path(d))
            r = mod.parse(DirSource(d))
        assert r.issues == [], (name, r.issues)
        [img] = r.images
        assert img.split == rec.split, name
        got = []
        for b in img.boxes:
            sx, sy = (rec.width, rec.height) if b.normalized else (1, 1)
            got.append((b.label, b.x_min * sx, b.y_min * sy, b.x_max * sx, b.y_max * sy))
        want = [(a.label, *a.box.as_tuple()) for a in rec.boxes]
        assert len(got) == len(want), name
        for w in want:  # every box has a partner within 1 px (greedy: boxes may be identical)
            g = next((g for g in got if g[0] == w[0] and all(abs(x - y) <= 1.0 for x, y in zip(g[1:], w[1:]))),
                     None)
            assert g is not None, (name, w, got)
            got.remove(g)
            assert 0 <= g[1] and g[3] <= rec.width and 0 <= g[2] and g[4] <= rec.height, (name, g)
