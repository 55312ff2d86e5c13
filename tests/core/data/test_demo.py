"""The demo dataset: deterministic, valid images whose boxes match the drawn shapes."""

from __future__ import annotations

import numpy as np

from core.data.annotations import Task
from core.data.demo import SHAPES, classification_images, create_demo_project, detection_images
from core.data.imaging import open_upright, probe_image
from core.data.store import sha256_bytes


def test_same_seed_same_images_other_seed_other_images():
    a = [sha256_bytes(i.data) for i in detection_images(6, seed=1)]
    b = [sha256_bytes(i.data) for i in detection_images(6, seed=1)]
    c = [sha256_bytes(i.data) for i in detection_images(6, seed=2)]
    assert a == b and a != c
    assert len(set(a)) == 6


def test_detection_boxes_are_inside_and_cover_the_shape():
    for item in detection_images(12, seed=3):
        info = probe_image(item.data)
        assert (info.width, info.height) == (item.width, item.height) == (320, 240)
        assert 1 <= len(item.annotations) <= 3
        px = np.asarray(open_upright(item.data), dtype=np.int16)
        for a in item.annotations:
            assert a.label in SHAPES and a.box is not None and a.box.is_inside(item.width, item.height)
            x0, y0, x1, y1 = (round(v) for v in a.box.as_tuple())
            assert x1 - x0 >= 40 and y1 - y0 >= 40
            # the box's centre pixel differs from its corner (the shape is drawn there, not background)
            centre = px[(y0 + y1) // 2, (x0 + x1) // 2]
            assert np.abs(centre - px[y0 + 1, x0 + 1]).sum() > 0 or a.label == "square"


def test_classification_one_label_per_image_balanced():
    items = classification_images(per_class=4, seed=0)
    assert len(items) == 12
    labels = [i.annotations[0].label for i in items]
    assert all(len(i.annotations) == 1 and i.annotations[0].box is None for i in items)
    assert {s: labels.count(s) for s in SHAPES} == {s: 4 for s in SHAPES}


def test_create_demo_project_fills_and_splits(store):
    p = create_demo_project(store, "detection", count=20)
    s = store.stats(p)
    assert s["images"] == s["labelled_images"] == 20 and s["boxes"] >= 20
    assert set(s["per_class"]) == set(SHAPES)
    assert s["per_split"]["train"] > s["per_split"]["val"] > 0
    # a second demo gets a free name, classification works too
    q = create_demo_project(store, Task.CLASSIFICATION, count=5)
    r = create_demo_project(store, "detection", count=3)
    assert q.task is Task.CLASSIFICATION and store.stats(q)["images"] == 15
    assert r.name == p.name + " 2"
