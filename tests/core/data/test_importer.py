"""The importer on real and hostile input: reports, repairs, refusals that leave the store untouched."""

import io
import zipfile

import pytest
from PIL import Image

from core.config import Limits
from core.data.importer import import_paths, import_source, import_uploads
from core.data.sources import MemorySource
from tests.core.data.helpers import jpeg_bytes, png_bytes


def voc(filename: str, w: int, h: int, *objs) -> bytes:
    parts = [f"<annotation><filename>{filename}</filename><size><width>{w}</width>"
             f"<height>{h}</height><depth>3</depth></size>"]
    for name, x0, y0, x1, y1 in objs:
        parts.append(f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                     f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "".join(parts).encode()


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def snapshot(store):
    files = sorted(p.relative_to(store.root).as_posix() for p in store.images_dir.rglob("*") if p.is_file())
    with store.connect() as c:
        rows = [c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("images", "annotations", "classes")]
    return files, rows


def test_voc_boxes_clipped_skipped_and_missing_images_reported(store):
    p = store.create_project("p", "detection")
    src = MemorySource({
        "a.jpg": jpeg_bytes(100, 80),
        "a.xml": voc("a.jpg", 100, 80, ("cat", 10, 10, 50, 50), ("cat", -5, 20, 120, 60),
                     ("dog", 30, 30, 30, 60), ("dog", 200, 200, 300, 300)),
        "ghost.xml": voc("ghost.jpg", 10, 10, ("cat", 1, 1, 5, 5)),
    })
    r = import_source(store, p, src)
    assert r.ok and r.format == "voc"
    assert (r.images_added, r.boxes_added) == (1, 2)
    actions = sorted((i.action, i.reason.split(":")[0]) for i in r.issues)
    assert [a for a, _ in actions] == ["clipped", "skipped", "skipped", "skipped"]
    assert any("annotation without image" in i.reason for i in r.issues)
    assert any("zero area" in i.reason for i in r.issues)
    boxes = sorted(a.box.as_tuple() for a in store.list_images(p)[0].boxes)
    assert boxes == [(0.0, 20.0, 100.0, 60.0), (10.0, 10.0, 50.0, 50.0)]


def test_bad_images_are_skipped_with_reasons(store):
    p = store.create_project("p", "detection")
    good = jpeg_bytes(60, 40)
    src = MemorySource({
        "good.jpg": good,
        "empty.jpg": b"",
        "text.jpg": b"this is not an image at all",
        "truncated.jpg": good[: len(good) // 2],
    })
    r = import_source(store, p, src)
    assert r.images_added == 1 and r.format == "images"
    reasons = {i.item: i.reason for i in r.issues}
    assert "empty file" in reasons["empty.jpg"]
    assert "not an image" in reasons["text.jpg"]
    assert reasons["truncated.jpg"].startswith("the file is damaged or incomplete: it could not be decoded")
    assert "(details: " in reasons["truncated.jpg"]  # the decoder's own words stay, after the plain ones


def test_decompression_bomb_is_skipped(store):
    p = store.create_project("p", "detection")
    buf = io.BytesIO()
    Image.new("1", (15000, 15000)).save(buf, "PNG")  # 225 Mpx in ~30 kB
    assert len(buf.getvalue()) < 1_000_000
    r = import_source(store, p, MemorySource({"bomb.png": buf.getvalue(), "ok.png": png_bytes()}))
    assert r.images_added == 1
    assert "too large" in r.issues[0].reason and r.issues[0].action == "skipped"


def test_exif_rotated_photo_is_upright_and_raw_boxes_follow(store):
    p = store.create_project("p", "detection")
    data = jpeg_bytes(64, 48, orientation=6)  # stored 64x48, shown 48x64 (rotated 90° clockwise)
    src = MemorySource({"r.jpg": data, "r.xml": voc("r.jpg", 64, 48, ("cat", 0, 0, 16, 8))})
    r = import_source(store, p, src)
    rec = store.list_images(p)[0]
    assert (rec.width, rec.height) == (48, 64)
    assert rec.boxes[0].box.as_tuple() == (40.0, 0.0, 48.0, 16.0)
    assert any(i.action == "repaired" for i in r.issues)


def test_refused_zip_leaves_store_exactly_as_before(store):
    p = store.create_project("p", "detection")
    import_uploads(store, p, [("first.jpg", jpeg_bytes())])
    before = snapshot(store)
    evil = zip_of({"ok.jpg": jpeg_bytes(30, 30), "../../escape.jpg": jpeg_bytes(31, 31)})
    r = import_uploads(store, p, [("evil.zip", evil)])
    assert not r.ok and "zip-slip" in r.refused
    bomb = zip_of({"a.jpg": jpeg_bytes(), "b.xml": b"<a>" + b" " * 50_000_000 + b"</a>"})
    r2 = import_uploads(store, p, [("bomb.zip", bomb)])
    assert not r2.ok and "zip bomb" in r2.refused
    assert snapshot(store) == before


def test_xml_entity_attack_skips_only_that_file(store):
    p = store.create_project("p", "detection")
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
              b"<annotation><filename>a.jpg</filename><object><name>&lol2;</name></object></annotation>")
    external = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                b"<annotation><filename>a.jpg</filename><object><name>&xxe;</name></object></annotation>")
    good = voc("b.jpg", 40, 40, ("cat", 1, 1, 20, 20))
    for n, bad in enumerate((laughs, external)):
        files = [("a.jpg", jpeg_bytes(41 + n, 40)), ("a.xml", bad), ("b.jpg", jpeg_bytes(40, 40)), ("b.xml", good)]
        r = import_uploads(store, p, files, fmt="voc")
        assert r.ok and [(i.item, i.action) for i in r.issues] == [("a.xml", "skipped")]
        assert "refused" in r.issues[0].reason
    assert store.stats(p)["boxes"] == 1 and store.count_images(p) == 3


