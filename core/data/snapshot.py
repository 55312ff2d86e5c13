"""A self-contained copy of one project (images, splits, labels) for a job that runs elsewhere.

The copy is a data directory of its own (``studio.db`` + the image files), so the
same trainers run on it unchanged; its ``dataset_hash`` equals the original's.
"""

from __future__ import annotations

from pathlib import Path

from core.data.annotations import Project
from core.data.store import NewImage, Store


def snapshot_project(store: Store, project: Project, dest: Path) -> tuple[Store, str]:
    """Copy ``project`` into a new data directory ``dest``; returns (the copy's store, dataset hash)."""
    copy = Store(dest)
    target = copy.create_project(project.name, project.task)
    for name in store.label_map(project).names:  # id order: the model's output order survives
        copy.add_class(target, name)
    records = store.list_images(project)
    copy.add_images(target, (
        NewImage(data=store.read_image_bytes(r.id), filename=r.filename, width=r.width, height=r.height,
                 annotations=r.annotations, split=r.split)
        for r in records))
    digest = copy.dataset_hash(target)
    if digest != store.dataset_hash(project):
        raise RuntimeError("the dataset snapshot does not match the project (it changed while copying?)")
    return copy, digest
