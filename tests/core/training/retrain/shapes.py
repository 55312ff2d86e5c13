"""Synthetic detection photos (made with Pillow): one or two coloured squares on a noisy background."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from core.data.annotations import Annotation
from core.data.boxes import Box
from core.data.store import NewImage, Store

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 230), "yellow": (235, 220, 30)}


def shape_photo(classes: list[str], seed: int, size: int = 128) -> tuple[bytes, list[Annotation]]:
    """A JPEG with one square per class in ``classes`` (not overlapping), and its boxes."""
    rng = np.random.default_rng(seed)
    img = rng.integers(90, 150, size=(size, size, 3), dtype=np.uint8)
    anns, taken = [], []
    for name in classes:
        for _ in range(50):
            side = int(rng.integers(size // 4, size // 2))
            x0, y0 = (int(v) for v in rng.integers(0, size - side, 2))
            box = Box(x0, y0, x0 + side, y0 + side)
            if all(box.iou(t) == 0 for t in taken):
                break
        taken.append(box)
        img[y0:y0 + side, x0:x0 + side] = COLOURS[name]
        anns.append(Annotation(name, box))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=92)
    return buf.getvalue(), anns


def add_shapes(store: Store, project, classes: list[str], per_class: int, seed0: int, split: str = "train"):
    """``per_class`` photos with one square of each class in ``classes``; returns their image ids."""
    items = []
    for i, name in enumerate(classes):
        for j in range(per_class):
            data, anns = shape_photo([name], seed=seed0 + 1000 * i + j)
            items.append(NewImage(data=data, filename=f"{name}-{seed0}-{j}.jpg", width=128, height=128,
                                  annotations=tuple(anns), split=split))
    res = store.add_images(project, items)
    return res
