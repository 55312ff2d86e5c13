"""The disk fills up (a real 4 MB tmpfs) during an import and a training: a clear error, the store
consistent, nothing already there lost — and the import works once there is space again."""

from __future__ import annotations

import hashlib

import pytest

from core.data.importer import import_paths
from core.data.store_recovery import store_problems
from core.data.store import Store


def _fingerprint(store: Store, project) -> dict[str, str]:
    return {r.id: hashlib.sha256(store.read_image_bytes(r.id)).hexdigest() + f"/{len(r.annotations)}"
            for r in store.list_images(project)}


def test_disk_full_during_an_import(small_disk, digits_dir, raccoon_dir):
    store = Store(small_disk.path / "data")
    digits = store.create_project("digits", "classification")
    assert import_paths(store, digits, [digits_dir / "0", digits_dir / "1"], fmt="images").images_added > 0
    before = _fingerprint(store, digits)
    raccoon = store.create_project("raccoon", "detection")
    report = import_paths(store, raccoon, [raccoon_dir])  # ~10 MB of photos into what is left of 4 MB
    assert not report.ok and "The disk is full" in report.refused and "nothing half-done was kept" in report.refused
    assert store.count_images(raccoon) == 0
    assert _fingerprint(store, digits) == before  # nothing already there lost
    assert store_problems(store) == []
    small_disk.resize(64)  # space again: the same import now works
    report = import_paths(store, raccoon, [raccoon_dir])
    assert report.ok and report.images_added == 200 and store_problems(store, check_hashes=False) == []


@pytest.mark.slow
def test_disk_full_during_a_training(small_disk, digits_dir):
    from core.data import artefacts
    from core.jobs import JobState, LocalRunner, run_foreground
    from tests.core.training.helpers import add_digits

    small_disk.resize(16)
    store = Store(small_disk.path / "data")
    project = add_digits(store, digits_dir, classes=("0", "1"), per_class=6)
    before = _fingerprint(store, project)
    LocalRunner(store).start().stop()  # the app starts while there is room (it keeps a small reserve)
    small_disk.fill(leave=300_000)  # then the disk fills up: the model (about 2 MB) will not fit
    job = run_foreground(store, "train", {"task": "classification", "project": project.name, "hparams": {
        "epochs": 1, "image_size": 64, "alpha": 0.35, "batch_size": 8, "weights": "none",
        "representative_samples": 4, "seed": 1}})
    assert job.state == JobState.FAILED and "The disk is full" in (job.error or ""), job.error
    assert artefacts.list_artefacts(store.root) == []
    assert _fingerprint(store, project) == before
    assert store_problems(store) == []
