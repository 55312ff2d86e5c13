"""Import images and annotations from any supported format into the store, with a report.

Two phases keep the store consistent and responsive:
1. validate (no store lock held): parse the annotations, resolve and decode every
   image (bombs, truncation, non-images are skipped with a reason), convert raw boxes
   to upright pixel Boxes (clip or skip with a reason); every other file of the source
   that no format took as its own is reported as ignored (grouped when there are many);
2. write: one transaction adds the images and their annotations; image files are
   content-addressed, so re-importing the same bytes is a no-op.
One bad file never costs the good ones: every per-file problem (a hostile or malformed
annotation file, a damaged photo, an unsafe loose file name) skips that file with its
reason. Only archive-level dangers (zip-slip, zip bombs, too many members, too large)
refuse a whole upload, before anything is written.
"""

from __future__ import annotations

import math
import sqlite3
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, Sequence

from core.data.annotations import SPLITS, Annotation, Project, Task
from core.data.boxes import Box
from core.config import Limits
from core.data.diskfull import disk_full_message, is_disk_full
from core.data.formats._common import ANNOTATION_EXT
from core.data.formats.base import FormatError, Issue, ParsedImage, ParseResult, RawBox, UnsafeInputError
from core.data.formats.registry import FORMATS
from core.data.imaging import ImageDecodeError, ImageInfo
from core.data.sources import (DirSource, MemorySource, UnsafeArchiveError, ZipSource, is_image_path, is_unsafe_name,
                          system_kind)
from core.data.store import NewImage, Store, sha256_bytes
from core.data.truncated import probe_or_repair

Progress = Callable[[float, str], None]
IMAGES_ONLY = "images"  # pseudo-format: a folder/zip of images without annotations
MAX_IGNORED_ROWS = 10  # more ignored files than this are reported in groups (one row per reason)
IGNORED_EXAMPLES = 3  # file names shown in a group's row
SYSTEM_REASON = "hidden files that macOS or Windows add to folders and zips: not part of the dataset"


