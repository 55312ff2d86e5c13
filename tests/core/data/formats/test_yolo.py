"""YOLO parser/exporter: layouts, class-name files, and every kind of bad line."""

from __future__ import annotations

import pytest

from core.data.formats import yolo
from core.data.sources import DirSource, MemorySource
from tests.core.data.helpers import jpeg_bytes

IMG = jpeg_bytes(64, 48)


def corners(b):
    return tuple(round(v, 6) for v in (b.x_min, b.y_min, b.x_max, b.y_max))


def test_ultralytics_layout_with_data_yaml_dict_names():
    src = MemorySource({
        "images/train/a.jpg": IMG, "labels/train/a.txt": b"1 0.5 0.5 0.2 0.4\n0 0.25 0.25 0.5 0.5\n",
        "images/val/b.jpg": IMG, "labels/val/b.txt": b"",
        "images/test/c.jpg": IMG,
        "data.yaml": b"train: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n",
    })
    assert yolo.detect(src) > 0.8
    r = yolo.parse(src)
    assert r.issues == [] and r.classes == ["cat", "dog"]
    got = {i.ref: i for i in r.images}
    a = got["images/train/a.jpg"]
    assert a.split == "train" and a.origin == "labels/train/a.txt"
    assert [(b.label, b.normalized) for b in a.boxes] == [("dog", True), ("cat", True)]
    assert corners(a.boxes[0]) == (0.4, 0.3, 0.6, 0.7) and corners(a.boxes[1]) == (0, 0, 0.5, 0.5)
    assert got["images/val/b.jpg"].boxes == [] and got["images/val/b.jpg"].split == "val"
    assert got["images/test/c.jpg"].boxes == [] and got["images/test/c.jpg"].split == "test"


@pytest.mark.parametrize("names", [{"classes.txt": b"cat\ndog\n"}, {"obj.names": b"cat\ndog\n"},
                                   {"data.yaml": b"names: [cat, dog]\nnc: 2\n"}])
def test_labels_beside_images_and_name_files(names):
    r = yolo.parse(MemorySource({"a.jpg": IMG, "a.txt": b"1 0.5 0.5 1 1\n", **names}))
    assert r.classes == ["cat", "dog"] and r.issues == []
    assert r.images[0].boxes[0].label == "dog" and corners(r.images[0].boxes[0]) == (0, 0, 1, 1)


def test_bad_lines_are_issues_with_file_and_line():
    text = (b"0 0.5 0.5 0.2 0.2\n"   # 1 ok
            b"5 0.5 0.5 0.2 0.2\n"   # 2 unknown class
            b"0 0.5 0.5 0.2\n"       # 3 too few values
            b"0 a 0.5 0.2 0.2\n"     # 4 text
            b"0 nan 0.5 0.2 0.2\n"   # 5 NaN
            b"1.5 0.5 0.5 0.2 0.2\n"  # 6 class not whole
            b"\n"                     # 7 blank: fine
            b"0 0.5 0.5 -0.2 0.2\n"  # 8 negative size
            b"1 0.5 0.5 0.2 0.2 0.93\n"  # 9 trailing confidence: ok
            b"0 1.2 0.5 0.2 0.2\n"   # 10 outside: passed to the importer (clips)
            b"0 0.1 0.1 0.9 0.1 0.9 0.9\n")  # 11 polygon -> bbox (repaired)
    r = yolo.parse(MemorySource({"images/a.jpg": IMG, "labels/a.txt": text, "classes.txt": b"cat\ndog\n"}))
    by_line = {i.item.rsplit(":", 1)[1]: i for i in r.issues}
    assert sorted(by_line, key=int) == ["2", "3", "4", "5", "6", "8", "11"]
    assert by_line["2"].reason.startswith("unknown class") and by_line["2"].item == "labels/a.txt:2"
    assert "malformed" in by_line["3"].reason and "malformed" in by_line["4"].reason
    assert "NaN" in by_line["5"].reason and "whole number" in by_line["6"].reason
    assert "negative size" in by_line["8"].reason and by_line["11"].action == "repaired"
    boxes = r.images[0].boxes
    assert [b.label for b in boxes] == ["cat", "dog", "cat", "cat"]
    assert corners(boxes[2]) == (1.1, 0.4, 1.3, 0.6) and corners(boxes[3]) == (0.1, 0.1, 0.9, 0.9)


