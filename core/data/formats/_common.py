"""Small helpers shared by the format modules (reading with limits, numbers, splits, writing)."""

from __future__ import annotations

import math
import os
import posixpath
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from core.config import Limits
from core.data.formats.base import ExportItem, Issue
from core.data.sources import is_image_path

SPLIT_ALIASES = {
    "train": "train", "training": "train", "trn": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val", "eval": "val",
    "test": "test", "testing": "test", "tst": "test",
}
SPLIT_FOLDERS = {"train", "val", "valid", "validation", "test"}
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*/")


def limits_for(source, limits: Limits | None) -> Limits:
    """The limits to apply: explicit, else the source's own (zip sources carry them), else defaults."""
    return limits or getattr(source, "limits", None) or Limits()


def read_text(source, path: str, limits: Limits, issues: list[Issue]) -> str | None:
    """The text of an annotation file, or None (with an Issue) when too large or unreadable."""
    data = read_data(source, path, limits, issues)
    if data is None:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_data(source, path: str, limits: Limits, issues: list[Issue]) -> bytes | None:
    """The bytes of an annotation file, or None (with an Issue) when too large or unreadable."""
    try:
        size = source.size(path)
        if size > limits.max_annotation_bytes:
            issues.append(Issue(path, f"annotation file too large: {size / 1e6:.1f} MB "
                                      f"(limit {limits.max_annotation_bytes / 1e6:.1f} MB)", "skipped"))
            return None
        data = source.read_bytes(path)
    except (OSError, KeyError, ValueError) as exc:
        issues.append(Issue(path, f"cannot read file: {exc}", "skipped"))
        return None
    if len(data) > limits.max_annotation_bytes:
        issues.append(Issue(path, f"annotation file too large: {len(data) / 1e6:.1f} MB "
                                  f"(limit {limits.max_annotation_bytes / 1e6:.1f} MB)", "skipped"))
        return None
    return data


def peek(source, path: str, n: int = 4096, limit: int | None = None) -> bytes:
    """The first ``n`` bytes of a file for detection ('' when unreadable or larger than ``limit``)."""
    try:
        if limit is not None and source.size(path) > limit:
            return b""
        return source.read_bytes(path)[:n]
    except (OSError, KeyError, ValueError):
        return b""


def to_float(text) -> float | None:
    """A finite float from text/number, else None."""
    if text is None or isinstance(text, bool):
        return None
    try:
        v = float(str(text).strip()) if not isinstance(text, (int, float)) else float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def snap_unit(v: float, eps: float = 1e-5) -> float:
    """A normalised coordinate a rounding step outside [0, 1] put back on the edge."""
    if -eps < v < 0:
        return 0.0
    if 1 < v < 1 + eps:
        return 1.0
    return v


def unit_corners(x0: float, y0: float, x1: float, y1: float, digits: int = 6) -> tuple[float, ...]:
    """Normalised corners rounded to ``digits`` decimals, kept inside [0, 1] when they were."""
    out = []
    for v in (x0, y0, x1, y1):
        r = round(v, digits)
        out.append(min(max(r, 0.0), 1.0) if 0 <= v <= 1 else r)
    return tuple(out)


def norm_split(text: str | None) -> str | None:
    """train / val / test from the many ways datasets write them; None when unknown/unassigned."""
    if not text:
        return None
    return SPLIT_ALIASES.get(str(text).strip().lower())


def split_from_path(path: str) -> str | None:
    """The split named by a folder of ``path`` (``images/train/x.jpg`` → train), innermost first."""
    for part in reversed(PurePosixPath(path).parts[:-1]):
        if part.lower() in SPLIT_FOLDERS:
            return norm_split(part)
    return None


def split_from_name(path: str) -> str | None:
    """The split named by a file's name (``instances_train2017.json``, ``test_labels.csv``) or folder."""
    stem = PurePosixPath(path).stem.lower()
    for token in re.split(r"[^a-z]+", stem):
        if token in SPLIT_FOLDERS:
            return norm_split(token)
    return split_from_path(path)


def strip_url(name: str) -> str:
    """``gs://bucket/dir/x.jpg`` → ``dir/x.jpg`` (the basename is what resolves)."""
    return _URL.sub("", name.strip())


def stem_index(files: Iterable[str]) -> dict[str, list[str]]:
    """Image files by lower-cased stem."""
    out: dict[str, list[str]] = {}
    for f in files:
        if is_image_path(f):
            out.setdefault(PurePosixPath(f).stem.lower(), []).append(f)
    return out


def fmt_num(v: float, digits: int = 2) -> str:
    """A coordinate as text: an integer when it is one, else rounded to ``digits`` decimals."""
    r = round(v)
    if abs(v - r) < 1e-9:
        return str(int(r))
    s = f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def safe_name(name: str) -> str:
    """A class name usable as a folder name (path separators and dot-names replaced)."""
    n = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name.strip()) or "_"
    return "_" + n if n in (".", "..") else n


LABEL_FILES = ("labels.txt", "classes.txt")
# extensions of annotation files (a .txt is one only when named like a photo: YOLO)
ANNOTATION_EXT = (".xml", ".json", ".csv", ".tsv", ".yaml", ".yml", ".names")


def is_label_file(path: str) -> bool:
    """A ``labels.txt`` / ``classes.txt`` at the top or one folder down (a wrapping folder)."""
    parts = path.split("/")
    return len(parts) <= 2 and parts[-1].lower() in LABEL_FILES


def declared_classes(source, limits: Limits, issues: list[Issue], used: set[str] | None = None) -> list[str]:
    """Class order from a top-level ``labels.txt`` / ``classes.txt`` (one name a line).

    Coral's ``labels.txt`` form ``0 cat`` / ``0: cat`` gives ``cat``. Every such class
    list is added to ``used`` (the shallowest one is read).
    """
    found = [f for f in sorted(source.files(), key=lambda f: (f.count("/"), f)) if is_label_file(f)]
    if used is not None:
        used.update(found)
    if not found:
        return []
    text = read_text(source, found[0], limits, issues) or ""
    cleaned = []
    for n in (ln.strip() for ln in text.splitlines()):
        if not n:
            continue
        head, _, rest = n.replace(":", " ", 1).partition(" ")
        cleaned.append(rest.strip() if head.isdigit() and rest.strip() else n)
    return list(dict.fromkeys(cleaned))


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def write_images(items: Sequence[ExportItem], folder: Path, sub=None) -> list[Path]:
    """Write each item's bytes to ``folder/<sub(item)>/<export_name>`` (sub: item -> str or '')."""
    out = []
    for it in items:
        d = folder / sub(it) if sub else folder
        out.append(write_bytes(d / it.export_name, it.read_bytes()))
    return out


def item_split(item: ExportItem) -> str:
    s = item.record.split
    return s if s in ("train", "val", "test") else "train"


def rel(path: str, start: str) -> str:
    return posixpath.relpath(path, start)
