"""COCO JSON (detection): ``images``, ``annotations`` (bbox = x, y, w, h pixels), ``categories``.

Parsing: every ``.json`` file holding ``images`` and ``annotations`` lists. Category ids
may be anything (mapped by id to name, classes in id order). Each image entry is
resolved by ``file_name`` relative to the JSON (also ``../images/<name>`` and by
basename); an entry without a file is an Issue "annotation without image". Annotations
whose ``image_id`` or ``category_id`` is unknown, or whose bbox is not four finite
numbers with non-negative size, are Issues; crowd annotations (``iscrowd``) are kept
as boxes. Image entries without annotations are listed with no boxes. A split comes
from the image entry's ``split`` key (written by our export), else the JSON's name
(``instances_train2017.json``) or folder (``valid/_annotations.coco.json``).
JSON files larger than ``Limits.max_annotation_bytes`` are skipped with an Issue; the COCO
JSONs are the format's own files (``ParseResult.used``), other JSONs are left for the
importer's report.

Export: ``annotations.json`` (ids 1..N, categories 1..K in class order, bbox rounded to
0.01 px) and ``images/``.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Sequence

from core.config import Limits
from core.data.formats import _common as C
from core.data.formats.base import ExportItem, Issue, ParsedImage, ParseResult, RawBox

NAME = "coco"
TITLE = "COCO"
TASKS = ("detection",)
ANNOTATION_FILE = "annotations.json"


def _json_files(source) -> list[str]:
    return [f for f in source.files() if f.lower().endswith(".json")]


def detect(source) -> float:
    """High when a .json file has ``"images"`` and ``"annotations"`` keys."""
    best = 0.0
    for f in _json_files(source)[:10]:
        head = C.peek(source, f, 1 << 30, Limits().max_annotation_bytes)
        if b'"images"' in head and b'"annotations"' in head:
            best = max(best, 0.95 if b'"categories"' in head else 0.7)
    return best


def _load(source, path: str, limits: Limits, issues: list[Issue]) -> dict | None:
    data = C.read_data(source, path, limits, issues)
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except RecursionError:
        issues.append(Issue(path, "refused, the JSON is nested too deeply (a parser attack): this file's "
                                  "labels were not read", "skipped"))
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        issues.append(Issue(path, f"malformed JSON: {exc}", "skipped"))
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("annotations"), list):
        return None  # some other JSON file
    return doc


def parse(source, limits: Limits | None = None) -> ParseResult:
    """Parse every COCO JSON in ``source`` (see the module docstring)."""
    limits = C.limits_for(source, limits)
    result = ParseResult()
    issues = result.issues
    for path in _json_files(source):
        doc = _load(source, path, limits, issues)
        if doc is not None:
            result.used.add(path)
            _parse_doc(source, path, doc, result)
    return result


def _parse_doc(source, path: str, doc: dict, result: ParseResult) -> None:
    issues = result.issues
    cats: dict = {}
    raw_cats = doc.get("categories") if isinstance(doc.get("categories"), list) else []
    for c in raw_cats:
        if isinstance(c, dict) and "id" in c:
            name = str(c.get("name") if c.get("name") not in (None, "") else c["id"]).strip()
            cats[_key(c["id"])] = name
    def _order(k):
        return (0, float(k)) if C.to_float(k) is not None else (1, str(k))
    for k in sorted(cats, key=_order):
        if cats[k] not in result.classes:
            result.classes.append(cats[k])
    json_split = C.split_from_name(path)
    images: dict = {}
    for n, im in enumerate(doc["images"]):
        item = f"{path}#images[{n}]"
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            issues.append(Issue(item, "image entry without an id or file_name", "skipped"))
            continue
        ref = source.resolve(C.strip_url(im["file_name"]), relative_to=path)
        if ref is None or not C.is_image_path(ref):
            images[_key(im["id"])] = None
            issues.append(Issue(item, f"annotation without image: '{im['file_name']}' not found", "skipped"))
            continue
        p = ParsedImage(ref=ref, origin=path)
        w, h = C.to_float(im.get("width")), C.to_float(im.get("height"))
        if w and h and w > 0 and h > 0:
            p.declared_size = (int(w), int(h))
        p.split = C.norm_split(im.get("split")) if isinstance(im.get("split"), str) else None
        p.split = p.split or json_split or C.split_from_path(ref)
        images[_key(im["id"])] = p
        result.images.append(p)
    for n, a in enumerate(doc["annotations"]):
        item = f"{path}#annotations[{n}]"
        if not isinstance(a, dict):
            issues.append(Issue(item, "annotation is not an object", "skipped"))
            continue
        if "id" in a:
            item = f"{path}#annotation {a['id']}"
        iid = _key(a.get("image_id"))
        if iid not in images:
            issues.append(Issue(item, f"annotation refers to unknown image_id {a.get('image_id')!r}", "skipped"))
            continue
        img = images[iid]
        if img is None:
            continue  # its image is missing: reported once for the image entry
        cid = _key(a.get("category_id"))
        if cid not in cats:
            issues.append(Issue(item, f"unknown class: category_id {a.get('category_id')!r} "
                                      "is not in categories", "skipped"))
            continue
        label = cats[cid]
        bbox = a.get("bbox")
        vals = [C.to_float(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 else None
        if vals is None or any(v is None for v in vals):
            issues.append(Issue(item, f"box of '{label}' is not four finite numbers: {bbox!r}", "skipped"))
            continue
        x, y, w, h = vals  # type: ignore[misc]
        if w < 0 or h < 0:
            issues.append(Issue(item, f"box of '{label}' has a negative size: {bbox!r}", "skipped"))
            continue
        x1, y1 = x + w, y + h
        if img.declared_size:  # float noise of x + w past the edge (written rounded) stays inside
            dw, dh = img.declared_size
            x1 = dw if dw < x1 <= dw + 1e-6 else x1
            y1 = dh if dh < y1 <= dh + 1e-6 else y1
        img.boxes.append(RawBox(label, x, y, x1, y1))


def _key(v):
    """Ids compare as text so 1, "1" and 1.0 match."""
    f = C.to_float(v)
    if f is not None and f == int(f):
        return str(int(f))
    return str(v)


# -- export -------------------------------------------------------------------
def to_document(items: Sequence[ExportItem], classes: Sequence[str]) -> dict:
    """The COCO dictionary for ``items``."""
    cat_id = {c: i + 1 for i, c in enumerate(classes)}
    images, anns = [], []
    for n, it in enumerate(items, 1):
        rec = it.record
        images.append({"id": n, "file_name": it.export_name, "width": rec.width, "height": rec.height,
                       "split": C.item_split(it)})
        for a in rec.boxes:
            if a.label not in cat_id:
                cat_id[a.label] = len(cat_id) + 1
            x, y, x1, y1 = (round(v, 2) for v in a.box.as_tuple())  # type: ignore[union-attr]
            w, h = round(x1 - x, 2), round(y1 - y, 2)
            anns.append({"id": len(anns) + 1, "image_id": n, "category_id": cat_id[a.label],
                         "bbox": [x, y, w, h], "area": round(w * h, 2), "iscrowd": 0, "segmentation": []})
    return {
        "info": {"description": "Exported by the Edge TPU Retraining Studio", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [{"id": i, "name": c, "supercategory": "none"} for c, i in cat_id.items()],
    }


def export(items: Sequence[ExportItem], classes: Sequence[str], out_dir: Path) -> list[Path]:
    """Write ``annotations.json`` and ``images/``."""
    out_dir = Path(out_dir)
    written = C.write_images(items, out_dir / "images")
    doc = to_document(items, classes)
    written.append(C.write_text(out_dir / ANNOTATION_FILE, json.dumps(doc, ensure_ascii=False)))
    return written
