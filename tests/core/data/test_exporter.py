"""export_project: refusals, zip output, and import → export → import round trips (incl. the real sets)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from core.data.annotations import Annotation
from core.data.boxes import Box
from core.data.exporter import export_project, image_extension
from core.data.importer import import_paths
from core.data.store import NewImage, Store
from tests.core.data.helpers import jpeg_bytes, png_bytes

DETECTION_FORMATS = [("voc", {}), ("coco", {}), ("yolo", {}), ("csv", {}), ("csv", {"dialect": "coral"})]


def image_key(rec) -> tuple[str, str]:
    """(sha256 of the bytes, file stem without the export's ``_<id8>`` suffix).

    The stem tells apart renamed copies of the same pixels, which the store may keep as
    separate images; everything else is matched by content.
    """
    stem = re.sub(r"_[0-9a-f]{8}$", "", Path(rec.filename).stem)
    return getattr(rec, "content", None) or rec.id, stem


def snapshot(store: Store, project) -> dict[tuple[str, str], tuple]:
    """image key -> (split, class label, sorted boxes)."""
    snap = {image_key(r): (r.split, r.class_label, sorted((a.label, a.box.as_tuple()) for a in r.boxes))
            for r in store.list_images(project)}
    assert len(snap) == store.count_images(project)
    return snap


def only_copies(issues) -> bool:
    """No issues except the store's notes about renamed copies of the same pixels."""
    return all(i.action == "kept" and "same pixels" in i.reason for i in issues)


def assert_same(before: dict, after: dict, tol: float = 1.0) -> float:
    """Same images, splits, labels and boxes (within ``tol`` px); returns the worst difference."""
    assert set(after) == set(before)
    worst = 0.0
    for iid, (split, label, boxes) in before.items():
        split2, label2, boxes2 = after[iid]
        assert (split2, label2) == (split, label), iid
        assert [b[0] for b in boxes2] == [b[0] for b in boxes], iid
        for (_, a), (_, b) in zip(boxes, boxes2):
            worst = max(worst, *(abs(x - y) for x, y in zip(a, b)))
    assert worst <= tol
    return worst


def reimport(store: Store, name: str, task: str, path: Path):
    project = store.create_project(name, task)
    report = import_paths(store, project, [path])
    assert report.refused is None, report.refused
    return project, report


# -- a small hand-made project ------------------------------------------------------------------
@pytest.fixture
def det_project(store):
    p = store.create_project("det", "detection")
    store.add_images(p, [
        NewImage(jpeg_bytes(64, 48), "a.jpg", 64, 48,
                 [Annotation("cat", Box(1.3, 2.7, 40.25, 47.9)), Annotation("dog", Box(0, 0, 64, 48))], "train"),
        NewImage(png_bytes(32, 32), "b.png", 32, 32, [Annotation("dog", Box(3, 4, 5.5, 6))], "val"),
        NewImage(jpeg_bytes(30, 20, orientation=6), "rot.jpg", 20, 30, [Annotation("cat", Box(1, 2, 19, 29))], "test"),
        NewImage(jpeg_bytes(10, 10, color=(1, 2, 3)), "empty.jpg", 10, 10, [], "train"),
    ])
    store.add_class(p, "unused")
    return p


@pytest.mark.parametrize("fmt,opts", DETECTION_FORMATS, ids=lambda v: str(v))
def test_detection_round_trip_small(store, det_project, tmp_path, fmt, opts):
    out = tmp_path / f"{fmt}-export"
    summary = export_project(store, det_project, fmt, out, **opts)
    assert summary == {"format": fmt, "project": "det", "task": "detection", "images": 4, "boxes": 4,
                       "labels": 0, "classes": ["cat", "dog", "unused"], "path": str(out)}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    p2, report = reimport(store, f"det-{fmt}-{len(opts)}", "detection", out)
    assert report.format == fmt and report.issues == []
    assert report.images_added == 4 and report.boxes_added == 4
    assert_same(snapshot(store, det_project), snapshot(store, p2))
    assert (tmp_path / f"{fmt}-export" / "images").is_dir()


def test_zip_output_and_reimport(store, det_project, tmp_path):
    out = tmp_path / "sub" / "export.zip"
    summary = export_project(store, det_project, "yolo", out)
    assert summary["path"] == str(out) and out.is_file()
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert {"data.yaml", "classes.txt"} <= set(names) and sum(n.startswith("images/") for n in names) == 4
    assert [p.name for p in out.parent.iterdir()] == ["export.zip"]
    p2, report = reimport(store, "from-zip", "detection", out)
    assert report.format == "yolo" and report.images_added == 4
    assert_same(snapshot(store, det_project), snapshot(store, p2))


def test_refusals(store, det_project, tmp_path):
    with pytest.raises(ValueError, match="folders format cannot hold detection labels.*voc, coco, yolo, csv"):
        export_project(store, det_project, "folders", tmp_path / "x")
    cls = store.create_project("cls", "classification")
    with pytest.raises(ValueError, match="cannot hold classification.*csv, folders"):
        export_project(store, cls, "voc", tmp_path / "x")
    with pytest.raises(ValueError, match="Unknown export format"):
        export_project(store, det_project, "tfrecord", tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ValueError, match="already exists"):
        export_project(store, det_project, "voc", tmp_path / "full")
    (tmp_path / "e.zip").write_bytes(b"")
    with pytest.raises(ValueError, match="already exists"):
        export_project(store, det_project, "voc", tmp_path / "e.zip")
    assert not (tmp_path / "x").exists()
    (tmp_path / "empty").mkdir()
    assert export_project(store, det_project, "voc", tmp_path / "empty")["images"] == 4


def test_empty_project_and_extensions(store, tmp_path):
    p = store.create_project("nothing", "classification")
    s = export_project(store, p, "folders", tmp_path / "n.zip")
    assert s["images"] == 0 and zipfile.ZipFile(tmp_path / "n.zip").namelist() == ["labels.txt"]
    assert image_extension("x.jpeg", jpeg_bytes(4, 4)[:16]) == ".jpeg"
    assert image_extension("x.jpg", png_bytes()[:16]) == ".png"
    assert image_extension("x.webp", b"RIFF\0\0\0\0WEBPVP8 ") == ".webp"
    assert image_extension("noext", b"????") == ".jpg"


def test_classification_round_trip_small(store, tmp_path):
    p = store.create_project("cls", "classification")
    store.add_images(p, [NewImage(jpeg_bytes(8, 8, color=(i * 20, 0, 0)), f"{i}.jpg", 8, 8,
                                  [Annotation(c)] if c else [], s)
                         for i, (c, s) in enumerate([("cat", "train"), ("dog", "val"), ("cat", "test"),
                                                     (None, "train"), ("a/b", "train")])])
    for fmt, opts in [("folders", {}), ("csv", {}), ("csv", {"dialect": "coral"})]:
        out = tmp_path / f"{fmt}{len(opts)}"
        export_project(store, p, fmt, out, **opts)
        p2, report = reimport(store, f"c-{fmt}{len(opts)}", "classification", out)
        assert report.format == fmt and report.issues == [] and report.labels_added == 4
        before = snapshot(store, p)
        if fmt == "folders":  # a class name with "/" becomes a folder name with "_"
            before = {k: (s, "a_b" if c == "a/b" else c, b) for k, (s, c, b) in before.items()}
        assert_same(before, snapshot(store, p2))


# -- the real datasets: import once per module, export + import once per format ----------------
@pytest.fixture(scope="module")
def shared_store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.mktemp("exporter-store"))


