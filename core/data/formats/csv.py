"""CSV annotations, two dialects detected per file by its first row.

* **Coral / AutoML** (no header): ``set,path,label,x_min,y_min,,,x_max,y_max,,`` with
  coordinates normalised to [0, 1] (the four-vertex form ``x1,y1,x2,y2,x3,y3,x4,y4`` and a
  compact ``x_min,y_min,x_max,y_max`` are accepted too); ``set,path,label`` is an image
  label (classification) and ``set,path`` an unlabelled image. ``set`` is
  TRAIN / VALIDATION / TEST / UNASSIGNED → train / val / test / none; it may be left out.
  Paths like ``gs://bucket/x.jpg`` resolve by basename.
* **Plain** (header): columns ``filename, class, xmin, ymin, xmax, ymax`` (common aliases
  accepted: ``image``, ``path``, ``label``, ``x_min``, ``x1``…), optionally ``width,
  height`` (declared size) and ``split``/``set`` — the layout of the TF object-detection
  tutorial's ``raccoon_labels.csv``. Coordinates are pixels, unless every coordinate in
  the file lies in [0, 1] with some fractional value (then normalised). Without box
  columns (``filename,class``) rows are image labels (classification). A row whose
  class and coordinates are empty lists an image without boxes.

Rows naming a missing image are one Issue per image name ("annotation without image");
malformed rows (wrong coordinates count, text, NaN) are Issues with ``file:line``.
Several CSVs are merged by image; a box that another CSV already gave for the same image
counts once (the tutorial's ``raccoon_labels.csv`` + ``train_labels.csv`` + ``test_labels.csv``),
and a file named like ``train_labels.csv`` sets the split of images without one. The CSVs
of a recognised dialect are the format's own files (``ParseResult.used``); others are left
for the importer's report.

Export: ``images/`` plus ``annotations.csv`` (plain, detection: ``filename,width,height,
class,xmin,ymin,xmax,ymax,split``; classification: ``filename,class,split``). With
``dialect="coral"`` the file is ``automl.csv`` in the Coral dialect instead (paths
``images/<name>``). Only one CSV is written so that re-importing the export never
counts a box twice.
"""

from __future__ import annotations

import csv as _csv
import io
from pathlib import Path
from typing import Sequence

from core.config import Limits
from core.data.formats import _common as C
from core.data.formats.base import ExportItem, Issue, ParsedImage, ParseResult, RawBox

NAME = "csv"
TITLE = "CSV"
TASKS = ("detection", "classification")
SETS = {"TRAIN": "train", "VALIDATION": "val", "VALIDATE": "val", "VAL": "val", "TEST": "test",
        "UNASSIGNED": None}
ALIASES = {
    "filename": ("filename", "file_name", "file", "image", "image_name", "image_path", "imagepath", "img",
                 "path", "filepath", "file_path", "image_id", "image_file"),
    "class": ("class", "label", "class_name", "classname", "category", "category_name", "name"),
    "xmin": ("xmin", "x_min", "x1", "left", "x0"),
    "ymin": ("ymin", "y_min", "y1", "top", "y0"),
    "xmax": ("xmax", "x_max", "x2", "right"),
    "ymax": ("ymax", "y_max", "y2", "bottom"),
    "width": ("width", "image_width", "img_width"),
    "height": ("height", "image_height", "img_height"),
    "split": ("split", "set", "subset", "fold"),
}
BOX_COLS = ("xmin", "ymin", "xmax", "ymax")


def _csv_files(source) -> list[str]:
    return [f for f in source.files() if f.lower().endswith((".csv", ".tsv"))]


def _rows(text: str) -> list[list[str]]:
    first = text.split("\n", 1)[0]
    delim = ","
    if "," not in first:
        delim = "\t" if "\t" in first else (";" if ";" in first else ",")
    return list(_csv.reader(io.StringIO(text), delimiter=delim))


