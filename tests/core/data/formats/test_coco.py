"""COCO JSON parser/exporter on hand-made documents, including every bad case."""

from __future__ import annotations

import json

import pytest

from core.config import Limits
from core.data.formats import coco
from core.data.sources import DirSource, MemorySource
from tests.core.data.helpers import jpeg_bytes

IMG = jpeg_bytes(64, 48)


def doc(**over) -> dict:
    d = {
        "images": [{"id": 10, "file_name": "a.jpg", "width": 64, "height": 48},
                   {"id": 11, "file_name": "sub/b.jpg", "width": 8, "height": 8}],
        "annotations": [{"id": 1, "image_id": 10, "category_id": 42, "bbox": [1, 2, 10.5, 20]},
                        {"id": 2, "image_id": 10, "category_id": 7, "bbox": [0, 0, 5, 5], "iscrowd": 1}],
        "categories": [{"id": 42, "name": "dog"}, {"id": 7, "name": "cat"}],
    }
    d.update(over)
    return d


def src(d: dict | bytes, **extra) -> MemorySource:
    data = d if isinstance(d, bytes) else json.dumps(d).encode()
    return MemorySource({"images/a.jpg": IMG, "images/b.jpg": jpeg_bytes(8, 8),
                         "annotations/instances.json": data, **extra})


def test_parse_maps_arbitrary_category_ids_and_keeps_crowd():
    r = coco.parse(src(doc()))
    assert r.issues == []
    assert r.classes == ["cat", "dog"]  # category id order
    got = {i.ref: i for i in r.images}
    a = got["images/a.jpg"]
    assert a.declared_size == (64, 48) and a.origin == "annotations/instances.json"
    assert [(b.label, b.x_min, b.y_min, b.x_max, b.y_max) for b in a.boxes] == [
        ("dog", 1, 2, 11.5, 22), ("cat", 0, 0, 5, 5)]
    assert got["images/b.jpg"].boxes == []  # image entry without annotations is still listed


def test_bad_annotations_are_issues():
    anns = [
        {"id": 1, "image_id": 99, "category_id": 7, "bbox": [1, 2, 3, 4]},
        {"id": 2, "image_id": 10, "category_id": 5, "bbox": [1, 2, 3, 4]},
        {"id": 3, "image_id": 10, "category_id": 7, "bbox": [1, 2, 3]},
        {"id": 4, "image_id": 10, "category_id": 7, "bbox": [1, "x", 3, 4]},
        {"id": 5, "image_id": 10, "category_id": 7, "bbox": [1, 2, -3, 4]},
        {"id": 6, "image_id": 10, "category_id": 7, "bbox": [float("nan"), 2, 3, 4]},
        "junk",
        {"id": 8, "image_id": "10", "category_id": 7.0, "bbox": [1, 2, 3, 4]},
    ]
    r = coco.parse(src(doc(annotations=anns)))
    reasons = [i.reason for i in r.issues]
    assert "unknown image_id 99" in reasons[0]
    assert reasons[1].startswith("unknown class")
    assert all("is not four finite numbers" in x for x in reasons[2:4]) and "negative size" in reasons[4]
    assert "four finite numbers" in reasons[5] and "not an object" in reasons[6]
    assert [i.item for i in r.issues][:2] == ["annotations/instances.json#annotation 1",
                                              "annotations/instances.json#annotation 2"]
    assert len(r.issues) == 7 and all(i.action == "skipped" for i in r.issues)
    [a] = [i for i in r.images if i.ref == "images/a.jpg"]
    assert [(b.label, b.x_max) for b in a.boxes] == [("cat", 4)]  # ids as text/float still match


def test_missing_image_file_reported_once_with_its_boxes_dropped():
    d = doc()
    d["images"].append({"id": 12, "file_name": "gone.jpg"})
    d["annotations"].append({"id": 9, "image_id": 12, "category_id": 7, "bbox": [1, 1, 2, 2]})
    d["images"].append({"file_name": 5})
    r = coco.parse(src(d))
    assert [i.reason for i in r.issues] == ["annotation without image: 'gone.jpg' not found",
                                            "image entry without an id or file_name"]
    assert len(r.images) == 2


def test_malformed_oversized_and_other_json():
    r = coco.parse(src(b"{not json", **{"x/other.json": b'{"a": 1}'}))
    assert r.images == [] and len(r.issues) == 1 and "malformed JSON" in r.issues[0].reason
    big = json.dumps(doc()).encode() + b" " * 2000
    r = coco.parse(src(big), limits=Limits(max_annotation_bytes=1000))
    assert r.images == [] and r.issues[0].item == "annotations/instances.json"
    assert "too large" in r.issues[0].reason and r.issues[0].action == "skipped"


def test_deeply_nested_json_skips_only_that_file():
    r = coco.parse(src(b"[" * 100_000 + b"]" * 100_000))
    assert r.images == [] and [(i.item, i.action) for i in r.issues] == [("annotations/instances.json", "skipped")]
    assert "nested too deeply" in r.issues[0].reason


def test_splits_from_image_key_then_file_name():
    d = doc()
    d["images"][0]["split"] = "validation"
    r = coco.parse(MemorySource({"images/a.jpg": IMG, "images/b.jpg": jpeg_bytes(8, 8),
                                 "instances_train2017.json": json.dumps(d).encode()}))
    assert {i.ref: i.split for i in r.images} == {"images/a.jpg": "val", "images/b.jpg": "train"}


def test_detect():
    assert coco.detect(src(doc())) > 0.9
    assert coco.detect(MemorySource({"a.json": b'{"a": [1]}', "a.jpg": IMG})) == 0
    assert coco.detect(MemorySource({"a.jpg": IMG})) == 0


def test_export_then_parse(tmp_path):
    from core.data.annotations import Annotation, ImageRecord
    from core.data.boxes import Box
    from core.data.formats.base import ExportItem

    rec = ImageRecord("ab" * 32, "p.jpg", 64, 48, "test", (Annotation("cat", Box(1.254, 2, 30, 40)),
                                                          Annotation("new", Box(0, 0, 64, 48))))
    items = [ExportItem(rec, lambda: IMG), ExportItem(ImageRecord("cd" * 32, "q.jpg", 8, 8), lambda: IMG)]
    coco.export(items, ["dog", "cat"], tmp_path)
    d = json.loads((tmp_path / "annotations.json").read_text())
    assert [c["name"] for c in d["categories"]] == ["dog", "cat", "new"]
    r = coco.parse(DirSource(tmp_path))
    assert r.issues == [] and r.classes == ["dog", "cat", "new"]
    got = {i.ref: i for i in r.images}
    a = got[f"images/{items[0].export_name}"]
    assert a.split == "test" and a.declared_size == (64, 48)
    assert [(b.label, round(b.x_min, 2), b.x_max, b.y_max) for b in a.boxes] == [
        ("cat", 1.25, 30, 40), ("new", 0, 64, 48)]
    assert got[f"images/{items[1].export_name}"].boxes == []
