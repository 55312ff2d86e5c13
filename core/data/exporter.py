"""Export a project's images and annotations in one of the annotation formats.

``export_project(store, project, "voc", Path("out"))`` writes a folder; an ``out`` ending
in ``.zip`` gets a zip archive. Either is built in a temporary place beside ``out`` and
renamed into place at the end, so a failed export never leaves a half-written result.
Importing the export gives the same images (same bytes) and the same boxes / labels.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from core.data.annotations import Project
from core.data.formats.base import ExportItem
from core.data.formats.registry import FORMATS, formats_for
from core.data.sources import IMAGE_EXTENSIONS

_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"GIF87a", ".gif"), (b"GIF89a", ".gif"),
    (b"BM", ".bmp"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"),
)
_STORED = {".jpg", ".jpeg", ".png", ".gif", ".webp"}  # already compressed: no deflate in the zip


def image_extension(filename: str, head: bytes) -> str:
    """The file extension for an image: from its bytes when recognisable, else its name."""
    for magic, ext in _MAGIC:
        if head.startswith(magic):
            if ext == ".jpg" and PurePosixPath(filename).suffix.lower() == ".jpeg":
                return ".jpeg"
            return ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    suffix = PurePosixPath(filename).suffix.lower()
    return suffix if suffix in IMAGE_EXTENSIONS else ".jpg"


def export_items(store, project: Project) -> list[ExportItem]:
    """The project's images as ExportItems (bytes read lazily from the store)."""
    items = []
    for rec in store.list_images(project):
        path = store.image_path(rec.id)
        with open(path, "rb") as fh:
            head = fh.read(16)
        items.append(ExportItem(record=rec, read_bytes=path.read_bytes,
                                extension=image_extension(rec.filename, head)))
    return items


def export_project(store, project: Project, fmt: str, out: Path, *,
                   progress: Callable[[float, str], None] | None = None, **options: Any) -> dict:
    """Write ``project`` in format ``fmt`` to the folder (or ``.zip``) ``out``; returns a summary.

    Raises ValueError for an unknown format, a format that cannot carry the project's
    task, or an ``out`` that already exists (a non-empty folder or a file). ``options``
    go to the format's ``export`` (e.g. ``dialect="coral"`` for csv, ``splits=False`` for
    folders). The summary: format, project, task, images, boxes, labels, classes, path.
    """
    say = progress or (lambda f, m: None)
    name = (fmt or "").strip().lower()
    if name not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    mod = FORMATS[name]
    task = project.task.value
    if task not in mod.TASKS:
        raise ValueError(
            f"The {name} format cannot hold {task} labels (it carries {' / '.join(mod.TASKS)} only). "
            f"For a {task} project use one of: {', '.join(formats_for(task))}.")
    out = Path(out)
    as_zip = out.suffix.lower() == ".zip"
    if out.exists() and (as_zip or not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already exists: choose a new name or remove it first.")
    if name == "csv":
        options.setdefault("task", task)
    say(0.0, "Collecting images…")
    items = export_items(store, project)
    classes = store.label_map(project).names
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        say(0.05, f"Writing {len(items):,} images as {name}…")
        mod.export(_counting(items, say), classes, tmp_dir, **options)
        if as_zip:
            say(0.8, "Packing the zip…")
            _zip_folder(tmp_dir, out)
        else:
            if out.exists():
                out.rmdir()  # empty folder, checked above
            os.replace(tmp_dir, out)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
    say(1.0, "Done")
    return {
        "format": name,
        "project": project.name,
        "task": task,
        "images": len(items),
        "boxes": sum(len(it.record.boxes) for it in items),
        "labels": sum(1 for it in items if it.record.class_label),
        "classes": classes,
        "path": str(out),
    }


def _counting(items: list[ExportItem], say: Callable[[float, str], None]) -> list[ExportItem]:
    """The same items, reporting progress as their bytes are read (every 50 images)."""
    total = max(len(items), 1)
    count = [0]

    def wrap(read: Callable[[], bytes]) -> Callable[[], bytes]:
        def read_and_count() -> bytes:
            count[0] += 1
            if count[0] % 50 == 0 or count[0] == total:
                say(0.05 + 0.75 * min(count[0] / total, 1.0), f"Wrote {count[0]:,} of {total:,} images")
            return read()
        return read_and_count

    return [ExportItem(it.record, wrap(it.read_bytes), it.extension) for it in items]


def _zip_folder(folder: Path, out: Path) -> None:
    """Zip ``folder``'s content into ``out`` via a temporary file renamed at the end."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for p in sorted(folder.rglob("*")):
                if p.is_file():
                    arc = p.relative_to(folder).as_posix()
                    method = zipfile.ZIP_STORED if p.suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
                    zf.write(p, arc, compress_type=method)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
