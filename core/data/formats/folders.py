"""Class folders (classification): ``<root>/<class>/*.jpg``.

Parsing: the folders every image shares (wrapping folders such as ``Dataset/`` in
``Dataset/0/x.jpg``) are skipped, as long as each image keeps a folder of its own; a
``train | val | valid | validation | test`` folder at that level records the split and
the class is the folder below it (``train/cat/x.jpg``). Deeper folders belong to
their top class folder (``cat/siamese/x.jpg`` → cat). An image with no class folder
(``x.jpg`` at the top, or ``train/x.jpg``) is listed without a label. A top-level
``labels.txt`` / ``classes.txt`` declares the class order (``ParseResult.used``); other
non-image files are left for the importer's report (ignored: not photos or label files).

Export: ``<split>/<class>/<name>`` (or ``<class>/<name>`` with ``splits=False``),
unlabelled images directly in ``<split>/``, and ``labels.txt`` (class order).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Sequence

from core.config import Limits
from core.data.formats import _common as C
from core.data.formats.base import ExportItem, ParsedImage, ParseResult

NAME = "folders"
TITLE = "class folders"
TASKS = ("classification",)
GENERIC = {"images", "imgs", "img", "jpegimages", "photos", "pictures", "pics", "data", "dataset", "upload"}


def _classify(images: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """image path -> (class, split) following the rules of the module docstring."""
    dirs = {f: PurePosixPath(f).parts[:-1] for f in images}
    depth = 0
    while dirs:
        heads = {d[depth] if len(d) > depth else None for d in dirs.values()}
        if len(heads) != 1 or None in heads:
            break
        head = heads.pop()
        if head.lower() in C.SPLIT_FOLDERS or any(len(d) <= depth + 1 for d in dirs.values()):
            break
        depth += 1
    out: dict[str, tuple[str | None, str | None]] = {}
    for f, d in dirs.items():
        rest = list(d[depth:])
        split = None
        if rest and rest[0].lower() in C.SPLIT_FOLDERS:
            split = C.norm_split(rest.pop(0))
        out[f] = (rest[0].strip() if rest and rest[0].strip() else None, split)
    return out


def detect(source) -> float:
    """Likely when images sit in two or more class folders and no annotation files are present."""
    images = [f for f in source.files() if C.is_image_path(f)]
    if not images:
        return 0.0
    labels = _classify(images)
    classes = {c for c, _ in labels.values() if c}
    frac = sum(1 for c, _ in labels.values() if c) / len(images)
    if not classes:
        return 0.0
    if len(classes) >= 2:
        score = 0.7 * frac
    else:
        score = 0.1 if next(iter(classes)).lower() in GENERIC else 0.4 * frac
    stems = {PurePosixPath(i).stem for i in images}
    if any(_annotates(f, stems) for f in source.files()):
        score *= 0.3
    return score


def _annotates(path: str, image_stems: set[str]) -> bool:
    """Whether ``path`` looks like another format's annotations: an .xml/.json/.csv/… file, or a
    .txt named like a photo (YOLO) — a README.txt or notes.txt is just a note."""
    low = path.lower()
    if not low.endswith((*C.ANNOTATION_EXT, ".txt")) or C.is_label_file(path):
        return False
    return not low.endswith(".txt") or PurePosixPath(path).stem in image_stems


def parse(source, limits: Limits | None = None) -> ParseResult:
    """Images labelled by their class folder (see the module docstring)."""
    limits = C.limits_for(source, limits)
    result = ParseResult()
    result.classes = C.declared_classes(source, limits, result.issues, result.used)
    images = [f for f in source.files() if C.is_image_path(f)]
    labels = _classify(images)
    for f in images:
        label, split = labels[f]
        result.images.append(ParsedImage(ref=f, label=label, split=split, origin=f))
        if label and label not in result.classes:
            result.classes.append(label)
    return result


def export(items: Sequence[ExportItem], classes: Sequence[str], out_dir: Path,
           splits: bool = True) -> list[Path]:
    """Write ``<split>/<class>/<name>`` (``<class>/<name>`` without splits) and ``labels.txt``."""
    out_dir = Path(out_dir)

    def sub(it: ExportItem) -> str:
        parts = [C.item_split(it)] if splits else []
        if it.record.class_label:
            parts.append(C.safe_name(it.record.class_label))
        return "/".join(parts)

    written = C.write_images(items, out_dir, sub)
    names = list(classes) + sorted({it.record.class_label for it in items
                                    if it.record.class_label and it.record.class_label not in classes})
    written.append(C.write_text(out_dir / "labels.txt", "".join(f"{c}\n" for c in names)))
    return written
