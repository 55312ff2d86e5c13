"""CSV parser/exporter: the Coral/AutoML and plain (raccoon_labels.csv) dialects, classification CSVs."""

from __future__ import annotations

import pytest

from core.data.formats import csv as fcsv
from core.data.sources import DirSource, MemorySource
from tests.core.data.helpers import jpeg_bytes

IMG = jpeg_bytes(64, 48)


def box(b):
    return (b.label, *(round(v, 6) for v in (b.x_min, b.y_min, b.x_max, b.y_max)), b.normalized)


def test_coral_dialect():
    text = (b"TRAIN,gs://bucket/data/a.jpg,cat,0.1,0.2,,,0.5,0.6,,\n"
            b"VALIDATION,gs://bucket/data/b.jpg,dog,0.1,0.2,0.5,0.2,0.5,0.6,0.1,0.6\n"
            b"TEST,c.jpg\n"
            b"UNASSIGNED,a.jpg,cat,0.0,0.0,,,1.0,1.0000001,,\n"
            b"train,d.jpg,cat,0.1,0.2,0.3,0.4\n")
    src = MemorySource({"imgs/a.jpg": IMG, "imgs/b.jpg": IMG, "imgs/c.jpg": IMG, "imgs/d.jpg": IMG,
                        "automl.csv": text})
    assert fcsv.detect(src) > 0.8
    r = fcsv.parse(src)
    assert r.issues == [] and r.classes == ["cat", "dog"]
    got = {i.ref: i for i in r.images}
    assert [box(b) for b in got["imgs/a.jpg"].boxes] == [("cat", 0.1, 0.2, 0.5, 0.6, True),
                                                        ("cat", 0, 0, 1, 1, True)]
    assert got["imgs/a.jpg"].split == "train" and got["imgs/a.jpg"].origin == "automl.csv:1"
    assert [box(b) for b in got["imgs/b.jpg"].boxes] == [("dog", 0.1, 0.2, 0.5, 0.6, True)]
    assert got["imgs/b.jpg"].split == "val"
    assert got["imgs/c.jpg"].boxes == [] and got["imgs/c.jpg"].split == "test"
    assert [box(b) for b in got["imgs/d.jpg"].boxes] == [("cat", 0.1, 0.2, 0.3, 0.4, True)]


def test_coral_bad_rows_and_missing_images():
    text = (b"TRAIN,a.jpg,cat,0.1,x,,,0.5,0.6,,\n"     # 1 text
            b"TRAIN,a.jpg,cat,0.1,,,,0.5,0.6,,\n"      # 2 half vertex
            b"TRAIN,a.jpg,,0.1,0.2,,,0.5,0.6,,\n"      # 3 no label
            b"TRAIN,gone.jpg,cat,0.1,0.2,,,0.5,0.6,,\n"  # 4 missing image
            b"TRAIN,gone.jpg,cat,0.1,0.2,,,0.5,0.6,,\n"  # 5 same missing image: one issue
            b"PREDICT,a.jpg,cat\n"                     # 6 unknown set
            b"TRAIN,a.jpg,cat,0.1,0.2,,,0.5,0.6,,,1,2\n"  # 7 too many values
            b"TRAIN,a.jpg,cat,nan,0.2,,,0.5,0.6,,\n"   # 8 NaN
            b"TRAIN,a.jpg,cat,0.6,0.7,,,0.5,0.6,,\n")  # 9 inverted: passed to the importer
    r = fcsv.parse(MemorySource({"a.jpg": IMG, "x.csv": text}))
    items = [i.item for i in r.issues]
    assert items == ["x.csv:1", "x.csv:2", "x.csv:3", "x.csv:6", "x.csv:7", "x.csv:8", "x.csv:4"]
    assert "gone.jpg" in r.issues[-1].reason and "(2 rows)" in r.issues[-1].reason
    assert "unknown set" in r.issues[3].reason
    assert [box(b) for b in r.images[0].boxes] == [("cat", 0.6, 0.7, 0.5, 0.6, True)]


def test_coral_classification_rows():
    r = fcsv.parse(MemorySource({"a.jpg": IMG, "b.jpg": IMG, "x.csv": b"TRAIN,a.jpg,cat\nTEST,b.jpg,dog\n"
                                                                      b"TRAIN,a.jpg,dog\n"}))
    assert {i.ref: (i.label, i.split) for i in r.images} == {"a.jpg": ("cat", "train"), "b.jpg": ("dog", "test")}
    assert len(r.issues) == 1 and "second class" in r.issues[0].reason


RACCOON_CSV = b"""filename,width,height,class,xmin,ymin,xmax,ymax
raccoon-1.jpg,650,417,raccoon,81,88,522,408
raccoon-2.jpg,64,48,raccoon,10.5,20,30,40
raccoon-2.jpg,64,48,raccoon,1,2,3,4
"""


def test_plain_dialect_raccoon_labels_layout():
    src = MemorySource({"images/raccoon-1.jpg": IMG, "images/raccoon-2.jpg": IMG, "data/raccoon_labels.csv":
                        RACCOON_CSV})
    assert fcsv.detect(src) == pytest.approx(0.9)
    r = fcsv.parse(src)
    assert r.issues == [] and r.classes == ["raccoon"]
    got = {i.ref: i for i in r.images}
    assert got["images/raccoon-1.jpg"].declared_size == (650, 417)
    assert [box(b) for b in got["images/raccoon-2.jpg"].boxes] == [("raccoon", 10.5, 20, 30, 40, False),
                                                                  ("raccoon", 1, 2, 3, 4, False)]


