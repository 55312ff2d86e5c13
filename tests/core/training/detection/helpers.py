"""Helpers for the detection tests: raccoon images with their VOC boxes in a Store."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from core.data.annotations import Annotation, Project
from core.data.boxes import Box
from core.data.imaging import probe_image
from core.data.store import NewImage, Store


def voc_boxes(xml_path: Path) -> list[tuple[str, float, float, float, float]]:
    """(label, x_min, y_min, x_max, y_max) of a VOC file (minimal parser for tests)."""
    root = ET.parse(xml_path).getroot()
    out = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        out.append((obj.findtext("name").strip(), *(float(bb.findtext(k)) for k in
                                                     ("xmin", "ymin", "xmax", "ymax"))))
    return out


def raccoon_files(raccoon_dir: Path) -> list[Path]:
    """Raccoon images in numeric order (raccoon-1, raccoon-2, ...)."""
    files = [p for p in (raccoon_dir / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return sorted(files, key=lambda p: int(p.stem.rsplit("-", 1)[-1]))


def add_raccoons(store: Store, raccoon_dir: Path, names: list[str] | None = None, count: int = 8,
                 name: str = "raccoons", split: str | None = "train") -> Project:
    """A detection project with raccoon images (by file stem, or the first ``count``)."""
    project = store.create_project(name, "detection")
    files = raccoon_files(raccoon_dir)
    if names:
        by_stem = {p.stem: p for p in files}
        files = [by_stem[n] for n in names]
    else:
        files = files[:count]
    items = []
    for path in files:
        data = path.read_bytes()
        info = probe_image(data)
        anns = []
        for label, x0, y0, x1, y1 in voc_boxes(raccoon_dir / "annotations" / f"{path.stem}.xml"):
            b = Box(x0, y0, x1, y1).clip(info.width, info.height)
            if b.area > 0:
                anns.append(Annotation(label, b))
        items.append(NewImage(data=data, filename=path.name, width=info.width, height=info.height,
                              annotations=anns, split=split))
    store.add_images(project, items)
    return project


def run_detection_job(store: Store, project: Project, hparams: dict):
    """Run train_detection as a real foreground job (core.jobs); returns the finished Job."""
    from core import jobs
    from core.training.detection import train_detection
    from core.training.hparams import DetectionHParams

    def fn(ctx, params):
        return train_detection(ctx, store.get_project(params["project"]),
                               DetectionHParams.from_dict(params["hparams"]))

    jobs.register_job_kind("test-detection", fn)
    return jobs.run_foreground(store, "test-detection", {"project": project.name, "hparams": hparams},
                               project=project.name)
