"""Generators of every bad input the studio must survive, each beside good files (real raccoon photos).

A ``Case`` builds the uploads of one import: the good dataset of its format plus one bad thing.
``item`` is what the report must name (an issue's file, or the refusal of an archive);
``actions`` the acceptable report actions. Archive-level dangers (``archive=True``) are a
separate upload next to the good one: that upload is refused, the good one imported.
"""

from __future__ import annotations

import functools
import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image

from tests.conftest import RACCOON
from tests.core.training.detection.helpers import voc_boxes

GOOD_N = (1, 2, 3)  # raccoon-1..3: the good photos of every case
SKIP = ("skipped",)


@dataclass(frozen=True)
class Good:
    """A good dataset: its files, and the boxes each good photo (by file name) must end up with."""

    files: dict[str, bytes]
    boxes: dict[str, int]
    task: str = "detection"


@dataclass(frozen=True)
class Case:
    id: str
    fmt: str  # the good dataset's format: voc | coco | yolo | csv | folders
    bad: Callable[[Good], dict[str, bytes]]  # the bad files (may replace a good file's content)
    item: str  # the report must name this (issue item or refusal), with a reason
    actions: tuple[str, ...] = SKIP
    archive: bool = False  # a whole bad upload beside the good one (refused)
    loose: bool = False  # the bad files are loose uploads (not inside the dataset's zip)
    limits: dict = field(default_factory=dict)
    extra_good: dict[str, int] = field(default_factory=dict)  # good photos the bad files come with


# -- the real photos -----------------------------------------------------------------------
@functools.cache
def photo(n: int) -> bytes:
    return (RACCOON / "images" / f"raccoon-{n}.jpg").read_bytes()


@functools.cache
def boxes(n: int) -> list[tuple[str, float, float, float, float]]:
    return voc_boxes(RACCOON / "annotations" / f"raccoon-{n}.xml")


@functools.cache
def size(n: int) -> tuple[int, int]:
    return Image.open(io.BytesIO(photo(n))).size


EXTRA = 10  # raccoon-10: a good photo that arrives with a bad label file


def voc_xml(filename: str, objects: str, w: int = 650, h: int = 417, head: str = "") -> bytes:
    return (f'<?xml version="1.0"?>{head}<annotation><filename>{filename}</filename><size><width>{w}</width>'
            f"<height>{h}</height><depth>3</depth></size>{objects}</annotation>").encode()


def obj(name="raccoon", x0="10", y0="10", x1="100", y1="100") -> str:
    return (f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
            f"<ymax>{y1}</ymax></bndbox></object>")


# -- good datasets, one per format ------------------------------------------------------------
def good(fmt: str) -> Good:
    counts = {f"raccoon-{n}.jpg": len(boxes(n)) for n in GOOD_N}
    imgs = {f"images/raccoon-{n}.jpg": photo(n) for n in GOOD_N}
    if fmt == "voc":
        xml = {f"annotations/raccoon-{n}.xml": (RACCOON / "annotations" / f"raccoon-{n}.xml").read_bytes()
               for n in GOOD_N}
        return Good(imgs | xml, counts)
    if fmt == "coco":
        return Good(imgs | {"annotations.json": json.dumps(coco_doc()).encode()}, counts)
    if fmt == "yolo":
        labels = {}
        for n in GOOD_N:
            w, h = size(n)
            labels[f"labels/raccoon-{n}.txt"] = "".join(
                f"0 {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}\n"
                for _, x0, y0, x1, y1 in boxes(n)).encode()
        return Good(imgs | labels | {"classes.txt": b"raccoon\n"}, counts)
    if fmt == "csv":
        rows = ["filename,width,height,class,xmin,ymin,xmax,ymax"]
        for n in GOOD_N:
            w, h = size(n)
            rows += [f"raccoon-{n}.jpg,{w},{h},{lbl},{x0:g},{y0:g},{x1:g},{y1:g}" for lbl, x0, y0, x1, y1 in boxes(n)]
        return Good(imgs | {"labels.csv": ("\n".join(rows) + "\n").encode()}, counts)
    if fmt == "folders":
        files = {f"{'ab'[n % 2]}/raccoon-{n}.jpg": photo(n) for n in GOOD_N}
        return Good(files, {f"raccoon-{n}.jpg": 0 for n in GOOD_N}, task="classification")
    raise ValueError(fmt)