def _header(row: list[str]) -> dict[str, int] | None:
    """Column positions when ``row`` is a header naming at least a filename and class/boxes."""
    cells = [c.strip().lower().replace(" ", "_") for c in row]
    cols: dict[str, int] = {}
    for key, names in ALIASES.items():
        for n in names:
            if n in cells and cells.index(n) not in cols.values():
                cols[key] = cells.index(n)
                break
    if "filename" not in cols:
        return None
    has_box = all(k in cols for k in BOX_COLS)
    if not has_box:
        for k in BOX_COLS:
            cols.pop(k, None)
    if not has_box and "class" not in cols:
        return None
    return cols


def _is_coral(row: list[str]) -> bool:
    if not row:
        return False
    first = row[0].strip()
    if first.upper() in SETS and len(row) >= 2:
        return True
    return C.is_image_path(C.strip_url(first)) and len(row) in (1, 2, 6, 10)


def dialect(rows: list[list[str]]) -> str | None:
    """``"plain"``, ``"coral"`` or None for the rows of one file."""
    first = next((r for r in rows if any(c.strip() for c in r)), None)
    if first is None:
        return None
    if _header(first) is not None:
        return "plain"
    if _is_coral(first):
        return "coral"
    return None


def detect(source) -> float:
    """High when a .csv file's first row is a known header or a Coral/AutoML row."""
    best = 0.0
    for f in _csv_files(source)[:10]:
        head = C.peek(source, f, 8192, Limits().max_annotation_bytes).decode("utf-8-sig", "replace")
        try:
            rows = _rows("\n".join(head.splitlines()[:3]))
        except _csv.Error:
            continue
        d = dialect(rows)
        if d == "plain":
            cols = _header(rows[0]) or {}
            best = max(best, 0.9 if "xmin" in cols else 0.8)
        elif d == "coral":
            best = max(best, 0.9)
    return best


class _Images:
    """ParsedImages by resolved path, one per image across all CSV files."""

    def __init__(self, source, result: ParseResult):
        self.source, self.result = source, result
        self.by_ref: dict[str, ParsedImage] = {}
        self.missing: dict[str, list[str]] = {}
        self.box_files: dict[tuple, str] = {}  # (ref, box) -> the CSV it came from
        self.repeats: dict[tuple[str, str], int] = {}

    def get(self, name: str, csv_path: str, line: int) -> ParsedImage | None:
        ref = self.source.resolve(C.strip_url(name), relative_to=csv_path)
        if ref is None or not C.is_image_path(ref):
            self.missing.setdefault(name, []).append(f"{csv_path}:{line}")
            return None
        img = self.by_ref.get(ref)
        if img is None:
            img = self.by_ref[ref] = ParsedImage(ref=ref, origin=f"{csv_path}:{line}", split=C.split_from_path(ref))
            self.result.images.append(img)
        img.split = img.split or C.split_from_name(csv_path)
        return img

    def add_box(self, img: ParsedImage, box: RawBox, csv_path: str) -> None:
        """Add a box unless another CSV file already gave this very box for this image."""
        key = (img.ref, box)
        first = self.box_files.setdefault(key, csv_path)
        if first != csv_path:
            self.repeats[(csv_path, first)] = self.repeats.get((csv_path, first), 0) + 1
            return
        img.boxes.append(box)

    def finish(self) -> None:
        for (path, first), n in self.repeats.items():
            self.result.issues.append(Issue(path, f"{n} box(es) repeat those of {first}: counted once",
                                            "repaired"))
        for name, where in self.missing.items():
            more = f" ({len(where)} rows)" if len(where) > 1 else ""
            self.result.issues.append(Issue(where[0], f"annotation without image: '{name}' not found{more}",
                                            "skipped"))


def parse(source, limits: Limits | None = None) -> ParseResult:
    """Parse every CSV in ``source`` whose dialect is recognised (see the module docstring)."""
    limits = C.limits_for(source, limits)
    result = ParseResult()
    images = _Images(source, result)
    for path in _csv_files(source):
        text = C.read_text(source, path, limits, result.issues)
        if text is None:
            continue
        try:
            rows = _rows(text)
        except _csv.Error as exc:
            result.issues.append(Issue(path, f"malformed CSV: {exc}", "skipped"))
            continue
        d = dialect(rows)
        if d is not None:
            result.used.add(path)
        if d == "plain":
            _parse_plain(rows, path, images, result)
        elif d == "coral":
            _parse_coral(rows, path, images, result)
    images.finish()
    return result