def test_reimport_is_a_noop_and_upload_limit_applies(store):
    p = store.create_project("p", "detection")
    files = [("a.jpg", jpeg_bytes(50, 50)), ("a.xml", voc("a.jpg", 50, 50, ("cat", 1, 1, 20, 20)))]
    assert import_uploads(store, p, files).images_added == 1
    again = import_uploads(store, p, files)
    assert (again.images_added, again.images_existing, again.boxes_added) == (0, 1, 0)
    assert store.stats(p)["boxes"] == 1
    r = import_uploads(store, p, [("huge.zip", b"x" * 2000)], limits=Limits(max_upload_bytes=1000))
    assert r.issues[0].action == "refused" and "too large" in r.issues[0].reason


def test_imported_images_get_stratified_splits(store):
    p = store.create_project("p", "classification")
    files = {f"{c}/{i}.png": png_bytes(20 + i, 20, (i * 9 + 1, 0, 0) if c == "a" else (0, i * 9 + 1, 0))
             for c in "ab" for i in range(20)}
    r = import_source(store, p, MemorySource(files), fmt="folders")
    assert r.images_added == 40 and sorted(r.classes) == ["a", "b"]
    for c in "ab":
        assert store.count_images(p, label=c, split="train") == 16
        assert store.count_images(p, label=c, split="val") == 2


def test_raccoon_voc_counts(store, raccoon_dir):
    p = store.create_project("raccoon", "detection")
    r = import_paths(store, p, [raccoon_dir])
    assert r.ok and r.format == "voc"
    assert (r.images_added, r.boxes_added, r.classes) == (200, 217, ["raccoon"])
    # four photos of the set are byte-identical copies under other names with other boxes:
    # kept as separate images, reported, and kept in the same split (no train/test leak)
    dups = [i for i in r.issues if "same pixels" in i.reason]
    assert len(dups) == 4 and all(i.action == "kept" for i in dups)
    by_content = {}
    for rec in store.list_images(p):
        by_content.setdefault(rec.content, set()).add(rec.split)
    assert len(by_content) == 196 and all(len(s) == 1 for s in by_content.values())
    assert store.read_image_bytes(store.list_images(p)[0].id)[:2] == b"\xff\xd8"


def test_same_bytes_same_name_is_a_noop_but_a_renamed_copy_is_kept(store):
    p = store.create_project("p", "detection")
    data = jpeg_bytes(40, 40)
    assert import_uploads(store, p, [("a.jpg", data)]).images_added == 1
    assert import_uploads(store, p, [("a.jpg", data)]).images_existing == 1
    r = import_uploads(store, p, [("copy of a.jpg", data)])
    assert r.images_added == 1 and "same pixels as a.jpg" in r.issues[0].reason
    recs = store.list_images(p)
    assert len({rec.id for rec in recs}) == 2 and len({rec.content for rec in recs}) == 1


# -- files that are neither photos nor label files: reported as ignored ----------------------------
def _rows(report) -> dict[str, tuple[str, str]]:
    return {i.item: (i.reason, i.action) for i in report.issues}


