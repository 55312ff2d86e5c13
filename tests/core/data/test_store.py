import pytest

from core.data.annotations import Annotation, Task
from core.data.boxes import Box
from core.data.store import ConflictError, NewImage, StoreError
from tests.core.data.helpers import jpeg_bytes


def _img(i: int, label: str | None = "cat", box: Box | None = Box(1, 2, 30, 40)) -> NewImage:
    anns = [Annotation(label, box)] if label else []
    return NewImage(jpeg_bytes(64 + i, 48, (i * 7 % 255, 20, 20)), f"im{i}.jpg", 64 + i, 48, anns)


def test_projects_unique_names_and_tasks(store):
    p = store.create_project("Robots", "detection")
    assert p.task is Task.DETECTION
    with pytest.raises(StoreError, match="already exists"):
        store.create_project("Robots", "classification")
    with pytest.raises(StoreError):
        store.get_or_create_project("Robots", "classification")
    for look_alike in ("robots", " ROBOTS ", "roBots"):  # would read as the same project in a picker
        with pytest.raises(StoreError, match="'Robots' already exists"):
            store.create_project(look_alike, "detection")
    assert [x.name for x in store.list_projects()] == ["Robots"]


def test_add_images_is_content_addressed_and_idempotent(store):
    p = store.create_project("p", "detection")
    r1 = store.add_images(p, [_img(0), _img(1)])
    assert (r1.images_added, r1.boxes_added, r1.classes_added) == (2, 2, ["cat"])
    r2 = store.add_images(p, [_img(0)])
    assert (r2.images_added, r2.images_existing) == (0, 1)
    assert store.count_images(p) == 2
    rec = store.list_images(p)[0]
    assert store.image_path(rec.id).read_bytes() == _img(0).data
    assert rec.boxes[0].box == Box(1, 2, 30, 40)


def test_failed_transaction_leaves_no_files_or_rows(store):
    p = store.create_project("p", "detection")

    def items():
        yield _img(0)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        store.add_images(p, items())
    assert store.count_images(p) == 0
    assert not any(f.is_file() for f in store.images_dir.rglob("*"))


def test_label_map_ids_are_stable(store):
    p = store.create_project("p", "detection")
    a, b = store.add_class(p, "a"), store.add_class(p, "b")
    store.delete_class(p, "a")
    c = store.add_class(p, "c")
    assert (a, b, c) == (0, 1, 2)
    assert store.label_map(p).names == ["b", "c"]


def test_delete_class_can_reassign_boxes(store):
    p = store.create_project("p", "detection")
    store.add_images(p, [_img(0, "dog"), _img(1, "cat")])
    store.add_class(p, "pet")
    assert store.delete_class(p, "dog", reassign_to="pet") == 1
    labels = sorted(a.label for r in store.list_images(p) for a in r.annotations)
    assert labels == ["cat", "pet"]


def test_class_changes_give_the_images_concerned_a_new_revision(store):
    """An editor with such an image open must see the change, not save the old class name back."""
    p = store.create_project("p", "detection")
    ids = store.add_images(p, [_img(0, "dog"), _img(1, "cat")]).image_ids
    rev = {i: store.get_image(p, i).revision for i in ids}
    store.rename_class(p, "dog", "puppy")
    assert store.get_image(p, ids[0]).revision == rev[ids[0]] + 1
    assert store.get_image(p, ids[1]).revision == rev[ids[1]]  # not labelled dog: untouched
    assert store.delete_class(p, "cat") == 1
    assert store.get_image(p, ids[1]).revision == rev[ids[1]] + 1 and not store.get_image(p, ids[1]).annotations
    assert store.label_map(p).names == ["puppy"]


def test_revisions_detect_conflicts_and_undo_restores(store):
    p = store.create_project("p", "detection")
    store.add_images(p, [_img(0)])
    rec = store.list_images(p)[0]
    rev = store.set_annotations(p, rec.id, [Annotation("cat", Box(0, 0, 5, 5))], expected_revision=rec.revision)
    with pytest.raises(ConflictError, match="changed elsewhere"):
        store.set_annotations(p, rec.id, [], expected_revision=rec.revision)
    assert store.get_image(p, rec.id).boxes[0].box == Box(0, 0, 5, 5)
    store.undo(p, rec.id, expected_revision=rev)
    assert store.get_image(p, rec.id).boxes[0].box == Box(1, 2, 30, 40)


def test_unreviewed_predictions_mark_the_image(store):
    p = store.create_project("p", "detection")
    store.add_images(p, [_img(0, None)])
    rec = store.list_images(p)[0]
    store.set_annotations(p, rec.id, [Annotation("cat", Box(0, 0, 9, 9), reviewed=False, score=0.7)])
    assert store.count_images(p, unreviewed=True) == 1
    assert store.stats(p)["unreviewed_images"] == 1


def test_filters_paging_and_stats(store):
    p = store.create_project("p", "detection")
    store.add_images(p, [_img(i, "cat" if i % 2 else "dog") for i in range(10)] + [_img(20, None)])
    assert store.count_images(p) == 11
    assert store.count_images(p, label="cat") == 5
    assert store.count_images(p, unlabelled=True) == 1
    page = store.list_images(p, offset=4, limit=3)
    assert [r.filename for r in page] == ["im4.jpg", "im5.jpg", "im6.jpg"]
    s = store.stats(p)
    assert s["images"] == 11 and s["boxes"] == 10 and s["per_class"]["cat"]["annotations"] == 5


def test_splits_are_editable_and_locked(store):
    p = store.create_project("p", "classification")
    store.add_images(p, [_img(i, "a" if i < 10 else "b", None) for i in range(20)])
    counts = store.assign_splits(p, (0.5, 0.5, 0.0), seed=1)
    assert counts == {"train": 10, "val": 10, "test": 0}
    iid = store.list_images(p, split="train")[0].id
    store.set_split(p, [iid], "test")
    store.assign_splits(p, (1.0, 0.0, 0.0))
    assert store.get_image(p, iid).split == "test"  # placed by hand: kept
    assert store.count_images(p, split="train") == 19


def test_classification_bulk_label(store):
    p = store.create_project("p", "classification")
    store.add_images(p, [_img(i, None, None) for i in range(3)])
    ids = store.image_ids(p)
    assert store.set_class_label(p, ids[:2], "thumbs-up") == 2
    assert [store.get_image(p, i).class_label for i in ids] == ["thumbs-up", "thumbs-up", None]


def test_dataset_hash_changes_with_annotations(store):
    p = store.create_project("p", "detection")
    store.add_images(p, [_img(0)])
    h1 = store.dataset_hash(p)
    rec = store.list_images(p)[0]
    store.set_annotations(p, rec.id, [])
    assert store.dataset_hash(p) != h1
