"""Continue from a model after adding a class; dataset versions (what changed since, restore); lineage.

One module fixture trains two tiny detectors on synthetic coloured squares through the real "train"
job kind: a parent on 3 classes, then -- after a 4th class is added and 2 photos relabelled -- a
child continued from it on all 4 classes.
"""

from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest

from core.data import artefacts
from core.data.annotations import Annotation
from core.data.boxes import Box
from core.jobs import JobState, run_foreground
from core.data.store import Store
from tests.core.training.retrain.shapes import add_shapes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # two detector trainings in the module fixture

HP = {"image_size": 128, "alpha": 0.35, "weights": "none", "train_on": "all", "epochs": 30, "batch_size": 8,
      "learning_rate": 4e-3, "augment": False, "representative_samples": 4, "score_threshold": 0.3,
      "max_detections": 10, "seed": 0}


def run_cli(argv: list[str]) -> tuple[int, dict]:
    from cli.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(argv)
    return rc, json.loads(out.getvalue().strip().splitlines()[-1])


def train(store, project, **hp):
    job = run_foreground(store, "train", {"task": "detection", "project": project.name, "hparams": {**HP, **hp}})
    return job


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("continue") / "data")
    project = store.create_project("shapes", "detection")
    add_shapes(store, project, ["red", "green", "blue"], per_class=8, seed0=1)
    parent_job = train(store, project)
    assert parent_job.state is JobState.SUCCEEDED, parent_job.error
    parent = artefacts.artefact_path(store.root, parent_job.artefact_id)
    hash_at_training = store.dataset_hash(project)
    # after the training: a 4th class (8 photos added) and 2 photos relabelled (boxes redrawn tighter)
    add_shapes(store, project, ["yellow"], per_class=8, seed0=2)
    relabelled = [r for r in store.list_images(project) if r.filename.startswith("red-")][:2]
    for r in relabelled:
        b = r.annotations[0].box
        store.set_annotations(project, r.id, [Annotation("red", Box(b.x_min + 1, b.y_min + 1, b.x_max - 1,
                                                                     b.y_max - 1))])
    child_job = train(store, project, init_from=parent_job.artefact_id, epochs=20)
    assert child_job.state is JobState.SUCCEEDED, child_job.error
    child = artefacts.artefact_path(store.root, child_job.artefact_id)
    return SimpleNamespace(store=store, project=project, parent=parent, child=child, parent_id=parent_job.artefact_id,
                           child_id=child_job.artefact_id, hash_at_training=hash_at_training,
                           pm=artefacts.load_manifest(parent), cm=artefacts.load_manifest(child))


def test_continued_detector_predicts_all_four_classes(world):
    cm = world.cm
    assert cm["labels"] == ["red", "green", "blue", "yellow"]
    ap50 = cm["metrics"]["float"]["per_class_AP50"]
    print("child per-class AP50", ap50, "parent", world.pm["metrics"]["float"]["per_class_AP50"])
    assert all(ap50[c] is not None and ap50[c] >= 0.5 for c in cm["labels"]), ap50
    assert cm["parent"]["id"] == world.parent_id and cm["parent"]["new_classes"] == ["yellow"]
    assert cm["parent"]["class_sliced"] and cm["parent"]["copied"] > 50
    assert cm["hparams"]["init_from"] == world.parent_id


def test_mismatched_input_size_is_refused_naming_both(world):
    job = train(world.store, world.project, init_from=world.parent_id, image_size=160)
    assert job.state is JobState.FAILED
    assert "128x128" in job.error and "160x160" in job.error and world.parent_id in job.error
    assert not list(artefacts.models_dir(world.store.root).glob(".partial-*"))


def test_dataset_version_changes_are_reported_exactly(world):
    rc, out = run_cli(["models", "changes", world.parent_id, "--data-dir", str(world.store.root)])
    assert rc == 0
    assert (out["trained_on"], out["added"], out["relabelled"], out["removed"]) == (24, 8, 2, 0)
    assert out["summary"] == "trained on 24 photos; 8 added and 2 relabelled since"
    rc, listed = run_cli(["models", "list", "--project", "shapes", "--data-dir", str(world.store.root)])
    rows = {r["id"]: r for r in listed["models"]}
    assert rows[world.parent_id]["summary"] == out["summary"]
    assert rows[world.child_id]["summary"] == "trained on 32 photos; the dataset has not changed since"
    assert rows[world.child_id]["parent"] == world.parent_id


def test_restoring_a_version_gives_the_same_dataset_hash(world, tmp_path):
    rc, out = run_cli(["models", "restore-dataset", world.parent_id, "--as", "shapes-v1", "--export", "voc",
                       "--out", str(tmp_path / "v1.zip"), "--data-dir", str(world.store.root)])
    assert rc == 0, out
    assert out["dataset_hash"] == world.hash_at_training == world.pm["dataset_hash"]
    assert out["images"] == 24 and (tmp_path / "v1.zip").stat().st_size > 0
    rc, again = run_cli(["models", "restore-dataset", world.parent_id, "--as", "shapes-v1",
                         "--data-dir", str(world.store.root)])
    assert rc == 2 and "exists already" in again["error"]