def test_voc_zip_with_junk_reports_every_file_it_did_not_use(store):
    p = store.create_project("p", "detection")
    good = {stem: jpeg_bytes(60 + n, 40, color=(20 * n, 90, 30)) for n, stem in enumerate("abc")}
    members = {}
    for n, (stem, data) in enumerate(good.items()):
        members[f"ds/images/{stem}.jpg"] = data
        members[f"ds/annotations/{stem}.xml"] = voc(f"{stem}.jpg", 60 + n, 40, ("cat", 5, 5, 30, 30))
    truncated = jpeg_bytes(80, 60)
    members |= {
        "ds/notes.txt": b"shot in the garden",
        "ds/README.md": b"# my raccoons",
        "ds/LICENSE": b"CC0",
        "ds/config.json": b'{"camera": "pi"}',
        "ds/images/broken.jpg": b"\xff\xd8\xff\xe0garbage" * 8,  # a JPEG header, then junk
        "ds/images/truncated.jpg": truncated[:-1],
        "__MACOSX/ds/images/._a.jpg": b"\x00\x05\x16\x07",
        "__MACOSX/ds/._notes.txt": b"\x00\x05\x16\x07",
        "ds/.DS_Store": b"\x00\x00\x00\x01Bud1",
    }
    r = import_uploads(store, p, [("ds.zip", zip_of(members))])
    assert r.ok and r.format == "voc"
    assert (r.images_added, r.boxes_added) == (4, 3) and store.stats(p)["images"] == 4
    rows = _rows(r)
    assert rows["ds/notes.txt"] == ("not a photo or a label file (.txt)", "ignored")
    assert rows["ds/README.md"] == ("not a photo or a label file (.md)", "ignored")
    assert rows["ds/LICENSE"] == ("not a photo or a label file", "ignored")
    assert rows["ds/config.json"] == (
        "not a photo or a label file this import could read (.json — the labels were read as Pascal VOC)",
        "ignored")
    reason, action = rows["ds/images/broken.jpg"]
    assert action == "skipped"
    assert reason.startswith("the file is damaged or incomplete: it could not be decoded as an image (details:")
    assert "Truncated File Read" in reason
    # only its last byte is missing: kept (the whole picture decodes)
    reason, action = rows["ds/images/truncated.jpg"]
    assert action == "repaired" and reason.startswith("the file is cut short")
    # the macOS/Windows leftovers: one summary line, not a row each
    assert rows["3 system files (__MACOSX/, .DS_Store)"] == (
        "hidden files that macOS or Windows add to folders and zips: not part of the dataset", "ignored")
    # the dataset's own files are used, not reported; nothing else is in the report
    assert not any(k.endswith((".xml", "a.jpg", "b.jpg", "c.jpg")) for k in rows)
    assert len(rows) == 7 and r.files_ignored == 7 and r.skipped == 1
    d = r.to_dict()
    assert d["files_ignored"] == 7 and d["skipped"] == 1
    assert {"item": "ds/notes.txt", "reason": "not a photo or a label file (.txt)", "action": "ignored"} in d["issues"]
    assert [x["action"] for x in d["issues"]][-5:] == ["ignored"] * 5  # unused files come last
    # a second source adds its own ignored files
    again = import_uploads(store, p, [("ds.zip", zip_of(members)), ("extra.txt", b"x"), ("d.jpg", jpeg_bytes(9, 9))])
    assert again.files_ignored == 8 and _rows(again)["extra.txt"][1] == "ignored"


def test_many_ignored_files_are_grouped_by_reason(store):
    p = store.create_project("p", "detection")
    files = {"a.jpg": jpeg_bytes(20, 20), "b.jpg": jpeg_bytes(21, 20)}
    files |= {f"logs/run{n:02d}.txt": b"x" for n in range(30)}
    files |= {f"docs/page{n}.md": b"x" for n in range(12)}
    files |= {"paper.pdf": b"%PDF", "meta.json": b"{}"}
    r = import_source(store, p, MemorySource(files))
    assert r.format == "images" and r.images_added == 2 and r.files_ignored == 44
    rows = _rows(r)
    assert rows == {
        "30 files: logs/run00.txt, logs/run01.txt, logs/run02.txt and 27 more":
            ("not a photo or a label file (.txt)", "ignored"),
        "12 files: docs/page0.md, docs/page1.md, docs/page10.md and 9 more":
            ("not a photo or a label file (.md)", "ignored"),
        "meta.json": ("not a photo or a label file this import could read (.json — no labels were recognised)",
                      "ignored"),
        "paper.pdf": ("not a photo or a label file (.pdf)", "ignored"),
    }


