"""A small synthetic dataset made on the spot (no download): coloured shapes on varied backgrounds.

Detection: 1–3 circles / squares / triangles per image, each with its box.
Classification: one shape per image, the shape's name is the image's class.
Everything is drawn with PIL from a seeded ``random.Random``, so the same seed
gives the same images (and the same image ids) on every machine with the same Pillow.
"""

from __future__ import annotations

import io
import random
from typing import Callable

from PIL import Image, ImageDraw, ImageFilter

from core.data.annotations import Annotation, Project, Task
from core.data.boxes import Box
from core.data.store import NewImage, Store

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
DEMO_NAMES = {Task.DETECTION: "Demo shapes (detection)", Task.CLASSIFICATION: "Demo shapes (classification)"}


def _background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A vertical two-colour gradient with a few soft blobs: varied but calm."""
    w, h = size
    top = tuple(rng.randint(90, 235) for _ in range(3))
    bottom = tuple(rng.randint(60, 220) for _ in range(3))
    column = Image.new("RGB", (1, h))
    for y in range(h):
        t = y / max(h - 1, 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    im = column.resize((w, h))
    draw = ImageDraw.Draw(im)
    for _ in range(rng.randint(2, 5)):
        r = rng.randint(min(w, h) // 8, min(w, h) // 3)
        cx, cy = rng.randint(0, w), rng.randint(0, h)
        shade = tuple(min(255, max(0, c + rng.randint(-40, 40))) for c in top)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=shade)
    return im.filter(ImageFilter.GaussianBlur(radius=max(w, h) / 40))


def _shape_colour(rng: random.Random, background: tuple[int, ...]) -> tuple[int, int, int]:
    """A saturated colour that stands out from the background average."""
    while True:
        c = [rng.randint(0, 255) for _ in range(3)]
        c[rng.randrange(3)] = rng.choice((0, 255))
        if sum(abs(a - b) for a, b in zip(c, background)) > 180:
            return (c[0], c[1], c[2])


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int],
                colour: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    outline = tuple(max(0, c - 90) for c in colour)
    if shape == "circle":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=colour, outline=outline, width=2)
    elif shape == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour, outline=outline, width=2)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=colour, outline=outline)


def _place(rng: random.Random, size: tuple[int, int], placed: list[tuple[int, int, int, int]],
           min_side: int, max_side: int) -> tuple[int, int, int, int] | None:
    """A square spot not overlapping earlier shapes much (IoU < 0.1), or None after some tries."""
    w, h = size
    for _ in range(30):
        s = rng.randint(min_side, max_side)
        x0, y0 = rng.randint(0, w - s), rng.randint(0, h - s)
        cand = (x0, y0, x0 + s, y0 + s)
        if all(Box(*cand).iou(Box(*p)) < 0.1 for p in placed):
            return cand
    return None


def _jpeg(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=90)
    return out.getvalue()


def detection_images(count: int = 60, seed: int = 0, size: tuple[int, int] = (320, 240),
                     max_shapes: int = 3) -> list[NewImage]:
    """``count`` images with 1..``max_shapes`` shapes each and their boxes (pixel coordinates)."""
    rng = random.Random(f"detection:{seed}")
    out = []
    for i in range(count):
        im = _background(rng, size)
        bg = tuple(round(v) for v in im.resize((1, 1)).getpixel((0, 0)))
        draw = ImageDraw.Draw(im)
        placed: list[tuple[int, int, int, int]] = []
        anns = []
        for _ in range(rng.randint(1, max_shapes)):
            spot = _place(rng, size, placed, min(size) // 6, min(size) // 2)
            if spot is None:
                continue
            shape = SHAPES[rng.randrange(len(SHAPES))]
            _draw_shape(draw, shape, spot, _shape_colour(rng, bg))
            placed.append(spot)
            anns.append(Annotation(label=shape, box=Box(*spot)))
        out.append(NewImage(data=_jpeg(im), filename=f"shapes_{i:04d}.jpg", width=size[0],
                            height=size[1], annotations=tuple(anns)))
    return out


def classification_images(per_class: int = 20, seed: int = 0, size: tuple[int, int] = (128, 128)
                          ) -> list[NewImage]:
    """``per_class`` images of each shape, one shape per image, labelled with its name."""
    rng = random.Random(f"classification:{seed}")
    out = []
    for i in range(per_class):
        for shape in SHAPES:
            im = _background(rng, size)
            bg = tuple(round(v) for v in im.resize((1, 1)).getpixel((0, 0)))
            spot = _place(rng, size, [], min(size) // 3, round(min(size) * 0.8))
            assert spot is not None  # nothing placed yet: the first try always fits
            _draw_shape(ImageDraw.Draw(im), shape, spot, _shape_colour(rng, bg))
            out.append(NewImage(data=_jpeg(im), filename=f"{shape}_{i:03d}.jpg", width=size[0],
                                height=size[1], annotations=(Annotation(label=shape),)))
    return out


def _free_name(store: Store, base: str) -> str:
    names = {p.name for p in store.list_projects()}
    if base not in names:
        return base
    n = 2
    while f"{base} {n}" in names:
        n += 1
    return f"{base} {n}"


def create_demo_project(store: Store, task: Task | str = Task.DETECTION, seed: int = 0,
                        name: str | None = None, count: int | None = None,
                        progress: Callable[[float, str], None] | None = None) -> Project:
    """Create a new project filled with the synthetic shapes dataset, split 80/10/10.

    ``count`` is the number of images (detection) or images per class (classification);
    the name gets a number when a project of that name already exists.
    """
    task = Task(task)
    say = progress or (lambda f, m: None)
    project = store.create_project(_free_name(store, name or DEMO_NAMES[task]), task)
    try:
        say(0.1, "Drawing the demo images…")
        if task is Task.DETECTION:
            items = detection_images(count or 60, seed)
        else:
            items = classification_images(count or 20, seed)
        say(0.7, "Saving them in the project…")
        store.add_images(project, items)
        store.assign_splits(project, (0.8, 0.1, 0.1), seed=seed)
    except BaseException:
        store.delete_project(project)
        raise
    say(1.0, "Done")
    return project


__all__ = ["SHAPES", "classification_images", "create_demo_project", "detection_images"]