def test_lineage_compares_parent_and_child_on_the_current_split(world):
    from core.training.lineage import chain, evaluate_current

    ids = [m["id"] for m in chain(world.store.root, world.child_id)]
    assert ids == [world.child_id, world.parent_id]
    p = evaluate_current(world.store, world.parent_id, world.project, "all")
    c = evaluate_current(world.store, world.child_id, world.project, "all")
    assert p["dataset_hash"] == c["dataset_hash"] == world.store.dataset_hash(world.project)
    assert p.get("unknown_classes") == ["yellow"] and "unknown_classes" not in c  # added since the parent
    assert c["float_mAP50"] > p["float_mAP50"]  # the parent never saw yellow: AP 0 for it
    rc, out = run_cli(["models", "evaluate-current", world.parent_id, "--split", "all",
                       "--data-dir", str(world.store.root)])
    assert rc == 0 and out["float_mAP50"] == p["float_mAP50"]


def test_transfer_keeps_old_class_weights_and_inits_new_ones():
    from core.training.continue_from import transfer_weights
    from core.training.detection.model import build_detector

    old = build_detector(3, 128, 0.35)
    rng = np.random.default_rng(0)
    for layer in old.model.layers:
        if layer.weights:
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    new = build_detector(4, 128, 0.35)
    before = {l.name: [w.copy() for w in l.get_weights()] for l in new.model.layers}
    report = transfer_weights(old.model, new.model, ["a", "b", "c"], ["a", "b", "c", "d"])
    assert report["new_classes"] == ["d"] and not report["reinitialised"]
    o, n = old.model.get_layer("head0_cls_pw"), new.model.get_layer("head0_cls_pw")
    ko, kn = o.get_weights()[0], n.get_weights()[0]
    a = ko.shape[-1] // 3
    ko, kn = ko.reshape(*ko.shape[:-1], a, 3), kn.reshape(*kn.shape[:-1], a, 4)
    np.testing.assert_array_equal(kn[..., :3], ko)
    kb = before["head0_cls_pw"][0].reshape(kn.shape)
    np.testing.assert_array_equal(kn[..., 3], kb[..., 3])  # the new class keeps its fresh init
    for name in ("head0_box_pw", "head2_box_dw"):
        for w_old, w_new in zip(old.model.get_layer(name).get_weights(), new.model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(w_old, w_new)


def test_injected_label_errors_are_found_in_the_top_list(world):
    """8 label errors injected into a copy of the child's dataset (3 boxes drawn on empty background instead of
    on their square, 3 boxes with the wrong class, 2 extra boxes on empty background): most are in the top 8
    likely mistakes. (Photos with a square left unlabelled need a second square the model has never seen
    together with another: this tiny from-scratch model does not find those, so it is not asked to.)"""
    from core.data import versions
    from core.training.active_learning import rank_photos

    store = world.store
    copy = versions.restore(store, versions.read_version(world.child), "shapes-errors")
    recs = store.list_images(copy)
    injected = set()

    def empty_corner(b: Box) -> Box:
        return Box(0, 0, 20, 20) if b.x_min > 30 or b.y_min > 30 else Box(100, 100, 127, 127)

    for cls in ("red", "blue", "yellow"):  # misplaced: the square has no box, the box holds no square
        r = next(r for r in recs if r.annotations[0].label == cls and r.id not in injected)
        store.set_annotations(copy, r.id, [Annotation(cls, empty_corner(r.annotations[0].box))])
        injected.add(r.id)
    swap = {"blue": "green", "red": "yellow", "yellow": "red"}
    for cls in swap:
        r = next(r for r in recs if r.annotations[0].label == cls and r.id not in injected)
        store.set_annotations(copy, r.id, [Annotation(swap[cls], r.annotations[0].box)])
        injected.add(r.id)
    for r in [r for r in recs if r.annotations[0].label == "green" and r.id not in injected][:2]:
        store.set_annotations(copy, r.id, [r.annotations[0], Annotation("green", empty_corner(r.annotations[0].box))])
        injected.add(r.id)
    assert len(injected) == 8
    ranked = rank_photos(store, copy, world.child_id)
    top = [i["image_id"] for i in ranked["mistakes"][:8]]
    found = len(injected & set(top))
    print(f"label errors found in the top 8 likely mistakes: {found} of 8 "
          f"(top 16: {len(injected & {i['image_id'] for i in ranked['mistakes'][:16]})})")
    scores = {i["image_id"]: round(i["score"], 2) for i in ranked["mistakes"]}
    print("injected:", sorted(scores.get(i, 0.0) for i in injected), "others:",
          sorted((v for k, v in scores.items() if k not in injected), reverse=True)[:10])
    assert found >= 6  # "most of them" (measured: 8 of 8, no correct photo flagged)
    assert all(i["reasons"] for i in ranked["mistakes"][:8])
    rc, out = run_cli(["models", "rank", world.child_id, "--top", "3", "--data-dir", str(store.root)])
    assert rc == 0 and len(out["mistakes"]) <= 3