def test_system_files_of_a_folder_are_one_line(store, tmp_path):
    p = store.create_project("p", "detection")
    (tmp_path / "set" / "sub").mkdir(parents=True)
    (tmp_path / "set" / "a.jpg").write_bytes(jpeg_bytes())
    for name in (".DS_Store", "Thumbs.db", "sub/Thumbs.db"):
        (tmp_path / "set" / name).write_bytes(b"x")
    r = import_paths(store, p, [tmp_path / "set"])
    assert r.images_added == 1 and r.files_ignored == 3
    assert [(i.item, i.action) for i in r.issues] == [("3 system files (.DS_Store, Thumbs.db)", "ignored")]


def _yolo_files() -> dict[str, bytes]:
    return {"images/train/a.jpg": jpeg_bytes(40, 40), "labels/train/a.txt": b"0 0.5 0.5 0.2 0.2\n",
            "images/train/b.jpg": jpeg_bytes(41, 40), "labels/train/b.txt": b"",
            "classes.txt": b"cat\n", "data.yaml": b"names: [cat]\nnc: 1\n", "README.txt": b"x"}


def _coco_files() -> dict[str, bytes]:
    doc = ('{"images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 40}], "annotations": '
           '[{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 10, 10]}], '
           '"categories": [{"id": 3, "name": "cat"}]}')
    return {"images/a.jpg": jpeg_bytes(40, 40), "annotations/instances_train.json": doc.encode(),
            "annotations/info.json": b'{"note": "not coco"}', "README.txt": b"x"}


def _csv_files() -> dict[str, bytes]:
    return {"a.jpg": jpeg_bytes(40, 40), "labels.csv": b"filename,class,xmin,ymin,xmax,ymax\na.jpg,cat,1,1,9,9\n",
            "other.csv": b"when,who\n1,2\n", "README.txt": b"x"}


def _voc_files() -> dict[str, bytes]:
    return {"JPEGImages/a.jpg": jpeg_bytes(40, 40), "Annotations/a.xml": voc("a.jpg", 40, 40, ("cat", 1, 1, 9, 9)),
            "ImageSets/Main/train.txt": b"a\n", "ImageSets/Main/cat_train.txt": b"a 1\n", "labels.txt": b"cat\n",
            "settings.xml": b"<config/>", "README.txt": b"x"}


@pytest.mark.parametrize("fmt,files,other", [
    ("yolo", _yolo_files, None),
    ("coco", _coco_files, "annotations/info.json"),
    ("csv", _csv_files, "other.csv"),
    ("voc", _voc_files, "settings.xml"),
])
def test_a_formats_own_files_are_not_reported_as_ignored(store, fmt, files, other):
    p = store.create_project("p", "detection")
    r = import_source(store, p, MemorySource(files()))
    assert r.format == fmt and r.images_added >= 1 and r.boxes_added == 1
    ignored = {i.item: i.reason for i in r.issues if i.action == "ignored"}
    title = {"yolo": "YOLO", "coco": "COCO", "csv": "CSV", "voc": "Pascal VOC"}[fmt]
    expect = {"README.txt": "not a photo or a label file (.txt)"}
    if other:
        ext = other.rsplit(".", 1)[1]
        expect[other] = (f"not a photo or a label file this import could read "
                         f"(.{ext} — the labels were read as {title})")
    assert ignored == expect
    assert [i for i in r.issues if i.action != "ignored"] == []


def test_class_folders_keep_labels_txt_and_report_the_rest(store):
    p = store.create_project("p", "classification")
    r = import_source(store, p, MemorySource({
        "cat/a.jpg": jpeg_bytes(30, 30), "dog/b.jpg": jpeg_bytes(31, 30), "labels.txt": b"cat\ndog\n",
        "cat/notes.txt": b"x"}), fmt="folders")
    assert r.format == "folders" and r.labels_added == 2
    assert [(i.item, i.reason, i.action) for i in r.issues] == [
        ("cat/notes.txt", "not a photo or a label file (.txt)", "ignored")]


def test_a_photo_damaged_inside_the_zip_is_skipped_not_a_crash(store):
    p = store.create_project("p", "detection")
    photo = jpeg_bytes(50, 50)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("ok.jpg", jpeg_bytes(51, 50))
        z.writestr("bad.jpg", photo)
    data = bytearray(buf.getvalue())
    at = data.find(photo)
    data[at + 100] ^= 0xFF  # one flipped byte: the member's CRC no longer matches
    r = import_uploads(store, p, [("set.zip", bytes(data))])
    assert r.ok and r.images_added == 1
    reason, action = _rows(r)["bad.jpg"]
    assert action == "skipped" and reason.startswith("the file is damaged inside the zip archive (details:")
