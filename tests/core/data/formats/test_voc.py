"""Pascal VOC parser/exporter: hand-made sources, hostile XML, and the real raccoon set."""

from __future__ import annotations

import pytest

from core.data.formats import voc
from core.data.formats.base import ParseResult
from core.data.sources import DirSource, MemorySource
from tests.core.data.helpers import jpeg_bytes

IMG = jpeg_bytes(64, 48)


def xml(filename="a.jpg", objects=(("cat", 1, 2, 30, 40),), size=(64, 48), path=None) -> bytes:
    objs = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
        f"<ymax>{y1}</ymax></bndbox></object>" for n, x0, y0, x1, y1 in objects)
    p = f"<path>{path}</path>" if path else ""
    fn = f"<filename>{filename}</filename>" if filename is not None else ""
    return (f"<annotation><folder>images</folder>{fn}{p}<size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{objs}</annotation>").encode()


def issues_of(r: ParseResult) -> list[str]:
    return [f"{i.item}|{i.reason}|{i.action}" for i in r.issues]


def test_parse_one_image_with_boxes_and_size():
    src = MemorySource({"images/a.jpg": IMG, "annotations/a.xml": xml(objects=[("cat", 1, 2, 30, 40),
                                                                              ("dog", 5.5, 6, 7, 8)])})
    r = voc.parse(src)
    assert r.issues == []
    [img] = r.images
    assert img.ref == "images/a.jpg" and img.origin == "annotations/a.xml"
    assert img.declared_size == (64, 48)
    assert [(b.label, b.x_min, b.y_min, b.x_max, b.y_max, b.normalized) for b in img.boxes] == [
        ("cat", 1, 2, 30, 40, False), ("dog", 5.5, 6, 7, 8, False)]


def test_image_found_by_path_basename_or_xml_stem():
    src = MemorySource({
        "pics/b.jpg": IMG, "ann/b.xml": xml(filename="wrong.jpg", path="C:\\Users\\x\\pics\\b.jpg"),
        "pics/c.jpg": jpeg_bytes(10, 10), "ann/c.xml": xml(filename=None),
    })
    r = voc.parse(src)
    assert sorted(i.ref for i in r.images) == ["pics/b.jpg", "pics/c.jpg"]
    assert r.issues == []


def test_missing_image_is_an_issue():
    r = voc.parse(MemorySource({"a.xml": xml(filename="gone.jpg")}))
    assert r.images == []
    assert issues_of(r) == ["a.xml|annotation without image: 'gone.jpg' not found|skipped"]


def test_malformed_xml_is_skipped_and_others_kept():
    src = MemorySource({"a.jpg": IMG, "a.xml": xml(), "b.xml": b"<annotation><filename>a.jpg</filename>"})
    r = voc.parse(src)
    assert len(r.images) == 1
    assert len(r.issues) == 1 and r.issues[0].item == "b.xml" and "malformed XML" in r.issues[0].reason


def test_bad_objects_are_issues():
    bad = (b"<annotation><filename>a.jpg</filename>"
           b"<object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>abc</xmax><ymax>4</ymax></bndbox></object>"
           b"<object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax></bndbox></object>"
           b"<object><name>cat</name><bndbox><xmin>nan</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>"
           b"<object><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>"
           b"<object><name>cat</name></object>"
           b"<object><name>ok</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>"
           b"</annotation>")
    r = voc.parse(MemorySource({"a.jpg": IMG, "a.xml": bad}))
    assert [b.label for b in r.images[0].boxes] == ["ok"]
    items = [i.item for i in r.issues]
    assert items == [f"a.xml#object{n}" for n in (1, 2, 3, 4, 5)]
    assert "non-numeric" in r.issues[0].reason and "abc" in r.issues[0].reason
    assert "without a <name>" in r.issues[3].reason and "no <bndbox>" in r.issues[4].reason
    assert all(i.action == "skipped" for i in r.issues)