def coco_doc(extra_images=(), extra_annotations=()) -> dict:
    images, anns = [], []
    for n in GOOD_N:
        w, h = size(n)
        images.append({"id": n, "file_name": f"raccoon-{n}.jpg", "width": w, "height": h})
        for lbl, x0, y0, x1, y1 in boxes(n):
            anns.append({"id": len(anns) + 1, "image_id": n, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0]})
    images += list(extra_images)
    for a in extra_annotations:
        anns.append({"id": len(anns) + 1, **a})
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "raccoon"}]}


# -- bad photos ------------------------------------------------------------------------------------
@functools.cache
def png_120mp() -> bytes:
    """A real 120-megapixel PNG (1-bit, compresses to a few kB)."""
    buf = io.BytesIO()
    Image.new("1", (12000, 10000)).save(buf, "PNG")
    return buf.getvalue()


def png_forged_header(w: int = 60000, h: int = 60000) -> bytes:
    """A PNG whose header claims a huge size, with a tiny (wrong) body."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def cut(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


# -- archives ------------------------------------------------------------------------------------------
def zip_of(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _bomb() -> bytes:
    return zip_of({"images/a.jpg": photo(4), "big.xml": b"<a>" + b" " * 60_000_000 + b"</a>"})


BILLION_LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                  '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>')
XXE = '<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
YAML_BOMB = b"""a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
names: [*d,*d,*d,*d,*d,*d,*d,*d,*d]
"""


def _with_extra(label_path: str, label: bytes, photo_path: str = f"images/raccoon-{EXTRA}.jpg"):
    """A good photo (raccoon-10) with a bad label file."""
    return lambda g: {photo_path: photo(EXTRA), label_path: label}


def _extra_good() -> dict[str, int]:
    return {f"raccoon-{EXTRA}.jpg": 0}


def _coco_bad(**kw) -> Callable[[Good], dict[str, bytes]]:
    return lambda g: {"annotations.json": json.dumps(coco_doc(**kw)).encode()}


def _csv_bad(*rows: str) -> Callable[[Good], dict[str, bytes]]:
    return lambda g: {"labels.csv": g.files["labels.csv"] + ("\n".join(rows) + "\n").encode()}


def _voc(id_: str, xml: bytes, item: str = "annotations/evil.xml", actions=SKIP, **kw) -> Case:
    return Case(id_, "voc", _with_extra("annotations/evil.xml", xml), item, actions, extra_good=_extra_good(), **kw)


def _img(id_: str, name: str, data: bytes | Callable[[], bytes], actions=SKIP, fmt: str = "voc") -> Case:
    folder = "a" if fmt == "folders" else "images"
    path = f"{folder}/{name}"
    return Case(id_, fmt, lambda g: {path: data() if callable(data) else data}, path, actions)


F = f"raccoon-{EXTRA}.jpg"
CASES: list[Case] = [
    # -- Pascal VOC annotation files -------------------------------------------------------
    _voc("voc-dtd-harmless-internal", voc_xml(F, obj(), head="<!DOCTYPE annotation [<!ELEMENT annotation ANY>]>")),
    _voc("voc-dtd-harmless-system", voc_xml(F, obj(), head='<!DOCTYPE annotation SYSTEM "voc.dtd">')),
    _voc("voc-billion-laughs", voc_xml(F, obj(name="&lol3;"), head=BILLION_LAUGHS)),
    _voc("voc-xxe", voc_xml("&xxe;", obj(), head=XXE)),
    _voc("voc-malformed", voc_xml(F, obj())[:-20]),
    _voc("voc-binary-garbage", b"<annotation>\x00\xff\xfe" + bytes(range(256))),
    _voc("voc-too-large", voc_xml(F, obj() + "<!--" + "x" * 6000 + "-->"), limits={"max_annotation_bytes": 5000}),
    _voc("voc-object-without-bndbox", voc_xml(F, "<object><name>raccoon</name></object>"),
         item="annotations/evil.xml#object1"),
    _voc("voc-object-without-name", voc_xml(F, obj(name="")), item="annotations/evil.xml#object1"),
    _voc("voc-non-numeric-coordinate", voc_xml(F, obj(x0="left")), item="annotations/evil.xml#object1"),
    _voc("voc-nan-coordinate", voc_xml(F, obj(x1="nan")), item="annotations/evil.xml#object1"),
    _voc("voc-inverted-box", voc_xml(F, obj(x0="300", x1="20")), item="annotations/evil.xml"),
    _voc("voc-box-outside-image", voc_xml(F, obj(x0="700", y0="500", x1="900", y1="600")),
         item="annotations/evil.xml"),
    _voc("voc-box-sticking-out", voc_xml(F, obj(x1="5000")), item="annotations/evil.xml", actions=("clipped",)),
    _voc("voc-zero-area-box", voc_xml(F, obj(x0="50", x1="50")), item="annotations/evil.xml"),
    Case("voc-annotation-without-image", "voc", lambda g: {"annotations/evil.xml": voc_xml("ghost.jpg", obj())},
         "annotations/evil.xml"),
    Case("voc-second-xml-for-a-photo", "voc",
         lambda g: {"annotations/zz-copy.xml": g.files["annotations/raccoon-1.xml"]}, "annotations/zz-copy.xml"),
    # -- COCO JSON -------------------------------------------------------------------------------
    Case("coco-malformed-second-json", "coco", lambda g: {"more.json": b'{"images": [{"id": 1,'}, "more.json"),
    Case("coco-deeply-nested-json", "coco", lambda g: {"deep.json": b"[" * 100_000 + b"]" * 100_000}, "deep.json"),
    Case("coco-negative-bbox", "coco", _coco_bad(extra_annotations=[{"image_id": 1, "category_id": 1,
                                                                     "bbox": [10, 10, -5, 20]}]),
         "annotations.json#annotation"),
    Case("coco-nan-bbox", "coco", _coco_bad(extra_annotations=[{"image_id": 1, "category_id": 1,
                                                                "bbox": [float("nan"), 1, 2, 3]}]),
         "annotations.json#annotation"),
    Case("coco-text-bbox", "coco", _coco_bad(extra_annotations=[{"image_id": 2, "category_id": 1,
                                                                 "bbox": "10,10,20,20"}]),
         "annotations.json#annotation"),
    Case("coco-unknown-category", "coco", _coco_bad(extra_annotations=[{"image_id": 1, "category_id": 99,
                                                                        "bbox": [1, 1, 20, 20]}]),
         "annotations.json#annotation"),
    Case("coco-unknown-image-id", "coco", _coco_bad(extra_annotations=[{"image_id": 777, "category_id": 1,
                                                                        "bbox": [1, 1, 20, 20]}]),
         "annotations.json#annotation"),
    Case("coco-image-file-missing", "coco", _coco_bad(extra_images=[{"id": 50, "file_name": "ghost.jpg",
                                                                     "width": 10, "height": 10}]),
         "annotations.json#images"),
    # -- YOLO ------------------------------------------------------------------------------------------------
    Case("yolo-short-line", "yolo", _with_extra(f"labels/raccoon-{EXTRA}.txt", b"0 0.5\n"),
         f"labels/raccoon-{EXTRA}.txt", extra_good=_extra_good()),
    Case("yolo-class-out-of-range", "yolo", _with_extra(f"labels/raccoon-{EXTRA}.txt", b"7 0.5 0.5 0.2 0.2\n"),
         f"labels/raccoon-{EXTRA}.txt", extra_good=_extra_good()),
    Case("yolo-text-values", "yolo", _with_extra(f"labels/raccoon-{EXTRA}.txt", b"0 a b c d\n"),
         f"labels/raccoon-{EXTRA}.txt", extra_good=_extra_good()),
    Case("yolo-nan-values", "yolo", _with_extra(f"labels/raccoon-{EXTRA}.txt", b"0 nan 0.5 0.1 0.1\n"),
         f"labels/raccoon-{EXTRA}.txt", extra_good=_extra_good()),
    Case("yolo-label-without-image", "yolo", lambda g: {"labels/ghost.txt": b"0 0.5 0.5 0.1 0.1\n"},
         "labels/ghost.txt"),
    Case("yolo-yaml-alias-bomb", "yolo", lambda g: {"data.yaml": YAML_BOMB}, "data.yaml"),
    Case("yolo-malformed-yaml", "yolo", lambda g: {"data.yaml": b"names: [raccoon\n  - : :\n"}, "data.yaml"),
    # -- CSV -------------------------------------------------------------------------------------------------
    Case("csv-short-row", "csv", _csv_bad("raccoon-1.jpg,650,417,raccoon,1,2"), "labels.csv:"),
    Case("csv-text-coordinates", "csv", _csv_bad("raccoon-1.jpg,650,417,raccoon,a,b,c,d"), "labels.csv:"),
    Case("csv-nan-coordinates", "csv", _csv_bad("raccoon-2.jpg,650,417,raccoon,nan,1,20,20"), "labels.csv:"),
    Case("csv-row-without-image", "csv", _csv_bad("ghost.jpg,650,417,raccoon,1,1,20,20"), "labels.csv"),
    Case("csv-unreadable-second-csv", "csv", lambda g: {"notes.csv": b'\x00\xff"unterminated,\n\x00'},
         "notes.csv", actions=("skipped", "ignored")),
    # -- photos ------------------------------------------------------------------------------------------------
    _img("photo-empty", "empty.jpg", b""),
    _img("photo-text-named-jpg", "text.jpg", b"this is not an image at all"),
    _img("photo-jpeg-header-then-junk", "junk.jpg", b"\xff\xd8\xff\xe0garbage" * 8),
    _img("photo-jpeg-cut-short-mostly-missing", "cut25.jpg", lambda: cut(photo(5), 0.25)),
    _img("photo-jpeg-cut-short-usable", "cut80.jpg", lambda: cut(photo(6), 0.8), actions=("repaired",)),
    _img("photo-png-cut-short", "cut.png", lambda: cut(png_120mp(), 0.5)),
    _img("photo-120-megapixel-png", "huge.png", png_120mp),
    _img("photo-png-forged-huge-header", "forged.png", png_forged_header),
    _img("photo-class-folder-damaged", "broken.jpg", b"\xff\xd8\xff\xe0garbage" * 8, fmt="folders"),
    _img("photo-class-folder-empty", "empty.png", b"", fmt="folders"),
    # -- archives and uploads (refused whole; the good upload beside them is imported) -------------------------------
    Case("zip-slip", "voc", lambda g: {"evil.zip": zip_of({"images/a.jpg": photo(4), "../../escape.jpg": photo(5)})},
         "evil.zip", archive=True),
    Case("zip-absolute-path", "voc", lambda g: {"evil.zip": zip_of({"/etc/cron.d/x.jpg": photo(5)})},
         "evil.zip", archive=True),
    Case("zip-bomb", "voc", lambda g: {"evil.zip": _bomb()}, "evil.zip", archive=True),
    Case("zip-too-many-members", "voc",
         lambda g: {"evil.zip": zip_of({f"n/{i}.txt": b"x" for i in range(60)})}, "evil.zip", archive=True,
         limits={"max_zip_members": 50}),
    Case("zip-unpacks-too-large", "voc",
         lambda g: {"evil.zip": zip_of({"a.bin": b"\x00" * 300_000, "b.bin": b"\x00" * 300_000},
                                       zipfile.ZIP_STORED)},
         "evil.zip", archive=True, limits={"max_zip_total_bytes": 500_000}),
    Case("zip-not-a-zip", "voc", lambda g: {"evil.zip": b"PK\x03\x04 this is not really a zip"}, "evil.zip",
         archive=True),
    Case("upload-too-large", "voc", lambda g: {"huge.zip": b"\x00" * 1_500_000}, "huge.zip", actions=("refused",),
         archive=True, limits={"max_upload_bytes": 1_000_000}),
    Case("loose-name-leaves-folder", "voc", lambda g: {"../evil.jpg": photo(5)}, "../evil.jpg", loose=True),
    Case("loose-absolute-name", "voc", lambda g: {"/tmp/evil.jpg": photo(5)}, "/tmp/evil.jpg", loose=True),
]

