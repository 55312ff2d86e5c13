"""Class-folder parser/exporter: wrapping folders, split folders, non-images, the digits set."""

from __future__ import annotations

from core.data.formats import folders
from core.data.sources import DirSource, MemorySource
from tests.core.data.helpers import jpeg_bytes, png_bytes

IMG = jpeg_bytes(16, 16)


def labels(r):
    return {i.ref: (i.label, i.split) for i in r.images}


def test_class_folders():
    src = MemorySource({"cat/a.jpg": IMG, "cat/b.PNG": png_bytes(), "dog/c.jpeg": IMG, "dog/siamese/d.jpg": IMG})
    assert folders.detect(src) > 0.6
    r = folders.parse(src)
    assert r.issues == [] and r.classes == ["cat", "dog"]
    assert labels(r) == {"cat/a.jpg": ("cat", None), "cat/b.PNG": ("cat", None), "dog/c.jpeg": ("dog", None),
                         "dog/siamese/d.jpg": ("dog", None)}


def test_wrapping_folder_and_single_class():
    r = folders.parse(MemorySource({"Dataset/0/a.jpg": IMG, "Dataset/1/b.jpg": IMG}))
    assert labels(r) == {"Dataset/0/a.jpg": ("0", None), "Dataset/1/b.jpg": ("1", None)}
    r = folders.parse(MemorySource({"Dataset/0/a.jpg": IMG}))
    assert labels(r) == {"Dataset/0/a.jpg": ("0", None)}


def test_split_folders_with_and_without_wrapper():
    files = {"train/cat/a.jpg": IMG, "valid/cat/b.jpg": IMG, "validation/dog/c.jpg": IMG, "test/dog/d.jpg": IMG,
             "val/e.jpg": IMG}
    expect = {"train/cat/a.jpg": ("cat", "train"), "valid/cat/b.jpg": ("cat", "val"),
              "validation/dog/c.jpg": ("dog", "val"), "test/dog/d.jpg": ("dog", "test"), "val/e.jpg": (None, "val")}
    assert labels(folders.parse(MemorySource(files))) == expect
    wrapped = folders.parse(MemorySource({f"my data/{k}": v for k, v in files.items()}))
    assert labels(wrapped) == {f"my data/{k}": v for k, v in expect.items()}
    only_train = folders.parse(MemorySource({"train/cat/a.jpg": IMG, "train/dog/b.jpg": IMG}))
    assert labels(only_train) == {"train/cat/a.jpg": ("cat", "train"), "train/dog/b.jpg": ("dog", "train")}


def test_non_images_are_left_to_the_importer_labels_txt_declares_order_loose_images_unlabelled():
    src = MemorySource({"cat/a.jpg": IMG, "dog/b.jpg": IMG, "cat/notes.txt": b"x", "README.md": b"x",
                        "labels.txt": b"dog\ncat\nbird\n", "c.jpg": IMG})
    r = folders.parse(src)
    assert r.classes == ["dog", "cat", "bird"]
    # the class list is the format's own file; notes and READMEs are reported by the importer (ignored)
    assert r.issues == [] and r.used == {"labels.txt"}
    assert labels(r)["c.jpg"] == (None, None)


def test_detect_scores():
    assert folders.detect(MemorySource({"a.jpg": IMG, "b.jpg": IMG})) == 0
    assert folders.detect(MemorySource({"images/a.jpg": IMG})) < 0.3
    assert 0.3 < folders.detect(MemorySource({"cats/a.jpg": IMG})) < 0.5
    both = {"cat/a.jpg": IMG, "dog/b.jpg": IMG}
    assert folders.detect(MemorySource({**both, "cat/a.xml": b"<annotation/>"})) < folders.detect(MemorySource(both))


def test_a_note_in_the_folders_does_not_hide_the_classes():
    from core.data.importer import detect_format

    both = {"hands/0/a.jpg": IMG, "hands/0/b.jpg": IMG, "hands/1/c.jpg": IMG, "hands/1/d.jpg": IMG}
    noted = {**both, "hands/notes.txt": b"taken in the lab", "README.txt": b"sign digits"}
    assert folders.detect(MemorySource(noted)) == folders.detect(MemorySource(both))
    assert detect_format(MemorySource(noted)) == "folders"  # not "photos only", which dropped the labels
    yolo_like = {**both, "hands/0/a.txt": b"0 0.5 0.5 0.2 0.2"}  # a .txt named like a photo: YOLO
    assert folders.detect(MemorySource(yolo_like)) < folders.detect(MemorySource(both))


def test_digits_dataset(digits_dir):
    src = DirSource(digits_dir)
    assert folders.detect(src) > 0.6
    r = folders.parse(src)
    assert r.issues == []
    assert len(r.images) == 2062
    assert r.classes == [str(i) for i in range(10)]
    assert all(i.label == i.ref.split("/")[0] for i in r.images)
    # the dataset's own folder, one level up, is a wrapping folder (its LICENSE is not an image)
    up = folders.parse(DirSource(digits_dir.parent))
    assert len(up.images) == 2062 and up.issues == [] and not up.used  # its LICENSE: for the importer
    assert {i.label for i in up.images} == set(r.classes)


def test_export_then_parse(tmp_path):
    from core.data.annotations import Annotation, ImageRecord
    from core.data.formats.base import ExportItem

    items = [ExportItem(ImageRecord("ab" * 32, "p.jpg", 8, 8, "val", (Annotation("a/b"),)), lambda: IMG),
             ExportItem(ImageRecord("cd" * 32, "q.jpg", 8, 8, "train", (Annotation("cat"),)), lambda: IMG),
             ExportItem(ImageRecord("ef" * 32, "r.jpg", 8, 8, "test"), lambda: IMG)]
    folders.export(items, ["cat", "a/b"], tmp_path / "s")
    r = folders.parse(DirSource(tmp_path / "s"))
    assert r.issues == [] and r.classes == ["cat", "a/b", "a_b"]
    assert {i.ref.rsplit("/", 1)[1]: (i.label, i.split) for i in r.images} == {
        items[0].export_name: ("a_b", "val"), items[1].export_name: ("cat", "train"),
        items[2].export_name: (None, "test")}
    folders.export(items[1:2], ["cat"], tmp_path / "flat", splits=False)
    assert (tmp_path / "flat" / "cat" / items[1].export_name).is_file()
