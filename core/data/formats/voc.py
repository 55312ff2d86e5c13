"""Pascal VOC XML: one ``<annotation>`` file per image, pixel corner boxes.

Parsing: every ``.xml`` file whose root is ``<annotation>`` gives one ParsedImage (its
objects as pixel RawBoxes, ``<size>`` as ``declared_size``). The image is found by
``<filename>``, then the basename of ``<path>``, then an image with the XML's stem;
without one the file is an Issue "annotation without image". Images with no XML are
*not* listed here: the importer imports them unlabelled. A split comes from
``ImageSets/Main/{train,val,test}.txt`` when present, else from a ``train/val/test``
folder in the path. A ``labels.txt`` / ``classes.txt`` next to the XML folders declares
the class order. The annotation XMLs, class lists and ``ImageSets`` lists are the
format's own files (``ParseResult.used``); other XML files are left for the importer's report.

XML is parsed with defusedxml: a file with a DTD (even a harmless one), entity
declarations (billion laughs) or external entities is skipped with its reason, as is a
malformed file; only that file's labels are lost (its photo is imported unlabelled) and
every other file of the import is read.

Export: ``images/<name>``, ``annotations/<stem>.xml`` (integers when the coordinate is
whole, else 2 decimals), ``ImageSets/Main/<split>.txt`` and ``labels.txt``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Sequence
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from core.config import Limits
from core.data.formats import _common as C
from core.data.formats.base import ExportItem, Issue, ParsedImage, ParseResult, RawBox, UnsafeInputError

NAME = "voc"
TITLE = "Pascal VOC"
TASKS = ("detection",)


def _xml_files(source) -> list[str]:
    return [f for f in source.files() if f.lower().endswith(".xml")]


def detect(source) -> float:
    """High when .xml files with an ``<annotation>`` root are present."""
    xmls = _xml_files(source)
    if not xmls:
        return 0.0
    sample = xmls[:5]
    hits = sum(1 for f in sample if b"<annotation" in C.peek(source, f, 4096, 64 * 1024 * 1024))
    if not hits:
        return 0.0
    return 0.6 + 0.35 * hits / len(sample)


def _unsafe(exc: Exception, data: bytes) -> UnsafeInputError:
    kind = type(exc).__name__
    upper = data.upper()
    if b"<!ENTITY" in upper and (b"SYSTEM" in upper or b"PUBLIC" in upper):
        what = "declares an external entity (it could read files or reach the network)"
    elif b"<!ENTITY" in upper or kind == "EntitiesForbidden":
        what = "declares entities (possible 'billion laughs' entity expansion)"
    elif kind == "ExternalReferenceForbidden":
        what = "references an external entity (it could read files or reach the network)"
    elif kind == "DTDForbidden":
        what = "declares a DTD (<!DOCTYPE …>)"
    else:
        what = f"uses a forbidden XML feature ({kind})"
    return UnsafeInputError(f"refused, the XML {what}: annotation files must be plain XML without DTDs "
                            "or entities, so this file's labels were not read")


def _parse_xml(data: bytes) -> Element:
    """The XML's root; UnsafeInputError for DTDs and entities (the caller skips that one file)."""
    try:
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise _unsafe(exc, data) from None


def _text(el: Element | None, tag: str) -> str | None:
    if el is None:
        return None
    child = el.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _image_sets(source, limits: Limits, issues: list[Issue], used: set[str]) -> dict[str, str]:
    """stem -> split from ImageSets/Main/{train,val,test}.txt (trainval only fills gaps).

    Every ``.txt`` under ``ImageSets`` (also the per-class lists) is added to ``used``.
    """
    out: dict[str, str] = {}
    files = [f for f in source.files() if "/imagesets/" in ("/" + f.lower())]
    used.update(f for f in files if f.lower().endswith(".txt"))
    order = ("train", "val", "valid", "test", "trainval")
    for want in order:
        for f in files:
            p = PurePosixPath(f)
            if p.suffix.lower() != ".txt" or p.stem.lower() != want:
                continue
            text = C.read_text(source, f, limits, issues)
            split = "train" if want == "trainval" else C.norm_split(want)
            for line in (text or "").splitlines():
                stem = line.strip().split()[0] if line.strip() else ""
                if stem and split:
                    out.setdefault(stem.lower(), split)
    return out


