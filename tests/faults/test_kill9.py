"""kill -9 in the middle of an import, an export and a model publish; then restart: the store is
consistent (``core.data.store_recovery.store_problems`` finds nothing), nothing is half-there, and the next try works."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from core.data import artefacts
from core.data.importer import import_paths
from core.jobs import JobState, JobTable, LocalRunner
from core.data.store_recovery import store_problems
from core.data.store import Store
from tests.faults.helpers import any_file_under, kill_when, start_cli


def restart(data_dir: Path) -> Store:
    """What the app does when it starts again: open the store and start (then stop) the job runner."""
    store = Store(data_dir)
    runner = LocalRunner(store).start()
    runner.stop()
    return store


def test_kill9_during_an_import_leaves_no_half_imported_photo(tmp_path, digits_dir):
    data = tmp_path / "data"
    store = Store(data)
    project = store.create_project("digits", "classification")
    for attempt in range(3):  # the kill must land while image files are written, before the commit
        proc = start_cli(data, "dataset", "import", "--project", "digits", "--task", "classification",
                         "--format", "folders", str(digits_dir))
        assert kill_when(proc, any_file_under(data / "images")), "the import ended before it wrote a file"
        if store.count_images(project) == 0:
            break
        store.delete_project(project)  # it committed before the kill: try again from empty
        project = store.create_project("digits", "classification")
    else:
        pytest.fail("the kill never landed inside the import's transaction")
    left = [p for p in (data / "images").rglob("*") if p.is_file()]
    assert left, "the killed import had written image files"
    store = restart(data)
    assert store_problems(store) == []
    assert store.count_images(project) == 0 and store.stats(project)["boxes"] == 0
    assert not [p for p in (data / "images").rglob("*") if p.is_file()]  # the dead import's files are gone
    report = import_paths(store, project, [digits_dir], fmt="folders")
    assert report.ok and report.images_added == 2062
    assert store_problems(store, check_hashes=False) == []


def test_kill9_during_an_export_leaves_no_half_written_export(tmp_path, raccoon_dir):
    data = tmp_path / "data"
    store = Store(data)
    project = store.create_project("raccoon", "detection")
    assert import_paths(store, project, [raccoon_dir]).images_added == 200
    before = store.stats(project)
    out = tmp_path / "out" / "raccoon-coco.zip"
    out.parent.mkdir()
    proc = start_cli(data, "dataset", "export", "--project", "raccoon", "--format", "coco", "--out", str(out))
    assert kill_when(proc, any_file_under(out.parent, "*.jpg")), "the export ended before it wrote a photo"
    assert not out.exists()  # never a half-written zip under the asked name
    assert all(p.name.startswith(".") for p in out.parent.iterdir())  # only hidden work files
    store = restart(data)
    assert store_problems(store) == [] and store.stats(project) == before
    proc = start_cli(data, "dataset", "export", "--project", "raccoon", "--format", "coco", "--out", str(out))
    assert proc.wait(300) == 0
    with zipfile.ZipFile(out) as z:
        doc = json.loads(z.read("annotations.json"))
        assert len(doc["images"]) == 200 and len([n for n in z.namelist() if n.endswith(".jpg")]) == 200


@pytest.mark.slow
def test_kill9_during_a_model_publish_leaves_no_half_written_model(tmp_path, digits_dir):
    from tests.core.training.helpers import add_digits

    data = tmp_path / "data"
    store = Store(data)
    add_digits(store, digits_dir, classes=("0", "1"), per_class=6)
    proc = start_cli(data, "train", "--project", "digits", "--epochs", "1", "--image-size", "64", "--alpha",
                     "0.35", "--batch-size", "8", "--weights", "none", "--no-progress")
    models = artefacts.models_dir(data)
    assert kill_when(proc, any_file_under(models, ".partial-*/*"), timeout=600), \
        "training ended before its model folder was being written"
    assert list(models.glob(".partial-*"))  # killed while the model folder was half-written
    store = restart(data)
    assert store_problems(store) == []
    assert artefacts.list_artefacts(data) == [] and not list(models.glob(".partial-*"))
    jobs = JobTable(store).list()
    assert [j.state for j in jobs] == [JobState.INTERRUPTED]  # no job left "running" forever