def _set_label(img: ParsedImage, label: str, item: str, issues: list[Issue]) -> None:
    if img.label is None:
        img.label = label
    elif img.label != label:
        issues.append(Issue(item, f"second class '{label}' for an image already labelled "
                                  f"'{img.label}': ignored", "skipped"))


def _add_class(result: ParseResult, label: str) -> None:
    if label and label not in result.classes:
        result.classes.append(label)


def _parse_plain(rows: list[list[str]], path: str, images: _Images, result: ParseResult) -> None:
    issues = result.issues
    cols = _header(rows[0]) or {}
    has_box = "xmin" in cols
    body = [(n, r) for n, r in enumerate(rows[1:], 2) if any(c.strip() for c in r)]

    def cell(r: list[str], key: str) -> str:
        i = cols.get(key)
        return r[i].strip() if i is not None and i < len(r) else ""

    normalised = False
    if has_box:
        nums = [C.to_float(cell(r, k)) for _, r in body for k in BOX_COLS]
        nums = [v for v in nums if v is not None]
        normalised = bool(nums) and all(0 <= v <= 1 for v in nums) and any(v != int(v) for v in nums)
    for n, r in body:
        item = f"{path}:{n}"
        name = cell(r, "filename")
        if not name:
            issues.append(Issue(item, "row without a file name", "skipped"))
            continue
        img = images.get(name, path, n)
        if img is None:
            continue
        split = C.norm_split(cell(r, "split"))
        img.split = split or img.split
        w, h = C.to_float(cell(r, "width")), C.to_float(cell(r, "height"))
        if w and h and w > 0 and h > 0 and img.declared_size is None:
            img.declared_size = (int(w), int(h))
        label = cell(r, "class")
        raw = [cell(r, k) for k in BOX_COLS] if has_box else []
        if not any(raw):
            if label:
                _set_label(img, label, item, issues)
                _add_class(result, label)
            continue
        vals = [C.to_float(v) for v in raw]
        if any(v is None for v in vals):
            issues.append(Issue(item, f"malformed box: xmin, ymin, xmax, ymax = {', '.join(raw)} "
                                      "(missing, text or NaN)", "skipped"))
            continue
        if not label:
            issues.append(Issue(item, "box without a class", "skipped"))
            continue
        _add_class(result, label)
        if normalised:
            vals = [C.snap_unit(v) for v in vals]  # type: ignore[arg-type]
        images.add_box(img, RawBox(label, *vals, normalized=normalised), path)  # type: ignore[arg-type]


def _parse_coral(rows: list[list[str]], path: str, images: _Images, result: ParseResult) -> None:
    issues = result.issues
    for n, r in enumerate(rows, 1):
        item = f"{path}:{n}"
        r = [c.strip() for c in r]
        while r and not r[-1]:
            r.pop()
        if not r:
            continue
        split = None
        if r[0].upper() in SETS:
            split = SETS[r[0].upper()]
            r = r[1:]
        elif not C.is_image_path(C.strip_url(r[0])):
            issues.append(Issue(item, f"unknown set {r[0]!r} (expected TRAIN, VALIDATION, TEST or UNASSIGNED)",
                                "skipped"))
            continue
        if not r or not r[0]:
            issues.append(Issue(item, "row without an image path", "skipped"))
            continue
        img = images.get(r[0], path, n)
        if img is None:
            continue
        img.split = split or img.split
        label = r[1] if len(r) > 1 else ""
        coords = r[2:]
        if not coords:
            if label:
                _set_label(img, label, item, issues)
                _add_class(result, label)
            continue
        if not label:
            issues.append(Issue(item, "box without a label", "skipped"))
            continue
        box = _coral_box(coords)
        if isinstance(box, str):
            issues.append(Issue(item, f"malformed box: {box}", "skipped"))
            continue
        _add_class(result, label)
        images.add_box(img, RawBox(label, *(C.snap_unit(v) for v in box), normalized=True), path)


