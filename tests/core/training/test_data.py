"""The classification data pipeline: examples per split, upright decoding, readable failures, tf.data."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data.annotations import Annotation
from core.data.imaging import probe_image
from core.data.store import NewImage
from core.training.data import (DatasetError, collect_examples, load_image, load_images, make_dataset, one_hot,
                                representative_images)
from tests.core.training.helpers import add_digits


def _jpeg_with_orientation(orientation: int) -> bytes:
    """A 40x20 (w x h) image: left half red, right half blue, with an EXIF orientation tag."""
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif, quality=95)
    return buf.getvalue()


def test_collect_examples_groups_by_split_and_caps(store, digits_dir):
    project = add_digits(store, digits_dir, classes=("0", "1", "2"), per_class=10)
    data = collect_examples(store, project)
    assert data.labels == ["0", "1", "2"]
    assert len(data.train) + len(data.val) + len(data.test) == 30
    assert all(c > 0 for c in data.class_counts("train"))
    assert {e.split for e in data.val} == {"val"}
    capped = collect_examples(store, project, max_images=12)
    assert len(capped.split("all")) == 12
    assert collect_examples(store, project, max_images=12).split("all") == capped.split("all")  # deterministic
    everything = collect_examples(store, project, train_on="all")
    assert len(everything.train) == 30


def test_collect_examples_keeps_a_given_label_order(store, digits_dir):
    project = add_digits(store, digits_dir, classes=("0", "1"), per_class=4)
    data = collect_examples(store, project, labels=["1", "0", "9"])
    assert data.labels == ["1", "0", "9"]
    assert {e.label for e in data.split("all")} == {0, 1}


def test_load_image_applies_exif_orientation(store):
    project = store.create_project("exif", "classification")
    data = _jpeg_with_orientation(6)  # rotate 90° clockwise to display
    info = probe_image(data)
    assert (info.width, info.height) == (20, 40)
    store.add_images(project, [NewImage(data, "rot.jpg", info.width, info.height, (Annotation("a"),))])
    ex = collect_examples(store, project).split("all")[0]
    arr = load_image(store, ex, 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    # upright: the red half (left of the stored pixels) is now on top, blue at the bottom
    top, bottom = arr[:8].reshape(-1, 3).mean(0), arr[-8:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_corrupt_image_gives_a_message_naming_it(store, digits_dir):
    project = add_digits(store, digits_dir, classes=("0", "1"), per_class=3)
    victim = store.list_images(project)[1]
    store.image_path(victim.id).write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    examples = collect_examples(store, project).split("all")
    with pytest.raises(DatasetError) as err:
        load_images(store, examples, 32)
    assert victim.filename in str(err.value)
    assert "cannot be read" in str(err.value)


def test_tf_pipeline_shapes_ranges_and_augmentation():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 24, 24, 3), dtype=np.uint8)
    labels = one_hot([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], 3)
    ds = make_dataset(images, labels, 4, training=True, augment=True)
    batches = list(ds.as_numpy_iterator())
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    x = np.concatenate([b[0] for b in batches])
    assert x.dtype == np.float32 and x.shape == (10, 24, 24, 3)
    assert 0.0 <= x.min() and x.max() <= 255.0
    assert np.concatenate([b[1] for b in batches]).sum(0).tolist() == [4, 3, 3]
    assert not np.array_equal(np.sort(x, axis=None), np.sort(images.astype(np.float32), axis=None))  # augmented
    plain = np.concatenate([b[0] for b in make_dataset(images, labels, 4).as_numpy_iterator()])
    np.testing.assert_array_equal(plain, images.astype(np.float32))  # no shuffle, no augmentation


def test_memmap_cache_pipeline_keeps_labels_with_images(tmp_path, monkeypatch):
    import core.training.data as data_mod

    monkeypatch.setattr(data_mod, "MEMMAP_ABOVE_BYTES", 0)
    images = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.uint8, shape=(6, 8, 8, 3))
    for i in range(6):
        images[i] = i * 10
    labels = one_hot([i % 3 for i in range(6)], 3)
    seen = []
    for x, y in make_dataset(images, labels, 2, training=True).as_numpy_iterator():
        for xi, yi in zip(x, y):
            i = int(xi[0, 0, 0]) // 10
            assert int(yi.argmax()) == i % 3
            seen.append(i)
    assert sorted(seen) == list(range(6))


def test_representative_images_subsample():
    imgs = np.zeros((50, 4, 4, 3), np.uint8)
    assert len(representative_images(imgs, 10)) == 10
    assert len(representative_images(imgs[:5], 10)) == 5


def test_unconfirmed_predicted_labels_are_left_out(store, digits_dir):
    project = add_digits(store, digits_dir, classes=("0", "1"), per_class=4)
    rec = store.list_images(project)[0]
    store.set_annotations(project, rec.id, [Annotation(label="1", reviewed=False, score=0.6)])
    data = collect_examples(store, project)
    assert rec.id not in {e.image_id for e in data.split("all")}
    assert data.unreviewed == 1 and len(data.split("all")) == 7