@dataclass
class ImportReport:
    """What an import did: counts, classes, and every skipped/repaired/ignored item with its reason.

    Files that are neither photos nor label files are ``issues`` with action ``"ignored"``
    (one row per file, or per reason with a count and examples when there are many);
    ``files_ignored`` counts them file by file.
    """

    format: str = ""
    images_added: int = 0
    images_existing: int = 0
    images_unlabelled: int = 0
    boxes_added: int = 0
    labels_added: int = 0
    files_ignored: int = 0
    classes: list[str] = field(default_factory=list)
    classes_added: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    refused: str | None = None
    sources: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.refused is None

    @property
    def skipped(self) -> int:
        return sum(1 for i in self.issues if i.action in ("skipped", "refused"))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["issues"] = self.issues_table()
        d["skipped"] = self.skipped
        d["ok"] = self.ok
        return d

    def issues_table(self) -> list[dict]:
        return [{"item": i.item, "reason": i.reason, "action": i.action} for i in self.issues]

    def merge(self, other: "ImportReport") -> "ImportReport":
        """Combine the report of another source into this one."""
        if other.format and other.format not in self.format.split("+"):
            self.format = other.format if not self.format else f"{self.format}+{other.format}"
        for name in ("images_added", "images_existing", "images_unlabelled", "boxes_added", "labels_added",
                     "files_ignored"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.classes += [c for c in other.classes if c not in self.classes]
        self.classes_added += [c for c in other.classes_added if c not in self.classes_added]
        self.issues += other.issues
        self.sources += other.sources
        if other.refused:
            self.refused = other.refused if not self.refused else f"{self.refused}; {other.refused}"
        return self


def detect_format(source, task: Task | str | None = None) -> str:
    """The best-fitting format for ``source`` (restricted to ``task`` when given).

    A source with images but no recognisable annotations is ``"images"`` (imported
    unlabelled). Raises FormatError when nothing fits.
    """
    best, score = None, 0.0
    for name, mod in FORMATS.items():
        if task is not None and Task(task).value not in mod.TASKS:
            continue
        s = float(mod.detect(source))
        if s > score:
            best, score = name, s
    if best and score >= 0.3:
        return best
    if any(is_image_path(f) for f in source.files()):
        return IMAGES_ONLY
    raise FormatError(f"{source.name}: no images or known annotation files found")


# -- files nobody used -----------------------------------------------------------
def ignored_reason(path: str, fmt: str) -> str:
    """Why the import left ``path`` out, in plain words (``fmt``: the format that was read)."""
    ext = PurePosixPath(path).suffix.lower()
    if ext in ANNOTATION_EXT:
        mod = FORMATS.get(fmt)
        how = f"the labels were read as {mod.TITLE}" if mod else "no labels were recognised"
        return f"not a photo or a label file this import could read ({ext} — {how})"
    return f"not a photo or a label file ({ext})" if ext else "not a photo or a label file"


def _named_file(item: str, files: set[str]) -> str | None:
    """The file of ``files`` a report item names (``a.xml``, ``a.xml#object2``, ``a.csv:12``), if any."""
    head = item.split("#", 1)[0]
    for cand in (item, head, head.rsplit(":", 1)[0]):
        if cand in files:
            return cand
    return None


def _group_item(paths: list[str]) -> str:
    if len(paths) == 1:
        return paths[0]
    shown = ", ".join(paths[:IGNORED_EXAMPLES])
    more = f" and {len(paths) - IGNORED_EXAMPLES:,} more" if len(paths) > IGNORED_EXAMPLES else ""
    return f"{len(paths):,} files: {shown}{more}"


def ignored_issues(paths: Sequence[str], fmt: str, system: Sequence[str] = ()) -> list[Issue]:
    """Report rows for unused files: one per file, or per reason when there are many; system files in one."""
    rows: list[Issue] = []
    if len(paths) <= MAX_IGNORED_ROWS:
        rows = [Issue(p, ignored_reason(p, fmt), "ignored") for p in paths]
    else:
        by_reason: dict[str, list[str]] = {}
        for p in paths:
            by_reason.setdefault(ignored_reason(p, fmt), []).append(p)
        for reason, group in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
            rows.append(Issue(_group_item(group), reason, "ignored"))
    if system:
        kinds = ", ".join(dict.fromkeys(system_kind(p) for p in system))
        n = len(system)
        rows.append(Issue(f"{n:,} system file{'' if n == 1 else 's'} ({kinds})", SYSTEM_REASON, "ignored"))
    return rows


def _unused_files(source, groups: Iterable[str], parsed: ParseResult, issues: Iterable[Issue]) -> list[str]:
    """Files of ``source`` that are no image, no file of the format, and not already in the report."""
    files = set(source.files())
    taken = set(groups) | (parsed.used & files)
    for item in [i.item for i in issues] + [p.origin for p in parsed.images if p.origin]:
        f = _named_file(item, files)
        if f:
            taken.add(f)
    return sorted(f for f in files if f not in taken and not is_image_path(f))


# -- validation ---------------------------------------------------------------
def _reorient(raw: RawBox, info: ImageInfo, declared: tuple[int, int] | None) -> tuple[RawBox, bool]:
    """Map a pixel box written against the stored (un-rotated) pixels onto the upright image.

    Only when the annotation declares the raw size and the image carries a rotating
    EXIF orientation; returns the box and whether it was changed.
    """
    if raw.normalized or not declared or info.orientation in (1, 0):
        return raw, False
    rw, rh = (info.height, info.width) if info.orientation in (5, 6, 7, 8) else (info.width, info.height)
    if tuple(declared) != (rw, rh) or tuple(declared) == (info.width, info.height):
        return raw, False
    x0, y0, x1, y1 = raw.x_min, raw.y_min, raw.x_max, raw.y_max
    o = info.orientation
    if o == 2:
        x0, x1 = rw - x1, rw - x0
    elif o == 3:
        x0, y0, x1, y1 = rw - x1, rh - y1, rw - x0, rh - y0
    elif o == 4:
        y0, y1 = rh - y1, rh - y0
    elif o == 5:
        x0, y0, x1, y1 = y0, x0, y1, x1
    elif o == 6:
        x0, y0, x1, y1 = rh - y1, x0, rh - y0, x1
    elif o == 7:
        x0, y0, x1, y1 = rh - y1, rw - x1, rh - y0, rw - x0
    elif o == 8:
        x0, y0, x1, y1 = y0, rw - x1, y1, rw - x0
    return RawBox(raw.label, x0, y0, x1, y1, False), True


def to_box(raw: RawBox, width: int, height: int, item: str) -> tuple[Box | None, Issue | None]:
    """Validate a raw box against an upright ``width`` x ``height`` image.

    Returns (box, None) when fine, (clipped box, Issue clipped) when it stuck out,
    or (None, Issue skipped) for NaN, inverted or zero-area boxes.
    """
    vals = (raw.x_min, raw.y_min, raw.x_max, raw.y_max)
    if any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in vals):
        return None, Issue(item, f"box of '{raw.label}' has a non-numeric coordinate {vals}", "skipped")
    if raw.normalized:
        vals = (vals[0] * width, vals[1] * height, vals[2] * width, vals[3] * height)
    x0, y0, x1, y1 = vals
    if x1 < x0 or y1 < y0:
        return None, Issue(item, f"box of '{raw.label}' is inverted (max < min): "
                                 f"({x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f})", "skipped")
    box = Box(x0, y0, x1, y1)
    issue = None
    if not box.is_inside(width, height):
        clipped = box.clip(width, height)
        if clipped.area <= 0:
            return None, Issue(item, f"box of '{raw.label}' lies outside the {width}x{height} image", "skipped")
        issue = Issue(item, f"box of '{raw.label}' stuck out of the {width}x{height} image: "
                            f"({x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f}) clipped to the image", "clipped")
        box = clipped
    if box.area <= 0 or box.width < 1e-6 or box.height < 1e-6:
        return None, Issue(item, f"box of '{raw.label}' has zero area", "skipped")
    return box, issue