@pytest.fixture(scope="module")
def raccoon_project(shared_store, raccoon_dir):
    p = shared_store.create_project("raccoon", "detection")
    report = import_paths(shared_store, p, [raccoon_dir])
    assert report.format == "voc" and report.classes == ["raccoon"]
    # 200 photos with 217 boxes, but four photos are byte-identical copies of others under another
    # name (with the same boxes): a store that keeps renamed copies has 200 images / 217 boxes (and
    # notes the 4 copies), a purely content-addressed one 196 / 213.
    assert report.images_added + report.images_existing == 200
    assert (report.images_added, report.boxes_added) in ((200, 217), (196, 213))
    # the dataset's LICENSE and split.csv (the fixed split benchmarks use) are neither photos nor label
    # files: each reported as ignored, nothing else
    ignored_here = {"LICENSE", "split.csv"}
    ignored = [i for i in report.issues if i.action == "ignored"]
    assert {i.item for i in ignored} <= ignored_here and "LICENSE" in {i.item for i in ignored}
    present = {n for n in ignored_here if (raccoon_dir / n).exists()}
    assert {i.item for i in ignored} == present and report.files_ignored == len(present)
    issues = [i for i in report.issues if i.action != "ignored"]
    assert only_copies(issues) and len(issues) == (4 if report.images_added == 200 else 0)
    return p


@pytest.mark.parametrize("fmt,opts", DETECTION_FORMATS, ids=lambda v: str(v))
def test_raccoon_round_trip(shared_store, raccoon_project, tmp_path, fmt, opts):
    out = tmp_path / "raccoon-export"
    summary = export_project(shared_store, raccoon_project, fmt, out, **opts)
    stats = shared_store.stats(raccoon_project)
    assert (summary["images"], summary["boxes"], summary["classes"]) == (stats["images"], stats["boxes"],
                                                                         ["raccoon"])
    p2, report = reimport(shared_store, f"raccoon-{fmt}-{len(opts)}", "detection", out)
    assert report.format == fmt and only_copies(report.issues)
    assert (report.images_added, report.boxes_added) == (stats["images"], stats["boxes"])
    assert_same(snapshot(shared_store, raccoon_project), snapshot(shared_store, p2))


@pytest.fixture(scope="module")
def digits_project(shared_store, digits_dir):
    p = shared_store.create_project("digits", "classification")
    report = import_paths(shared_store, p, [digits_dir])
    assert report.format == "folders" and report.issues == []
    assert (report.images_added, report.labels_added) == (2062, 2062)
    assert report.classes == [str(i) for i in range(10)]
    return p


@pytest.mark.parametrize("fmt", ["folders", "csv"])
def test_digits_round_trip(shared_store, digits_project, tmp_path, fmt):
    out = tmp_path / f"digits.zip"
    summary = export_project(shared_store, digits_project, fmt, out)
    assert (summary["images"], summary["labels"], len(summary["classes"])) == (2062, 2062, 10)
    p2, report = reimport(shared_store, f"digits-{fmt}", "classification", out)
    assert report.format == fmt and report.issues == []
    assert (report.images_added, report.labels_added) == (2062, 2062)
    assert sorted(report.classes) == [str(i) for i in range(10)]
    assert_same(snapshot(shared_store, digits_project), snapshot(shared_store, p2))


def test_progress_is_reported(store, det_project, tmp_path):
    seen: list[tuple[float, str]] = []
    export_project(store, det_project, "coco", tmp_path / "c.zip", progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("Wrote 4 of 4 images" in m for _, m in seen)
