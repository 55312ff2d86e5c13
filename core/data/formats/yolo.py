"""YOLO / Darknet text labels: one ``.txt`` per image, lines ``cls cx cy w h`` normalised.

Parsing: every image in the source is listed (an image without a label file, or with
an empty one, is an image with no boxes). Its label file is ``labels/…/<stem>.txt``
where the image path has ``images`` (Ultralytics layout: ``images/train/x.jpg`` →
``labels/train/x.txt``), else ``<stem>.txt`` beside the image. Class names come from
``data.yaml`` (``names`` as a list or ``{index: name}``; read with ``yaml.safe_load``),
else ``classes.txt`` / ``obj.names`` / ``*.names`` (names must be plain values: YAML alias
bombs are ignored with an Issue; YAML files over 1 MB are skipped); without any, classes are named by
their index (with an Issue). Lines: a class index out of range → Issue "unknown class";
a malformed line or a non-finite number → Issue with ``file:line``; six numbers (a
trailing confidence) are accepted; ``cls x1 y1 x2 y2 x3 y3 …`` polygons (YOLO
segmentation) become their bounding box (Issue "repaired"). Label files under a
``labels`` folder with no image are Issues "annotation without image". Splits come
from ``train/val/valid/test`` folders in the image path. The paired label files and every
class-name file (``data.yaml``, ``classes.txt``, ``*.names``; the first usable one is read)
are the format's own files (``ParseResult.used``); other files are left for the importer's
report.

Normalised values a rounding step (1e-5) outside [0, 1] are put back on the edge.

Export: ``images/<split>/``, ``labels/<split>/`` (corners rounded to 6 decimals and kept
inside the image, written as centre/size with 7 decimals),
``classes.txt`` and ``data.yaml`` (Ultralytics).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Sequence

import yaml

from core.config import Limits
from core.data.formats import _common as C
from core.data.formats.base import ExportItem, Issue, ParsedImage, ParseResult, RawBox

NAME = "yolo"
TITLE = "YOLO"
TASKS = ("detection",)
NAME_FILES = ("classes.txt", "obj.names")
YAML_FILES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
YAML_MAX_BYTES = 1024 * 1024  # a data.yaml is a few lines: anything bigger is not one
MAX_CLASSES = 100_000
_NOT_LABELS = {"classes.txt", "obj.names", "labels.txt", "readme.txt", "license.txt", "train.txt",
               "val.txt", "valid.txt", "test.txt", "trainval.txt", "requirements.txt", "notes.txt"}


def _label_path(image: str) -> list[str]:
    """Candidate label files of an image, best first."""
    p = PurePosixPath(image)
    parts = list(p.parts)
    out = []
    idx = [i for i, part in enumerate(parts[:-1]) if part.lower() in ("images", "jpegimages")]
    if idx:
        i = idx[-1]
        out.append(PurePosixPath(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt").as_posix())
    out.append(p.with_suffix(".txt").as_posix())
    return out


def _pairs(source) -> tuple[dict[str, str | None], list[str]]:
    """image -> its label file (or None), and the label-looking .txt files without an image."""
    files = set(source.files())
    used: set[str] = set()
    pairs: dict[str, str | None] = {}
    for f in sorted(files):
        if C.is_image_path(f):
            lab = next((c for c in _label_path(f) if c in files), None)
            pairs[f] = lab
            if lab:
                used.add(lab)
    orphans = [f for f in sorted(files) if f.lower().endswith(".txt") and f not in used
               and "labels" in [x.lower() for x in PurePosixPath(f).parts[:-1]]
               and PurePosixPath(f).name.lower() not in _NOT_LABELS]
    return pairs, orphans


def _names_files(source) -> tuple[list[str], list[str]]:
    files = source.files()
    yamls = [f for f in files if PurePosixPath(f).name.lower() in YAML_FILES]
    names = [f for f in files if PurePosixPath(f).name.lower() in NAME_FILES or f.lower().endswith(".names")]
    key = lambda f: (f.count("/"), f)  # noqa: E731 - shallowest first
    return sorted(yamls, key=key), sorted(names, key=key)


def detect(source) -> float:
    """High when images have paired .txt label files (more with classes.txt / data.yaml)."""
    pairs, _ = _pairs(source)
    labelled = [lab for lab in pairs.values() if lab]
    if not labelled:
        return 0.0
    good = 0
    sample = labelled[:10]
    for lab in sample:
        text = C.peek(source, lab, 2048, 1 << 20).decode("utf-8", "replace")
        lines = [ln for ln in text.splitlines()[:5] if ln.strip()]
        if all(_looks_like_line(ln) for ln in lines):
            good += 1
    if not good:
        return 0.0
    yamls, names = _names_files(source)
    base = 0.9 if (yamls or names) else 0.6
    return base * good / len(sample)


def _looks_like_line(line: str) -> bool:
    parts = line.split()
    return len(parts) >= 5 and all(C.to_float(p) is not None for p in parts)


def _class_names(source, limits: Limits, issues: list[Issue]) -> list[str] | None:
    yamls, names = _names_files(source)
    small = Limits(max_annotation_bytes=min(limits.max_annotation_bytes, YAML_MAX_BYTES))
    for f in yamls:
        text = C.read_text(source, f, small, issues)
        if text is None:
            continue
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            issues.append(Issue(f, f"malformed YAML: {str(exc).splitlines()[0]}", "skipped"))
            continue
        got = doc.get("names") if isinstance(doc, dict) else None
        if isinstance(got, dict) and all(_scalar(v) for v in got.values()):
            idx = {}
            for k, v in got.items():
                i = C.to_float(k)
                if i is not None and i >= 0 and i == int(i) and i < MAX_CLASSES:
                    idx[int(i)] = str(v).strip()
            if idx:
                return [idx.get(i, str(i)) for i in range(max(idx) + 1)]
        if isinstance(got, list) and all(_scalar(v) for v in got):
            return [str(n).strip() for n in got]
        issues.append(Issue(f, "no 'names' list (of plain names) in this YAML file", "skipped"))
    for f in names:
        text = C.read_text(source, f, limits, issues)
        if text is not None:
            return [ln.strip() for ln in text.splitlines() if ln.strip()]
    return None


def _scalar(v) -> bool:
    """Class names must be plain values (a nested alias structure could explode when printed)."""
    return isinstance(v, (str, int, float)) and not isinstance(v, bool)


def parse(source, limits: Limits | None = None) -> ParseResult:
    """Parse YOLO labels of every image in ``source`` (see the module docstring)."""
    limits = C.limits_for(source, limits)
    result = ParseResult()
    issues = result.issues
    names = _class_names(source, limits, issues)
    yamls, name_files = _names_files(source)
    result.used.update(yamls + name_files)
    pairs, orphans = _pairs(source)
    result.used.update(lab for lab in pairs.values() if lab)
    if names is None and any(pairs.values()):
        issues.append(Issue(source.name, "no classes.txt, obj.names or data.yaml: classes are named by their "
                                         "index", "repaired"))
    result.classes = list(dict.fromkeys(names or []))
    for image, lab in pairs.items():
        img = ParsedImage(ref=image, origin=lab or image, split=C.split_from_path(image))
        result.images.append(img)
        if lab is None:
            continue
        text = C.read_text(source, lab, limits, issues)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            box = _parse_line(line, f"{lab}:{n}", names, issues)
            if box is not None:
                img.boxes.append(box)
    for f in orphans:
        issues.append(Issue(f, "annotation without image: no image with this name", "skipped"))
    return result


def _parse_line(line: str, item: str, names: list[str] | None, issues: list[Issue]) -> RawBox | None:
    parts = line.split()
    if not parts:
        return None
    vals = [C.to_float(p) for p in parts]
    if any(v is None for v in vals):
        issues.append(Issue(item, f"malformed line (not numbers, or NaN/inf): {line.strip()[:80]!r}", "skipped"))
        return None
    cls = vals[0]
    if cls != int(cls) or cls < 0:  # type: ignore[operator]
        issues.append(Issue(item, f"class index {parts[0]!r} is not a whole number", "skipped"))
        return None
    ci = int(cls)  # type: ignore[arg-type]
    if names is not None and ci >= len(names):
        issues.append(Issue(item, f"unknown class: index {ci} but only {len(names)} classes are named",
                            "skipped"))
        return None
    label = names[ci] if names is not None else str(ci)
    coords = vals[1:]
    if len(coords) in (4, 5):
        cx, cy, w, h = coords[:4]  # type: ignore[misc]
        if w < 0 or h < 0:  # type: ignore[operator]
            issues.append(Issue(item, f"box of '{label}' has a negative size", "skipped"))
            return None
        corners = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)  # type: ignore[operator]
        return RawBox(label, *(C.snap_unit(v) for v in corners), normalized=True)
    if len(coords) >= 6 and len(coords) % 2 == 0:
        xs, ys = coords[0::2], coords[1::2]
        issues.append(Issue(item, f"polygon of '{label}' turned into its bounding box", "repaired"))
        corners = (min(xs), min(ys), max(xs), max(ys))  # type: ignore[type-var]
        return RawBox(label, *(C.snap_unit(v) for v in corners), normalized=True)  # type: ignore[arg-type]
    issues.append(Issue(item, f"malformed line: expected 'class cx cy w h', got {len(parts)} values", "skipped"))
    return None


# -- export -------------------------------------------------------------------
def label_lines(item: ExportItem, class_index: dict[str, int]) -> str:
    rec = item.record
    out = []
    for a in rec.boxes:
        x0, y0, x1, y1 = C.unit_corners(*a.box.to_normalized(rec.width, rec.height))  # type: ignore
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        out.append(f"{class_index[a.label]} {cx:.7f} {cy:.7f} {w:.7f} {h:.7f}\n")
    return "".join(out)


def export(items: Sequence[ExportItem], classes: Sequence[str], out_dir: Path) -> list[Path]:
    """Write ``images/<split>/``, ``labels/<split>/``, ``classes.txt`` and ``data.yaml``."""
    out_dir = Path(out_dir)
    classes = list(classes)
    for it in items:
        for a in it.record.boxes:
            if a.label not in classes:
                classes.append(a.label)
    index = {c: i for i, c in enumerate(classes)}
    written = C.write_images(items, out_dir / "images", C.item_split)
    splits = set()
    for it in items:
        split = C.item_split(it)
        splits.add(split)
        stem = PurePosixPath(it.export_name).stem
        written.append(C.write_text(out_dir / "labels" / split / f"{stem}.txt", label_lines(it, index)))
    written.append(C.write_text(out_dir / "classes.txt", "".join(f"{c}\n" for c in classes)))
    first = "train" if "train" in splits or not splits else sorted(splits)[0]
    data = {
        "train": f"images/{first}",
        "val": "images/val" if "val" in splits else f"images/{first}",
        **({"test": "images/test"} if "test" in splits else {}),
        "nc": len(classes),
        "names": classes,
    }
    written.append(C.write_text(out_dir / "data.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True)))
    return written