@dataclass
class _Checked:
    path: str
    filename: str
    image_id: str
    info: ImageInfo
    annotations: list[Annotation]
    split: str | None
    data: bytes | None = None  # the bytes to store when they differ from the source's (a repaired photo)


def _group(parsed: ParseResult, source) -> tuple[dict[str, list[ParsedImage]], list[Issue]]:
    """Group parsed entries by the image file they resolve to."""
    groups: dict[str, list[ParsedImage]] = {}
    issues: list[Issue] = []
    files = set(source.files())
    for p in parsed.images:
        path = p.ref if p.ref in files else source.resolve(p.ref, p.origin.split(":")[0] or None)
        if path is None:
            issues.append(Issue(p.origin or p.ref, f"annotation without image: '{p.ref}' not found", "skipped"))
            continue
        groups.setdefault(path, []).append(p)
    return groups, issues


def _check_image(source, path: str, entries: list[ParsedImage], limits: Limits,
                 task: Task) -> tuple[_Checked | None, list[Issue]]:
    issues: list[Issue] = []
    try:
        size = source.size(path)
        if size > limits.max_upload_bytes:
            return None, [Issue(path, f"file too large ({size / 1e6:.1f} MB)", "skipped")]
        original = source.read_bytes(path)
        info, data, repaired = probe_or_repair(original, limits)
    except ImageDecodeError as exc:
        return None, [Issue(path, str(exc), "skipped")]
    except (zipfile.BadZipFile, EOFError) as exc:
        return None, [Issue(path, f"the file is damaged inside the zip archive (details: {exc})", "skipped")]
    except (OSError, UnsafeArchiveError, KeyError) as exc:
        return None, [Issue(path, f"cannot read file: {exc}", "skipped")]
    except Exception as exc:  # noqa: BLE001 - one odd file must never abort the import
        return None, [Issue(path, f"the file could not be read as a photo (details: {type(exc).__name__}: "
                                  f"{exc})", "skipped")]
    if repaired:
        issues.append(Issue(path, repaired, "repaired"))
    anns: list[Annotation] = []
    split = None
    rotated = False
    for e in entries:
        split = e.split if e.split in SPLITS else split
        if e.label and task == Task.CLASSIFICATION:
            if not any(a.box is None for a in anns):
                anns.append(Annotation(label=e.label))
        for raw in e.boxes:
            raw2, changed = _reorient(raw, info, e.declared_size)
            rotated |= changed
            box, issue = to_box(raw2, info.width, info.height, e.origin or path)
            if issue:
                issues.append(issue)
            if box is not None:
                if task == Task.CLASSIFICATION:
                    continue
                anns.append(Annotation(label=raw.label, box=box))
    if rotated:
        issues.append(Issue(path, f"boxes were written for the un-rotated pixels; turned with the photo's "
                                  f"EXIF orientation {info.orientation}", "repaired"))
    if task == Task.CLASSIFICATION and any(e.boxes for e in entries) and not anns:
        issues.append(Issue(path, "boxes ignored: this is a classification project", "repaired"))
    filename = path.rsplit("/", 1)[-1]
    return _Checked(path, filename, sha256_bytes(data), info, anns, split,
                    data if data is not original else None), issues