def test_outside_and_inverted_boxes_pass_through_for_the_importer():
    r = voc.parse(MemorySource({"a.jpg": IMG, "a.xml": xml(objects=[("cat", -5, 2, 300, 40),
                                                                     ("cat", 30, 40, 1, 2)])}))
    assert [(b.x_min, b.x_max) for b in r.images[0].boxes] == [(-5, 300), (30, 1)]


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><filename>a.jpg</filename><object><name>&lol3;</name></object></annotation>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>"""
DTD = b"""<?xml version="1.0"?><!DOCTYPE annotation SYSTEM "http://example.invalid/voc.dtd">
<annotation><filename>a.jpg</filename></annotation>"""


@pytest.mark.parametrize("payload,words", [(BOMB, "billion laughs"), (XXE, "external entity"), (DTD, "DTD")])
def test_hostile_xml_skips_only_that_file(payload, words):
    src = MemorySource({"a.jpg": IMG, "b.jpg": jpeg_bytes(8, 8), "good.xml": xml(), "evil.xml": payload})
    r = voc.parse(src)
    assert [i.ref for i in r.images] == ["a.jpg"]
    assert [(i.item, i.action) for i in r.issues] == [("evil.xml", "skipped")]
    assert words in r.issues[0].reason and "refused" in r.issues[0].reason


def test_hostile_xml_through_the_importer_keeps_the_good_files(store):
    from core.data.importer import import_source

    project = store.create_project("p", "detection")
    rep = import_source(store, project, MemorySource({"a.jpg": IMG, "good.xml": xml(), "evil.xml": BOMB}))
    assert rep.ok and rep.images_added == 1 and rep.boxes_added == 1
    assert [(i.item, i.action) for i in rep.issues] == [("evil.xml", "skipped")]


def test_other_xml_files_are_ignored_and_oversized_skipped():
    from core.config import Limits

    src = MemorySource({"a.jpg": IMG, "a.xml": xml(), "pom.xml": b"<project/>",
                        "big.xml": xml() + b" " * 5000})
    r = voc.parse(src, limits=Limits(max_annotation_bytes=4000))
    assert len(r.images) == 1
    assert [(i.item, i.action) for i in r.issues] == [("big.xml", "skipped")]
    assert "too large" in r.issues[0].reason


def test_second_xml_for_the_same_image_is_an_issue():
    r = voc.parse(MemorySource({"a.jpg": IMG, "a.xml": xml(), "copy.xml": xml()}))
    assert len(r.images) == 1 and len(r.issues) == 1 and "already described" in r.issues[0].reason


def test_splits_from_imagesets_and_class_order_from_labels_txt():
    src = MemorySource({
        "images/a.jpg": IMG, "images/b.jpg": jpeg_bytes(8, 8), "annotations/a.xml": xml("a.jpg"),
        "annotations/b.xml": xml("b.jpg"), "ImageSets/Main/val.txt": b"b\n", "ImageSets/Main/train.txt": b"a\n",
        "labels.txt": b"zebra\ncat\n"})
    r = voc.parse(src)
    assert {i.ref: i.split for i in r.images} == {"images/a.jpg": "train", "images/b.jpg": "val"}
    assert r.classes == ["zebra", "cat"]


def test_detect():
    assert voc.detect(MemorySource({"a.jpg": IMG, "a.xml": xml()})) > 0.9
    assert voc.detect(MemorySource({"a.jpg": IMG, "pom.xml": b"<project/>"})) == 0
    assert voc.detect(MemorySource({"a.jpg": IMG})) == 0


def test_raccoon_dataset(raccoon_dir):
    src = DirSource(raccoon_dir)
    assert voc.detect(src) > 0.9
    r = voc.parse(src)
    assert r.issues == []
    assert len(r.images) == 200
    assert sum(len(i.boxes) for i in r.images) == 217
    assert {b.label for i in r.images for b in i.boxes} == {"raccoon"}
    assert all(i.declared_size and i.ref.startswith("images/") for i in r.images)


def test_export_then_parse(tmp_path):
    from core.data.annotations import Annotation, ImageRecord
    from core.data.boxes import Box
    from core.data.formats.base import ExportItem

    rec = ImageRecord("ab" * 32, "photo.jpg", 64, 48, "val",
                      (Annotation("cat", Box(1.25, 2, 30, 40)), Annotation("a<b&c", Box(0, 0, 64, 48))))
    empty = ImageRecord("cd" * 32, "empty.jpg", 8, 8, "test")
    items = [ExportItem(rec, lambda: IMG), ExportItem(empty, lambda: jpeg_bytes(8, 8))]
    voc.export(items, ["cat", "a<b&c"], tmp_path)
    r = voc.parse(DirSource(tmp_path))
    assert r.issues == [] and r.classes == ["cat", "a<b&c"]
    got = {i.ref: i for i in r.images}
    a = got[f"images/{items[0].export_name}"]
    assert [(b.label, b.x_min, b.y_min, b.x_max, b.y_max) for b in a.boxes] == [
        ("cat", 1.25, 2, 30, 40), ("a<b&c", 0, 0, 64, 48)]
    assert a.split == "val" and a.declared_size == (64, 48)
    assert got[f"images/{items[1].export_name}"].boxes == [] and got[f"images/{items[1].export_name}"].split == "test"


def test_outside_and_inverted_boxes_through_the_importer(store):
    from core.data.importer import import_source

    project = store.create_project("p", "detection")
    src = MemorySource({"a.jpg": IMG, "a.xml": xml(objects=[("cat", -5, 2, 300, 40), ("cat", 30, 40, 1, 2),
                                                            ("cat", 70, 50, 90, 60), ("dog", 1, 1, 10, 10)])})
    rep = import_source(store, project, src)
    assert rep.refused is None and rep.boxes_added == 2
    assert sorted(i.action for i in rep.issues) == ["clipped", "skipped", "skipped"]
    [rec] = store.list_images(project)
    assert sorted((a.label, a.box.as_tuple()) for a in rec.boxes) == [("cat", (0, 2, 64, 40)), ("dog", (1, 1, 10, 10))]