def test_without_names_classes_are_indices_and_orphans_reported():
    src = MemorySource({"images/a.jpg": IMG, "labels/a.txt": b"3 0.5 0.5 0.2 0.2\n",
                        "labels/ghost.txt": b"0 0.5 0.5 0.1 0.1\n", "README.txt": b"hello"})
    r = yolo.parse(src)
    assert r.images[0].boxes[0].label == "3"
    assert [(i.item, i.action) for i in r.issues] == [("upload", "repaired"), ("labels/ghost.txt", "skipped")]
    assert "annotation without image" in r.issues[1].reason


def test_malformed_yaml_falls_back_to_classes_txt():
    src = MemorySource({"a.jpg": IMG, "a.txt": b"0 0.5 0.5 0.2 0.2\n", "data.yaml": b"names: [a, b\n",
                        "classes.txt": b"x\n"})
    r = yolo.parse(src)
    assert r.classes == ["x"] and r.issues[0].item == "data.yaml" and "YAML" in r.issues[0].reason


def test_rounding_noise_at_the_edge_is_snapped():
    r = yolo.parse(MemorySource({"a.jpg": IMG, "a.txt": b"0 0.5000005 0.5 1.000001 1\n", "classes.txt": b"c\n"}))
    b = r.images[0].boxes[0]
    assert b.x_min == 0 and b.x_max == 1


def test_detect():
    assert yolo.detect(MemorySource({"a.jpg": IMG, "a.txt": b"0 0.5 0.5 0.2 0.2\n"})) == pytest.approx(0.6)
    assert yolo.detect(MemorySource({"a.jpg": IMG, "a.txt": b"some notes about the photo\n"})) == 0
    assert yolo.detect(MemorySource({"a.jpg": IMG})) == 0


def test_export_then_parse(tmp_path):
    import yaml

    from core.data.annotations import Annotation, ImageRecord
    from core.data.boxes import Box
    from core.data.formats.base import ExportItem

    rec = ImageRecord("ab" * 32, "p.jpg", 297, 199, "val", (Annotation("cat", Box(1.3, 2, 297, 199)),
                                                            Annotation("dog", Box(10, 20, 30, 40))))
    items = [ExportItem(rec, lambda: IMG), ExportItem(ImageRecord("cd" * 32, "q.jpg", 8, 8), lambda: IMG)]
    yolo.export(items, ["dog", "cat"], tmp_path)
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data["names"] == ["dog", "cat"] and data["train"] == "images/train" and data["val"] == "images/val"
    assert (tmp_path / "classes.txt").read_text() == "dog\ncat\n"
    r = yolo.parse(DirSource(tmp_path))
    assert r.issues == []
    got = {i.ref: i for i in r.images}
    a = got[f"images/val/{items[0].export_name}"]
    assert a.split == "val"
    px = [(b.label, b.x_min * 297, b.y_min * 199, b.x_max * 297, b.y_max * 199) for b in a.boxes]
    assert px[0][0] == "cat" and px[0][3] <= 297 and px[0][4] <= 199
    assert all(abs(x - y) < 0.01 for x, y in zip(px[0][1:], (1.3, 2, 297, 199)))
    assert got[f"images/train/{items[1].export_name}"].boxes == []


def test_yaml_alias_bomb_and_nested_names_are_ignored():
    bomb = (b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
            b"names: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n")
    r = yolo.parse(MemorySource({"a.jpg": IMG, "a.txt": b"0 0.5 0.5 0.2 0.2\n", "data.yaml": bomb}))
    assert r.issues[0].item == "data.yaml" and "plain names" in r.issues[0].reason
    assert r.images[0].boxes[0].label == "0"
