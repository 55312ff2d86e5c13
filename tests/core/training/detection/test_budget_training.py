"""A real detection job with a time budget: it ends on time, keeps the best-mAP weights, and the
*Full training* preset's early stopping (patience 5, from scratch) no longer ends it early.

Tiny on purpose: 96 px, width 0.35, 16 + 8 raccoon photos, a 2-minute budget.
"""

from __future__ import annotations

import pytest

from core.data import artefacts
from core.jobs import JobState
from tests.core.training.detection.helpers import add_raccoons, run_detection_job

pytestmark = pytest.mark.slow

BUDGET_MINUTES = 2.0


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory, raccoon_dir):
    from core.data.store import Store
    from core.training.hparams import DetectionHParams

    store = Store(tmp_path_factory.mktemp("det-budget") / "data")
    project = add_raccoons(store, raccoon_dir, count=24)
    ids = [r.id for r in store.list_images(project)]
    store.set_split(project, ids[16:], "val")
    # the Train page's Full training preset (defaults + a budget), shrunk to a tiny model
    hp = {**DetectionHParams().to_dict(), "minutes": BUDGET_MINUTES, "image_size": 96, "alpha": 0.35,
          "weights": "none", "representative_samples": 4, "learning_rate": 3e-3}
    assert hp["early_stopping_patience"] == 5
    job = run_detection_job(store, project, hp)
    assert job.state == JobState.SUCCEEDED, job.error
    folder = artefacts.artefact_path(store.root, job.artefact_id)
    return store, project, folder, artefacts.load_manifest(folder)


def test_budget_is_honoured(budget_run):
    _, _, _, m = budget_run
    tr = m["training"]
    budget = BUDGET_MINUTES * 60
    assert 0.8 * budget <= tr["fit_seconds"] <= 1.2 * budget, tr
    assert tr["minutes"] == BUDGET_MINUTES
    sel = tr["selection"]
    assert sel["planned_epochs"] == tr["epochs_run"] or sel["stopped_early"]


def test_full_preset_does_not_stop_in_its_first_half(budget_run):
    _, _, _, m = budget_run
    tr = m["training"]
    # from scratch: an mAP plateau may end the run only after half of the budget
    assert tr["fit_seconds"] >= 0.5 * BUDGET_MINUTES * 60, tr["selection"]
    assert tr["epochs_run"] >= 4


def test_kept_weights_are_the_best_map_epochs(budget_run):
    import keras

    from core.training.detection.anchors import AnchorSpec, generate_anchors
    from core.training.detection.data import ImageCache, examples_from_records, model_input
    from core.training.detection.fast_map import make_val_evaluator

    store, project, folder, m = budget_run
    sel = m["training"]["selection"]
    curve = {int(k): v for k, v in sel["val_mAP50"].items()}
    assert len(curve) >= 3  # evaluated every few epochs, not once
    best_epoch = max(curve, key=lambda e: (curve[e], -e))
    assert sel["best_epoch"] == best_epoch and sel["best_val_mAP50"] == curve[best_epoch]
    # the published float model scores exactly the best point of the curve on the val photos
    size = m["input_size"][0]
    model = keras.saving.load_model(folder / artefacts.FLOAT_MODEL, compile=False)
    anchors = generate_anchors(AnchorSpec.from_dict(m["detection"]["anchor_spec"]))
    val = examples_from_records(store.list_images(project, split="val"), m["labels"])
    cache = ImageCache(store, 2 * size)
    inputs = [model_input(cache.load(e.image_id), size, m["resize"]) for e in val]
    again = make_val_evaluator(model, inputs, val, anchors, len(m["labels"]), m["resize"])()
    assert again == pytest.approx(sel["best_val_mAP50"], abs=1e-3)
    if len(set(curve.values())) > 1:  # a curve that moved: the last point is not what was kept
        assert sel["best_val_mAP50"] == max(curve.values())


def test_val_map_curve_is_reported_beside_the_losses(budget_run):
    from core.jobs import JobTable

    store, _, _, m = budget_run

    table = JobTable(store)
    events = table.events(table.list(limit=1)[0].id)
    with_map = [e for e in events if "val_mAP50" in (e.get("metrics") or {})]
    assert len(with_map) >= 3 and all("loss" in e["metrics"] for e in with_map)
    assert m["detection"]["max_detections"] == 20  # raccoon photos hold 1-3 boxes: the data's minimum