def test_plain_dialect_bad_rows_and_normalised_values():
    text = (b"image_path,label,x_min,y_min,x_max,y_max,split\n"
            b"a.jpg,cat,0.1,0.2,0.5,0.6,valid\n"
            b"a.jpg,cat,0.1,,0.5,0.6,\n"
            b"a.jpg,,0.1,0.2,0.5,0.6,\n"
            b",cat,0.1,0.2,0.5,0.6,\n"
            b"b.jpg,,,,,,test\n"
            b"a.jpg,cat,inf,0.2,0.5,0.6,\n")
    r = fcsv.parse(MemorySource({"a.jpg": IMG, "b.jpg": IMG, "l.csv": text}))
    assert [i.item for i in r.issues] == ["l.csv:3", "l.csv:4", "l.csv:5", "l.csv:7"]
    assert "malformed box" in r.issues[0].reason and "without a class" in r.issues[1].reason
    got = {i.ref: i for i in r.images}
    assert [box(b) for b in got["a.jpg"].boxes] == [("cat", 0.1, 0.2, 0.5, 0.6, True)]
    assert got["a.jpg"].split == "val" and got["b.jpg"].boxes == [] and got["b.jpg"].split == "test"


def test_plain_classification_csv_and_semicolons():
    src = MemorySource({"x/a.jpg": IMG, "x/b.jpg": IMG, "labels.csv": b"filename;class\nx/a.jpg;cat\nb.jpg;dog\n"})
    assert fcsv.detect(src) == pytest.approx(0.8)
    r = fcsv.parse(src)
    assert {i.ref: i.label for i in r.images} == {"x/a.jpg": "cat", "x/b.jpg": "dog"} and r.issues == []


def test_unknown_csv_is_ignored():
    src = MemorySource({"a.jpg": IMG, "notes.csv": b"when,who\nmonday,me\n"})
    assert fcsv.detect(src) == 0
    assert fcsv.parse(src).images == []


@pytest.mark.parametrize("dialect", ["plain", "coral"])
def test_export_then_parse(tmp_path, dialect):
    from core.data.annotations import Annotation, ImageRecord
    from core.data.boxes import Box
    from core.data.formats.base import ExportItem

    rec = ImageRecord("ab" * 32, "p.jpg", 300, 200, "val", (Annotation("cat", Box(1.25, 2, 300, 200)),
                                                            Annotation("dog, big", Box(10, 20, 30, 40))))
    items = [ExportItem(rec, lambda: IMG), ExportItem(ImageRecord("cd" * 32, "q.jpg", 8, 8, "test"), lambda: IMG)]
    fcsv.export(items, ["cat", "dog, big"], tmp_path, dialect=dialect)
    r = fcsv.parse(DirSource(tmp_path))
    assert r.issues == []
    got = {i.ref: i for i in r.images}
    a = got[f"images/{items[0].export_name}"]
    scale = (300, 200, 300, 200) if dialect == "coral" else (1, 1, 1, 1)
    px = [(b.label, *(v * s for v, s in zip((b.x_min, b.y_min, b.x_max, b.y_max), scale))) for b in a.boxes]
    assert [p[0] for p in px] == ["cat", "dog, big"] and a.split == "val"
    assert all(abs(x - y) < 0.01 for x, y in zip(px[0][1:], (1.25, 2, 300, 200)))
    q = got[f"images/{items[1].export_name}"]
    assert q.boxes == [] and q.split == "test"


def test_classification_export(tmp_path):
    from core.data.annotations import Annotation, ImageRecord
    from core.data.formats.base import ExportItem

    items = [ExportItem(ImageRecord("ab" * 32, "p.jpg", 8, 8, "val", (Annotation("cat"),)), lambda: IMG),
             ExportItem(ImageRecord("cd" * 32, "q.jpg", 8, 8, "train"), lambda: IMG)]
    fcsv.export(items, ["cat"], tmp_path, task="classification")
    assert (tmp_path / "annotations.csv").read_text().splitlines()[0] == "filename,class,split"
    r = fcsv.parse(DirSource(tmp_path))
    assert {i.ref.split("/")[-1]: (i.label, i.split) for i in r.images} == {
        items[0].export_name: ("cat", "val"), items[1].export_name: (None, "train")}


def test_several_csvs_merge_repeats_count_once_and_file_names_give_splits():
    all_rows = RACCOON_CSV
    train = b"filename,width,height,class,xmin,ymin,xmax,ymax\nraccoon-1.jpg,650,417,raccoon,81,88,522,408\n"
    test = b"filename,width,height,class,xmin,ymin,xmax,ymax\nraccoon-2.jpg,64,48,raccoon,1,2,3,4\n"
    r = fcsv.parse(MemorySource({"images/raccoon-1.jpg": IMG, "images/raccoon-2.jpg": IMG,
                                 "data/raccoon_labels.csv": all_rows, "data/train_labels.csv": train,
                                 "data/test_labels.csv": test}))
    got = {i.ref: i for i in r.images}
    assert len(got["images/raccoon-1.jpg"].boxes) == 1 and len(got["images/raccoon-2.jpg"].boxes) == 2
    assert got["images/raccoon-1.jpg"].split == "train" and got["images/raccoon-2.jpg"].split == "test"
    assert sorted((i.item, i.action) for i in r.issues) == [("data/test_labels.csv", "repaired"),
                                                           ("data/train_labels.csv", "repaired")]
    assert "repeat those of data/raccoon_labels.csv" in r.issues[0].reason


def test_binary_csv_does_not_break_detection_or_parsing():
    src = MemorySource({"a.jpg": IMG, "x.csv": b"\x00\x01\x02,\x00\n\x00"})
    assert fcsv.detect(src) == 0
    r = fcsv.parse(src)
    assert r.images == [] and all(i.action == "skipped" for i in r.issues)
