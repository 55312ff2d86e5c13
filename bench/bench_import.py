"""Import throughput (10,000 images / 100,000 boxes, VOC) and the time to open one gallery page."""

from __future__ import annotations

import io
import random
import shutil
import statistics
import time
from pathlib import Path

from PIL import Image, ImageDraw


def make_voc_dataset(root: Path, n_images: int, boxes_per_image: int, seed: int = 0) -> None:
    """A synthetic VOC dataset: small JPEGs with coloured rectangles and one XML each."""
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    classes = [f"class{i}" for i in range(10)]
    for i in range(n_images):
        w, h = rng.choice([(320, 240), (256, 256), (240, 320)])
        im = Image.new("RGB", (w, h), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        d = ImageDraw.Draw(im)
        objs = []
        for _ in range(boxes_per_image):
            x0, y0 = rng.randrange(w - 20), rng.randrange(h - 20)
            x1, y1 = rng.randrange(x0 + 5, w), rng.randrange(y0 + 5, h)
            d.rectangle((x0, y0, x1, y1), outline=(rng.randrange(256), 0, 0))
            objs.append((rng.choice(classes), x0, y0, x1, y1))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=70)
        name = f"img{i:05d}.jpg"
        (root / "images" / name).write_bytes(buf.getvalue())
        xml = [f"<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height>"
               "<depth>3</depth></size>"]
        for c, x0, y0, x1, y1 in objs:
            xml.append(f"<object><name>{c}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                       f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
        xml.append("</annotation>")
        (root / "annotations" / f"img{i:05d}.xml").write_text("".join(xml))


def run(out_dir: Path, quick: bool = False) -> dict:
    from core.data.importer import import_paths
    from core.data.store import Store

    n, k = (500, 10) if quick else (10_000, 10)
    work = out_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    ds = work / "dataset"
    t0 = time.perf_counter()
    make_voc_dataset(ds, n, k)
    gen_s = time.perf_counter() - t0

    store = Store(work / "data")
    project = store.create_project("bench", "detection")
    t0 = time.perf_counter()
    report = import_paths(store, project, [ds], fmt="voc")
    import_s = time.perf_counter() - t0
    assert report.ok and report.images_added == n and report.boxes_added == n * k, report.to_dict()

    # one gallery page: the query + 24 thumbnails with boxes drawn (what the Dataset page does)
    from core.data.render import label_tuples, render

    page_times = []
    for page in (0, n // 48, n // 24 - 1):
        t0 = time.perf_counter()
        recs = store.list_images(project, offset=page * 24, limit=24)
        for r in recs:
            render(store.read_image_bytes(r.id), label_tuples(r.annotations), (r.width, r.height), 256)
        page_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    store.count_images(project, label="class3")
    filtered_count_s = time.perf_counter() - t0

    res = {
        "images": n, "boxes": n * k, "generate_s": round(gen_s, 1), "import_s": round(import_s, 2),
        "import_images_per_s": round(n / import_s, 1), "import_goal_s": 60,
        "gallery_page_s_median": round(statistics.median(page_times), 3),
        "gallery_page_s_max": round(max(page_times), 3), "gallery_goal_s": 1.0,
        "filtered_count_s": round(filtered_count_s, 3),
    }
    shutil.rmtree(work, ignore_errors=True)
    return res
