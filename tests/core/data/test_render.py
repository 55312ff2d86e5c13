"""Drawing labels for display: sizes, boxes at the right place, robustness."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from core.data.annotations import Annotation
from core.data.boxes import Box
from core.data.render import color_for, label_tuples, placeholder, render


def _jpeg(w: int, h: int, colour=(255, 255, 255), exif_orientation: int | None = None) -> bytes:
    im = Image.new("RGB", (w, h), colour)
    out = io.BytesIO()
    kw = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif
    im.save(out, format="JPEG", quality=95, **kw)
    return out.getvalue()


def _open(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_thumbnail_size_and_box_position():
    data = _jpeg(800, 400)
    labels = label_tuples([Annotation("ball", Box(400, 200, 600, 300))])
    out = render(data, labels, (800, 400), max_side=200, show_text=False)
    px = _open(out)
    assert px.shape[:2] == (100, 200)
    colour = np.array(color_for("ball"))
    # the box's left edge is at x = 400 * 200/800 = 100, y from 50 to 75
    assert np.abs(px[62, 100] - colour).sum() < 120
    assert np.abs(px[62, 80] - 255).sum() < 30  # outside the box: white background


def test_full_size_and_exif_rotation_use_upright_coordinates():
    # stored 100x50 with orientation 6 (rotate 90°): upright it is 50x100
    data = _jpeg(100, 50, exif_orientation=6)
    out = render(data, label_tuples([Annotation("a", Box(0, 80, 50, 100))]), (50, 100), max_side=None,
                 show_text=False)
    assert _open(out).shape[:2] == (100, 50)


def test_classification_label_and_unreviewed_and_bad_bytes():
    data = _jpeg(120, 90)
    out = render(data, (("cat", None, True), ("dog", (1.0, 1.0, 50.0, 50.0), False)), (120, 90))
    assert _open(out).shape[:2] == (90, 120)
    assert render(b"not an image", (), (10, 10))[:2] == b"\xff\xd8"  # a placeholder JPEG
    assert placeholder(64)[:2] == b"\xff\xd8"


def test_colours_are_stable():
    assert color_for("raccoon") == color_for("raccoon")
    assert len({color_for(n) for n in ("circle", "square", "triangle")}) >= 2