def parse(source, limits: Limits | None = None) -> ParseResult:
    """Parse every VOC XML in ``source`` (see the module docstring for the rules)."""
    limits = C.limits_for(source, limits)
    result = ParseResult()
    issues = result.issues
    stems = C.stem_index(source.files())
    sets = _image_sets(source, limits, issues, result.used)
    result.classes = C.declared_classes(source, limits, issues, result.used)
    seen: dict[str, str] = {}
    for path in _xml_files(source):
        data = C.read_data(source, path, limits, issues)
        if data is None:
            continue
        try:
            root = _parse_xml(data)
        except ParseError as exc:
            issues.append(Issue(path, f"malformed XML: {exc}", "skipped"))
            continue
        except UnsafeInputError as exc:
            issues.append(Issue(path, str(exc), "skipped"))
            continue
        if root.tag != "annotation":
            continue  # some other XML file, not ours
        result.used.add(path)
        ref = _resolve(source, root, path, stems)
        if ref is None:
            name = _text(root, "filename") or _text(root, "path") or PurePosixPath(path).stem
            issues.append(Issue(path, f"annotation without image: '{name}' not found", "skipped"))
            continue
        if ref in seen:
            issues.append(Issue(path, f"'{ref}' is already described by {seen[ref]}: this file is ignored",
                                "skipped"))
            continue
        seen[ref] = path
        img = ParsedImage(ref=ref, origin=path)
        size = root.find("size")
        w, h = C.to_float(_text(size, "width")), C.to_float(_text(size, "height"))
        if w and h and w > 0 and h > 0:
            img.declared_size = (int(w), int(h))
        img.split = sets.get(PurePosixPath(ref).stem.lower()) or C.split_from_path(path) \
            or C.split_from_path(ref)
        for n, obj in enumerate(root.findall("object"), 1):
            item = f"{path}#object{n}"
            label = _text(obj, "name")
            if not label:
                issues.append(Issue(item, "object without a <name>", "skipped"))
                continue
            bb = obj.find("bndbox")
            if bb is None:
                issues.append(Issue(item, f"object '{label}' has no <bndbox>", "skipped"))
                continue
            raw = [_text(bb, t) for t in ("xmin", "ymin", "xmax", "ymax")]
            vals = [C.to_float(v) for v in raw]
            if any(v is None for v in vals):
                issues.append(Issue(item, f"box of '{label}' has a missing or non-numeric coordinate "
                                          f"(xmin, ymin, xmax, ymax = {', '.join(str(r) for r in raw)})",
                                    "skipped"))
                continue
            img.boxes.append(RawBox(label, *vals))  # type: ignore[arg-type]
        result.images.append(img)
    return result


def _resolve(source, root: Element, path: str, stems: dict[str, list[str]]) -> str | None:
    for name in (_text(root, "filename"), _text(root, "path")):
        if name:
            hit = source.resolve(name, relative_to=path)
            if hit and C.is_image_path(hit):
                return hit
    fname = _text(root, "filename")
    for stem in ([PurePosixPath(fname.replace("\\", "/")).stem.lower()] if fname else []) + [
            PurePosixPath(path).stem.lower()]:
        hits = stems.get(stem, [])
        if len(hits) == 1:
            return hits[0]
    return None


# -- export -------------------------------------------------------------------
def to_xml(item: ExportItem, folder: str = "images") -> bytes:
    """The VOC XML of one image."""
    rec = item.record
    ann = Element("annotation")
    SubElement(ann, "folder").text = folder
    SubElement(ann, "filename").text = item.export_name
    SubElement(ann, "path").text = f"{folder}/{item.export_name}"
    SubElement(SubElement(ann, "source"), "database").text = "Edge TPU Retraining Studio"
    size = SubElement(ann, "size")
    SubElement(size, "width").text = str(rec.width)
    SubElement(size, "height").text = str(rec.height)
    SubElement(size, "depth").text = "3"
    SubElement(ann, "segmented").text = "0"
    for a in rec.boxes:
        obj = SubElement(ann, "object")
        SubElement(obj, "name").text = a.label
        SubElement(obj, "pose").text = "Unspecified"
        SubElement(obj, "truncated").text = "0"
        SubElement(obj, "difficult").text = "0"
        bb = SubElement(obj, "bndbox")
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), a.box.as_tuple()):  # type: ignore[union-attr]
            SubElement(bb, tag).text = C.fmt_num(v)
    _indent(ann)
    return tostring(ann, encoding="utf-8")


def _indent(el: Element, level: int = 0) -> None:
    pad = "\n" + "\t" * level
    if len(el):
        el.text = pad + "\t"
        for child in el:
            _indent(child, level + 1)
        child.tail = pad  # noqa: B023 - last child closes the parent
    if level and not el.tail:
        el.tail = pad


def export(items: Sequence[ExportItem], classes: Sequence[str], out_dir: Path) -> list[Path]:
    """Write ``images/``, ``annotations/*.xml``, ``ImageSets/Main/<split>.txt`` and ``labels.txt``."""
    out_dir = Path(out_dir)
    written = C.write_images(items, out_dir / "images")
    splits: dict[str, list[str]] = {}
    for it in items:
        stem = PurePosixPath(it.export_name).stem
        written.append(C.write_bytes(out_dir / "annotations" / f"{stem}.xml", to_xml(it)))
        splits.setdefault(C.item_split(it), []).append(stem)
    for split, stems in splits.items():
        written.append(C.write_text(out_dir / "ImageSets" / "Main" / f"{split}.txt", "\n".join(stems) + "\n"))
    written.append(C.write_text(out_dir / "labels.txt", "".join(f"{c}\n" for c in classes)))
    return written