def import_source(store: Store, project: Project, source, fmt: str | None = None,
                  limits: Limits | None = None, progress: Progress | None = None) -> ImportReport:
    """Import one Source into ``project``; refusals leave the store exactly as it was."""
    limits = limits or Limits.from_env()
    report = ImportReport(sources=[source.name])
    say = progress or (lambda f, m: None)
    try:
        fmt = fmt or detect_format(source, project.task)
        report.format = fmt
        if fmt == IMAGES_ONLY:
            parsed = ParseResult()
        else:
            if fmt not in FORMATS:
                raise FormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
            mod = FORMATS[fmt]
            if project.task.value not in mod.TASKS:
                raise FormatError(f"the {fmt} format does not carry {project.task.value} labels")
            say(0.02, f"Reading {fmt} annotations…")
            parsed = mod.parse(source, limits=limits)
    except (UnsafeInputError, UnsafeArchiveError) as exc:
        report.refused = f"Refused: {exc}"
        return report
    except FormatError as exc:
        report.refused = str(exc)
        return report
    report.issues += parsed.issues
    groups, issues = _group(parsed, source)
    report.issues += issues
    # images present in the source but named by no annotation are imported unlabelled
    for f in source.files():
        if is_image_path(f) and f not in groups:
            groups[f] = []

    checked: list[_Checked] = []
    paths = sorted(groups)
    total = max(len(paths), 1)

    def work(path: str):
        return _check_image(source, path, groups[path], limits, project.task)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for n, (c, iss) in enumerate(pool.map(work, paths), 1):
            report.issues += iss
            if c is not None:
                checked.append(c)
            if n % 50 == 0 or n == total:
                say(0.05 + 0.7 * n / total, f"Checked {n:,} of {total:,} images")

    unused = _unused_files(source, groups, parsed, report.issues)
    system = getattr(source, "system_files", lambda: [])()
    ignored = ignored_issues(unused, fmt, system)
    report.files_ignored = len(unused) + len(system)

    say(0.8, f"Saving {len(checked):,} images…")

    def items() -> Iterator[NewImage]:
        for c in checked:
            yield NewImage(data=c.data or source.read_bytes(c.path), filename=c.filename, width=c.info.width,
                           height=c.info.height, annotations=c.annotations, split=c.split)

    try:
        result = store.add_images(project, items())
    except (OSError, sqlite3.Error) as exc:
        if not is_disk_full(exc):
            raise
        report.refused = disk_full_message(f"importing {source.name}", f"details: {exc}")
        return report
    report.images_added = result.images_added
    report.images_existing = result.images_existing
    report.boxes_added = result.boxes_added
    report.labels_added = result.labels_added
    report.classes_added = result.classes_added
    new_ids = set(result.image_ids)
    report.images_unlabelled = result.unlabelled_added
    for name, twin in result.duplicates:
        report.issues.append(Issue(name, f"same pixels as {twin} (a renamed copy); kept as a separate image "
                                         "in the same split — check its boxes or delete one", "kept"))
    report.issues += ignored  # last: the files that were not used at all
    seen = list(parsed.classes)
    for c in checked:
        for a in c.annotations:
            if a.label not in seen:
                seen.append(a.label)
    report.classes = seen
    if new_ids:
        say(0.95, "Assigning train/val/test splits…")
        store.assign_splits(project, only_ids=new_ids)
    say(1.0, "Done")
    return report


def import_paths(store: Store, project: Project, paths: Sequence[str | Path], fmt: str | None = None,
                 limits: Limits | None = None, progress: Progress | None = None) -> ImportReport:
    """Import folders, zip files, or loose files (grouped together) from the machine's disk."""
    limits = limits or Limits.from_env()
    report = ImportReport()
    loose: dict[str, bytes] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            report.merge(import_source(store, project, DirSource(p), fmt, limits, progress))
        elif p.is_file() and p.suffix.lower() == ".zip":
            report.merge(_import_zip(store, project, p, p.name, fmt, limits, progress))
        elif p.is_file():
            loose[p.name] = p.read_bytes()
        else:
            report.issues.append(Issue(str(p), "no such file or folder", "skipped"))
    if loose:
        report.merge(import_source(store, project, MemorySource(loose, "files"), fmt, limits, progress))
    return report


def _import_zip(store: Store, project: Project, data, name: str, fmt: str | None, limits: Limits,
                progress: Progress | None) -> ImportReport:
    try:
        src = ZipSource(data, name=name, limits=limits)
    except UnsafeArchiveError as exc:
        return ImportReport(sources=[name], refused=str(exc))
    return import_source(store, project, src, fmt, limits, progress)


def import_uploads(store: Store, project: Project, files: Sequence[tuple[str, bytes]], fmt: str | None = None,
                   limits: Limits | None = None, progress: Progress | None = None) -> ImportReport:
    """Import uploaded files: each zip on its own, loose files (images + annotations) together."""
    limits = limits or Limits.from_env()
    report = ImportReport()
    loose: dict[str, bytes] = {}
    for name, data in files:
        if len(data) > limits.max_upload_bytes:
            report.issues.append(Issue(name, f"upload too large ({len(data) / 1e6:.1f} MB, limit "
                                             f"{limits.max_upload_bytes / 1e6:.0f} MB)", "refused"))
            continue
        if is_unsafe_name(name):
            report.issues.append(Issue(name, "refused file name: it points outside the upload folder", "skipped"))
            continue
        if name.lower().endswith(".zip"):
            report.merge(_import_zip(store, project, data, name, fmt, limits, progress))
        else:
            loose[name] = data
    if loose:
        try:
            src = MemorySource(loose, "uploaded files")
        except UnsafeArchiveError as exc:
            report.merge(ImportReport(refused=str(exc)))
        else:
            report.merge(import_source(store, project, src, fmt, limits, progress))
    return report
