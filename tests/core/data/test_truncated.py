"""Truncated JPEGs (real raccoon photos cut short): kept when usable, skipped when mostly missing,
and training never fails on one."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data.imaging import open_upright
from core.data.importer import import_source
from core.data.sources import MemorySource
from core.data.truncated import MAX_MISSING_FRACTION, decode_cut_short, is_cut_short_jpeg, probe_or_repair
from tests.core.training.detection.helpers import voc_boxes


def _photo(raccoon_dir, n: int) -> bytes:
    return (raccoon_dir / "images" / f"raccoon-{n}.jpg").read_bytes()


def _voc(raccoon_dir, n: int) -> bytes:
    return (raccoon_dir / "annotations" / f"raccoon-{n}.xml").read_bytes()


def test_missing_fraction_grows_as_the_file_shrinks(raccoon_dir):
    data = _photo(raccoon_dir, 1)
    assert not is_cut_short_jpeg(data) and is_cut_short_jpeg(data[:-100])
    fractions = [decode_cut_short(data[: int(len(data) * f)])[1] for f in (0.95, 0.7, 0.4, 0.1)]
    assert fractions == sorted(fractions) and 0 < fractions[0] < 0.1 and fractions[-1] > 0.8


def test_usable_cut_short_photo_is_kept_repaired_and_a_mostly_missing_one_skipped(store, raccoon_dir):
    p = store.create_project("p", "detection")
    files = {f"raccoon-{n}.jpg": _photo(raccoon_dir, n) for n in (1, 2, 3)}
    files.update({f"raccoon-{n}.xml": _voc(raccoon_dir, n) for n in (1, 2, 3)})
    files["raccoon-2.jpg"] = files["raccoon-2.jpg"][: int(len(files["raccoon-2.jpg"]) * 0.75)]  # bottom cut
    files["raccoon-3.jpg"] = files["raccoon-3.jpg"][: int(len(files["raccoon-3.jpg"]) * 0.25)]  # most gone
    r = import_source(store, p, MemorySource(files))
    assert r.ok and r.images_added == 2
    rows = {i.item: (i.action, i.reason) for i in r.issues}
    action, reason = rows["raccoon-2.jpg"]
    assert action == "repaired" and "cut short" in reason and "% of the photo" in reason
    pct = int(reason.split("about ")[1].split("%")[0])
    assert 0 < pct <= MAX_MISSING_FRACTION * 100
    action, reason = rows["raccoon-3.jpg"]
    assert action == "skipped" and "more than half" in reason
    # the kept photo is stored whole: every reader decodes it, its bottom is grey, its boxes are kept
    rec = next(x for x in store.list_images(p) if x.filename == "raccoon-2.jpg")
    stored = store.read_image_bytes(rec.id)
    assert stored.endswith(b"\xff\xd9")
    im = Image.open(io.BytesIO(stored))
    im.load()
    a = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(a[-1] - 128).max() <= 3 and np.abs(a[0] - 128).max() > 20
    assert len(rec.boxes) == len(voc_boxes(raccoon_dir / "annotations" / "raccoon-2.xml"))
    assert (rec.width, rec.height) == Image.open(io.BytesIO(_photo(raccoon_dir, 2))).size


def test_same_cut_short_file_twice_is_a_noop(store, raccoon_dir):
    p = store.create_project("p", "detection")
    data = _photo(raccoon_dir, 4)
    cut = {"raccoon-4.jpg": data[: int(len(data) * 0.8)]}
    assert import_source(store, p, MemorySource(cut)).images_added == 1
    again = import_source(store, p, MemorySource(cut))
    assert (again.images_added, again.images_existing) == (0, 1)


def test_a_photo_cut_short_on_disk_still_opens(raccoon_dir, tmp_path):
    data = _photo(raccoon_dir, 5)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * 0.6)])
    for src in (str(path), path.read_bytes()):
        im = open_upright(src)
        assert im.mode == "RGB" and im.size == Image.open(io.BytesIO(data)).size
    with pytest.raises(Exception):
        open_upright(b"\xff\xd8\xff\xe0 not a photo")


def test_probe_leaves_whole_photos_alone(raccoon_dir):
    data = _photo(raccoon_dir, 6)
    info, out, note = probe_or_repair(data)
    assert out is data and note is None and info.format == "JPEG"


@pytest.mark.slow
def test_training_succeeds_with_cut_short_photos_in_the_store(store, raccoon_dir):
    """One photo repaired at import, one cut short on disk afterwards: a tiny job trains and publishes."""
    from core.jobs import JobState, run_foreground

    p = store.create_project("p", "classification")
    files = {f"{'ab'[n % 2]}/raccoon-{n}.jpg": _photo(raccoon_dir, n) for n in range(1, 9)}
    files["b/raccoon-1.jpg"] = files["b/raccoon-1.jpg"][: int(len(files["b/raccoon-1.jpg"]) * 0.7)]
    r = import_source(store, p, MemorySource(files), fmt="folders")
    assert r.images_added == 8 and [i.action for i in r.issues] == ["repaired"]
    victim = next(x for x in store.list_images(p) if x.filename == "raccoon-4.jpg")
    path = store.image_path(victim.id)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])  # damaged on disk later
    store.assign_splits(p, (0.5, 0.25, 0.25))
    job = run_foreground(store, "train", {"task": "classification", "project": p.name, "hparams": {
        "epochs": 1, "image_size": 64, "alpha": 0.35, "batch_size": 4, "weights": "none",
        "representative_samples": 4, "seed": 1}})
    assert job.state == JobState.SUCCEEDED, job.error