def _coral_box(coords: list[str]) -> tuple[float, float, float, float] | str:
    """(x_min, y_min, x_max, y_max) from the 2- or 4-vertex or compact form, else a reason."""
    coords = coords + [""] * (8 - len(coords)) if len(coords) < 8 else coords
    if len(coords) > 8:
        return f"{len(coords)} coordinates (expected at most 8)"
    filled = [c for c in coords if c]
    if len(filled) == 4 and all(coords[:4]):  # compact x_min,y_min,x_max,y_max
        vals = [C.to_float(c) for c in coords[:4]]
        if any(v is None for v in vals):
            return f"not numbers (or NaN): {', '.join(coords[:4])}"
        return vals[0], vals[1], vals[2], vals[3]  # type: ignore[return-value]
    pts = []
    for i in range(0, 8, 2):
        x, y = coords[i], coords[i + 1]
        if not x and not y:
            continue
        fx, fy = C.to_float(x), C.to_float(y)
        if fx is None or fy is None:
            return f"vertex ({x!r}, {y!r}) is not two numbers"
        pts.append((fx, fy))
    if len(pts) < 2:
        return "needs at least two vertices (x_min,y_min … x_max,y_max)"
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if len(pts) == 2:  # top-left and bottom-right as written: keep them (inverted boxes are reported)
        return pts[0][0], pts[0][1], pts[1][0], pts[1][1]
    return min(xs), min(ys), max(xs), max(ys)


# -- export -------------------------------------------------------------------
CORAL_SETS = {"train": "TRAIN", "val": "VALIDATION", "test": "TEST"}


def export(items: Sequence[ExportItem], classes: Sequence[str], out_dir: Path,
           dialect: str = "plain", task: str | None = None) -> list[Path]:
    """Write ``images/`` and one CSV (``annotations.csv`` plain, or ``automl.csv`` Coral).

    ``task`` ("detection" / "classification") picks the columns; by default it is
    inferred from the items (boxes → detection, image labels only → classification).
    """
    out_dir = Path(out_dir)
    if dialect not in ("plain", "coral"):
        raise ValueError(f"unknown CSV dialect {dialect!r}; use 'plain' or 'coral'")
    written = C.write_images(items, out_dir / "images")
    if task is None:
        detection = any(it.record.boxes for it in items) or not any(it.record.class_label for it in items)
    else:
        detection = task == "detection"
    buf = io.StringIO()
    w = _csv.writer(buf, lineterminator="\n")
    if dialect == "plain":
        w.writerow(["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax", "split"]
                   if detection else ["filename", "class", "split"])
    for it in items:
        rec, split = it.record, C.item_split(it)
        if dialect == "coral":
            s, p = CORAL_SETS[split], f"images/{it.export_name}"
            if detection and rec.boxes:
                for a in rec.boxes:
                    x0, y0, x1, y1 = C.unit_corners(*a.box.to_normalized(rec.width, rec.height))  # type: ignore
                    w.writerow([s, p, a.label, f"{x0:.6f}", f"{y0:.6f}", "", "", f"{x1:.6f}", f"{y1:.6f}", "", ""])
            elif not detection and rec.class_label:
                w.writerow([s, p, rec.class_label])
            else:
                w.writerow([s, p])
        elif detection:
            if not rec.boxes:
                w.writerow([it.export_name, rec.width, rec.height, "", "", "", "", "", split])
            for a in rec.boxes:
                w.writerow([it.export_name, rec.width, rec.height, a.label,
                            *(C.fmt_num(v) for v in a.box.as_tuple()), split])  # type: ignore[union-attr]
        else:
            w.writerow([it.export_name, rec.class_label or "", split])
    name = "automl.csv" if dialect == "coral" else "annotations.csv"
    written.append(C.write_text(out_dir / name, buf.getvalue()))
    return written
