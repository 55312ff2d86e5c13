"""Retraining on the pages (AppTest): Resume on an interrupted job, Start from refusal, class-balance warning."""

from __future__ import annotations

import json
import subprocess
import sys

from core.data import artefacts
from core import jobs
from core.jobs import JobState, JobTable
from core.training import checkpoint
from tests.pages.test_train_page import cleanup, fake_kind, page, ready  # noqa: F401 - fixtures


def _interrupted(store, project: str) -> str:
    t = JobTable(store)
    jid = t.create("train", {"task": "classification", "project": project,
                             "hparams": {"epochs": 2, "image_size": 96}}, project, "local")
    t.transition(jid, JobState.RUNNING)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    t.update(jid, owner_pid=p.pid, owner_token="dead", owner_host=jobs.HOST, owner_start="1")
    d = checkpoint.checkpoint_dir(store.root, jid) / "e0001"
    d.mkdir(parents=True)
    (d / "state.pkl").write_bytes(b"x")
    (d.parent / checkpoint.LATEST).write_text(json.dumps({"epoch": 1, "dir": "e0001"}))
    return jid


def test_resume_button_on_an_interrupted_job_submits_the_resume(ready, store, fake_kind, cleanup):
    jid = _interrupted(store, "shapes")
    at = page("shapes")
    # follow the interrupted job as the page does after a restart
    at.selectbox(key="studio.train.history.pick").set_value(jid).run()
    assert not at.exception, at.exception
    resume = next(b for b in at.button if b.label.startswith("Resume"))
    assert "after epoch 1" in resume.label
    resume.click().run()
    assert not at.exception, at.exception
    new = [j for j in JobTable(store).list(project="shapes") if j.id != jid]
    assert new and new[0].params["resume_from"] == jid


def test_start_from_a_model_of_another_size_is_refused_on_the_page(ready, store, fake_kind, cleanup):
    folder = artefacts.models_dir(store.root) / "20260101-000000-aaaaaa"
    folder.mkdir()
    artefacts.write_json_atomic(folder / artefacts.MANIFEST, {
        "id": folder.name, "project": "shapes", "task": "classification", "labels": ["circle", "square"],
        "input_size": [128, 128], "model": {"alpha": 0.35}, "created": 1.0,
        "metrics": {"float": {"accuracy": 0.9}, "split": "test"}})
    at = page("shapes")
    at.radio(key="studio.train.preset").set_value("full").run()
    start = next(s for s in at.selectbox if s.label == "Start from")
    start.set_value(folder.name)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "128x128" in errors and "224x224" in errors
    assert not JobTable(store).list(project="shapes")


def test_class_balance_warns_about_rare_classes(env, store):
    from core.data.annotations import Task
    from tests.pages.test_train_page import add_images

    project = store.create_project("rare", Task.CLASSIFICATION)
    add_images(store, project, ["common"] * 20 + ["rare"] * 3)
    at = page("rare")
    assert not at.exception, at.exception
    assert any("Class 'rare' has only" in w.value for w in at.warning)


def test_models_page_reports_dataset_changes_and_restores_the_version(env, store):
    from core.data import versions
    from core.data.annotations import Annotation
    from core.data.store import NewImage
    from tests.core.data.helpers import jpeg_bytes
    from tests.pages import test_models_page as mp

    project = store.create_project("pets", "classification")
    store.add_images(project, [NewImage(jpeg_bytes(40 + i, 30), f"{i}.jpg", 40 + i, 30,
                                        annotations=(Annotation("cat" if i % 2 else "dog"),)) for i in range(10)])
    trained = versions.dataset_version(store, project)
    folder = mp.write_model(store, "pets", "20260101-000000-cccccc", mp.classification_manifest())
    versions.write_version(folder, trained)
    # after the training: 3 photos added, 2 relabelled
    store.add_images(project, [NewImage(jpeg_bytes(70 + i, 30), f"new{i}.jpg", 70 + i, 30,
                                        annotations=(Annotation("cat"),)) for i in range(3)])
    for r in store.list_images(project)[:2]:
        store.set_class_label(project, [r.id], "dog" if r.class_label == "cat" else "cat")
    at = mp.page("pets")
    assert not at.exception, at.exception
    assert "trained on 10 photos; 3 added and 2 relabelled since" in mp.texts(at)
    next(b for b in at.button if b.label == "Restore into a new project").click().run()
    assert not at.exception, at.exception
    restored = store.get_project("pets @ 20260101-000000-cccccc")
    assert store.dataset_hash(restored) == trained["hash"]


def test_caption_size_scales_with_the_photo_and_hides():
    from pages._shared.retrain import caption_font_size

    assert caption_font_size(480, 3) < caption_font_size(1000, 3) <= 18
    assert caption_font_size(1000, 25) < caption_font_size(1000, 3)
    assert caption_font_size(1000, 3, show=False) == 1
