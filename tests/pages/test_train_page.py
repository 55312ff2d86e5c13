"""The Train page under Streamlit's AppTest: the form, starting a job, following it after a reload,
cancelling it, and the messages for projects that are not ready.

The "train" kind is replaced by a fast fake job for most tests (this is a test of the page and the job
engine; real training is tested by the training part). One test lets the page submit the real "train"
kind when ``core.training.jobs`` is importable, and cancels it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs
from core.jobs import kinds
from core.data.annotations import Annotation, Task
from core.jobs import JobContext, JobState, JobTable, LocalRunner
from core.data.store import NewImage, Store
from tests.core.data.helpers import jpeg_bytes

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "train.py")
PROJECT_KEY = "studio.project"


def fake_train(ctx: JobContext, params: dict) -> str:
    """Reports two epochs with metrics, then works until cancelled (or ``params['hparams']['epochs']``
    is 2, then it finishes)."""
    hp = params["hparams"]
    total = int(hp["epochs"])
    for e in range(1, total + 1):
        ctx.check_cancelled()
        ctx.progress(epoch=e, total_epochs=total, metrics={"loss": 1.0 / e, "accuracy": 0.5 + e / 10},
                     message=f"epoch {e}/{total} done")
        if e >= 2 and total > 2:
            while True:
                ctx.check_cancelled()
                time.sleep(0.05)
    return "fake-model"


@pytest.fixture
def fake_kind(monkeypatch):
    monkeypatch.setattr(kinds, "_KINDS", dict(kinds._KINDS))
    jobs.register_job_kind("train", fake_train)


@pytest.fixture
def cleanup(store: Store):
    yield
    r = LocalRunner(store)
    for j in r.active():
        r.cancel(j.id)
    for j in JobTable(store).list():
        r.wait(j.id, timeout=30)


def add_images(store: Store, project, labels: list[str | None]) -> None:
    items = []
    for i, label in enumerate(labels):
        data = jpeg_bytes(40 + i, 30 + i, color=(20 * i % 255, 100, 50))
        anns = [Annotation(label)] if label else []
        items.append(NewImage(data, f"img{i}.jpg", 40 + i, 30 + i, annotations=anns,
                              split="val" if i % 4 == 3 else "train"))
    store.add_images(project, items)


@pytest.fixture
def ready(env, store: Store):
    project = store.create_project("shapes", Task.CLASSIFICATION)
    add_images(store, project, ["circle"] * 12 + ["square"] * 12)
    return project


def page(project: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[PROJECT_KEY] = project
    return at.run()


def start_button(at: AppTest):
    return next(b for b in at.button if b.label == "Start training")


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [s.value for s in at.subheader]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def wait_for(pred, timeout=15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_form_renders_with_task_settings(ready):
    at = page("shapes")
    assert not at.exception, at.exception
    assert at.title[0].value == "Train"
    assert start_button(at)
    labels = {w.label for w in [*at.selectbox, *at.number_input, *at.checkbox, *at.radio]}
    for needed in ("Image size (pixels)", "Epochs", "Batch size", "Learning rate", "Model width (alpha)",
                   "Starting weights", "Train on all images (also validation and test)"):
        assert needed in labels, needed
    assert not at.slider  # no detection extras for classification
    assert "24 labelled images in 2 classes" in texts(at)
    assert "No training runs" in texts(at)


def test_presets_change_the_defaults(ready):
    at = page("shapes")  # the quick run is the default, for trying things
    size = next(s for s in at.selectbox if s.label == "Image size (pixels)")
    epochs = next(n for n in at.number_input if n.label == "Epochs")
    assert size.value == 96 and epochs.value == 3
    at.radio(key="studio.train.preset").set_value("full").run()
    size = next(s for s in at.selectbox if s.label == "Image size (pixels)")
    epochs = next(n for n in at.number_input if n.label == "Epochs")
    assert size.value == 224 and epochs.value == 30


def test_detection_project_has_detection_extras(env, store):
    project = store.create_project("balls", Task.DETECTION)
    from core.data.boxes import Box

    data = [jpeg_bytes(64, 48, color=(10 * i, 0, 0)) for i in range(4)]
    store.add_images(project, [NewImage(d, f"b{i}.jpg", 64, 48, annotations=[Annotation("ball", Box(1, 1, 20, 20))])
                               for i, d in enumerate(data)])
    at = page("balls")
    assert not at.exception, at.exception
    assert {s.label for s in at.slider} == {"Minimum score", "Overlap (IoU) for merging boxes"}
    assert any(n.label == "Max boxes per photo" for n in at.number_input)
    assert next(s for s in at.selectbox if s.label == "Image size (pixels)").value == 256  # quick run


@pytest.mark.parametrize("labels,expected", [
    ([], "no images yet"),
    ([None] * 5, "has a label yet"),
    (["circle"] * 6, "at least two classes"),
    (["circle"] * 6 + ["square"], "Too few images for **square** (1)"),
])
def test_clear_messages_when_the_project_is_not_ready(env, store, labels, expected):
    project = store.create_project("notready", Task.CLASSIFICATION)
    if labels:
        add_images(store, project, labels)
    at = page("notready")
    assert not at.exception, at.exception
    assert any(expected in e.value for e in at.error), [e.value for e in at.error]
    assert not [b for b in at.button if b.label == "Start training"]


def test_few_images_per_class_is_a_warning(env, store):
    project = store.create_project("few", Task.CLASSIFICATION)
    add_images(store, project, ["a"] * 3 + ["b"] * 3 + [None])
    at = page("few")
    assert not at.error
    w = "\n".join(x.value for x in at.warning)
    assert "Few images for **a** (3), **b** (3)" in w and "1 of 7 images have no label" in w
    assert start_button(at)


def test_submit_creates_a_job_shown_after_reload_and_cancel_works(ready, store, fake_kind, cleanup):
    at = page("shapes")
    at.radio(key="studio.train.preset").set_value("full").run()
    next(n for n in at.number_input if n.label == "Epochs").set_value(7)
    start_button(at).click().run()
    assert not at.exception, at.exception
    table = JobTable(store)
    [job] = table.list(project="shapes")
    assert job.kind == "train"
    assert job.params["task"] == "classification" and job.params["project"] == "shapes"
    assert job.params["hparams"]["epochs"] == 7 and job.params["hparams"]["image_size"] == 224
    assert job.params["hparams"]["weights"] == "imagenet"
    assert wait_for(lambda: table.get(job.id).epoch == 2)

    # a fresh session (reload / another tab) finds the running job of the project
    at2 = page("shapes")
    assert not at2.exception, at2.exception
    assert f"Training job {job.id}" in texts(at2)
    assert at2.get("progress")
    assert "epoch 2/7" in at2.get("progress")[0].proto.text
    assert len(at2.get("vega_lite_chart")) == 2  # loss curve and metric curve
    assert "**Loss** (lower is better)" in texts(at2)
    assert [b.label for b in at2.button if "training" in b.label.lower()] == \
        ["Cancel training", "Queue another training run"]
    cancel = next(b for b in at2.button if b.label == "Cancel training")
    t0 = time.monotonic()
    cancel.click().run()
    assert not at2.exception, at2.exception
    assert wait_for(lambda: table.get(job.id).state is JobState.CANCELLED, timeout=10)
    assert time.monotonic() - t0 < 10
    at2.run()
    assert "was cancelled" in texts(at2)
    assert any("cancelled" in str(v) for v in at2.dataframe[0].value["state"])


def test_finished_job_shows_result_and_history(ready, store, fake_kind):
    at = page("shapes")
    next(n for n in at.number_input if n.label == "Epochs").set_value(2)
    start_button(at).click().run()
    [job] = JobTable(store).list(project="shapes")
    assert job.params["hparams"]["image_size"] == 96 and job.params["hparams"]["max_images"] == 200
    assert wait_for(lambda: JobTable(store).get(job.id).state is JobState.SUCCEEDED)
    at.run()
    assert not at.exception, at.exception
    assert "Training finished" in texts(at) and "fake-model" in texts(at)
    assert not at.warning  # accuracy 0.7 with 2 classes: worth trying, no "has not learned" advice
    hist = at.dataframe[0].value
    assert list(hist["model"]) == ["fake-model"] and "accuracy 0.700" in list(hist["result"])[0]
    next(b for b in at.button if b.label == "Dismiss").click().run()
    assert "Training job" not in texts(at)


def test_real_train_kind_is_submitted_and_cancelled(ready, store, cleanup):
    """The page submits the real "train" kind; the job record exists and cancelling ends it."""
    pytest.importorskip("core.training.jobs", reason="the training part's job module is not there yet")
    at = page("shapes")
    # from scratch: ImageNet weights cannot be downloaded here and would fail the job before the cancel
    next(r for r in at.radio if r.label == "Starting weights").set_value("none")
    start_button(at).click().run()
    assert not at.exception, at.exception
    [job] = JobTable(store).list(project="shapes")
    assert job.kind == "train" and job.state in (JobState.QUEUED, JobState.RUNNING)
    assert job.params["hparams"]["weights"] == "none"
    LocalRunner(store).cancel(job.id)
    assert wait_for(lambda: JobTable(store).get(job.id).state.finished, timeout=120)
    final = JobTable(store).get(job.id)
    assert final.state is JobState.CANCELLED, final.error


# -- display helpers of pages/_shared/jobs.py -------------------------------------------------------
@pytest.mark.parametrize("metric,value,classes,weak", [
    ("accuracy (int8)", 0.333, 3, True),     # chance with 3 classes
    ("accuracy (int8)", 0.36, 3, True),      # within a tenth of the way from chance to perfect
    ("accuracy (int8)", 0.45, 3, False),
    ("accuracy (float)", 0.55, 2, True),
    ("accuracy (float)", 0.9, 2, False),
    ("mAP50 (int8)", 0.0, 1, True),
    ("mAP50 (int8)", 0.05, 1, True),
    ("mAP50 (int8)", 0.4, 1, False),
    ("loss", 0.1, 2, False),                 # not a score to judge
])
def test_weak_result_hint(metric, value, classes, weak):
    from pages._shared.jobs import weak_result_hint

    hint = weak_result_hint(metric, value, classes)
    assert (hint is not None) == weak
    if weak:
        assert "has not learned much yet" in hint and "more epochs" in hint


def test_time_left_counts_down_between_reports():
    from core.jobs import Job
    from pages._shared.jobs import seconds_left

    def job(state, eta):
        return Job(id="j", kind="train", project="p", params={}, state=state, progress=0.5, epoch=1,
                   total_epochs=2, metrics={}, message="", error=None, created=0.0, started=100.0, finished=None,
                   artefact_id=None, runner="local", eta=eta)

    events = [{"type": "state", "state": "running", "time": 100.0},
              {"type": "progress", "eta": 60.0, "time": 110.0},
              {"type": "progress", "epoch": 1, "time": 115.0}]  # a report without an estimate
    assert seconds_left(job(JobState.RUNNING, 60.0), events, now=110.0) == 60.0
    assert seconds_left(job(JobState.RUNNING, 60.0), events, now=122.5) == 47.5  # no new report for 12.5 s
    assert seconds_left(job(JobState.RUNNING, 60.0), events, now=500.0) == 0.0   # late: never negative
    assert seconds_left(job(JobState.RUNNING, 33.0), events[:1], now=120.0) == 33.0  # nothing to count from
    assert seconds_left(job(JobState.SUCCEEDED, None), events, now=120.0) is None


def test_curve_names_are_words():
    from pages._shared.jobs import metric_name

    assert metric_name("val_class_logits_loss") == "class loss (validation)"
    assert metric_name("val_loss") == "validation loss" and metric_name("mAP50") == "mAP50"
    assert metric_name("some_new_metric") == "some new metric"


def test_epoch_curves_keep_epoch_ends_only():
    from pages._shared.jobs import epoch_curves

    events = [
        {"type": "state", "state": "running"},
        {"type": "progress", "epoch": 1, "step": 5, "total_steps": 10, "metrics": {"loss": 9.0}},  # mid-epoch
        {"type": "progress", "epoch": 1, "step": 10, "total_steps": 10, "metrics": {"loss": 2.0, "acc": 0.5}},
        {"type": "progress", "epoch": 2, "metrics": {"loss": 1.0, "acc": 0.75, "flag": True}},
        {"type": "progress", "fraction": 1.0, "metrics": {"accuracy": 0.9}},  # final, no epoch
    ]
    assert epoch_curves(events) == {"loss": {1: 2.0, 2: 1.0}, "acc": {1: 0.5, 2: 0.75}}


def test_format_seconds():
    from pages._shared.jobs import format_seconds

    assert format_seconds(None) == "–" and format_seconds(float("nan")) == "–"
    assert format_seconds(12.4) == "12 s" and format_seconds(185) == "3 min 05 s"
    assert format_seconds(3720) == "1 h 02 min"


def test_result_metric_prefers_the_int8_model_in_the_manifest(store):
    from core.data import artefacts
    from pages._shared.jobs import result_metric

    table = JobTable(store)
    jid = table.create("train", {}, "p", "test")
    table.transition(jid, JobState.RUNNING)
    part = artefacts.partial_dir(store.root, "m1")
    artefacts.write_json_atomic(part / artefacts.MANIFEST, {"metrics": {"float": {"mAP50": 0.8},
                                                                        "int8": {"mAP50": 0.75}}})
    artefacts.publish(store.root, part, "m1")
    table.update(jid, metrics={"val_accuracy": 0.6})
    job = table.transition(jid, JobState.SUCCEEDED, artefact_id="m1")
    assert result_metric(job, store) == ("mAP50 (int8)", 0.75)
    table.update(jid, artefact_id="gone")
    assert result_metric(table.get(jid), store) == ("val_accuracy", 0.6)


def test_train_page_inside_the_studio_navigation(ready, make_app):
    at = make_app()
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Train" and start_button(at)


def test_the_last_settings_come_back_after_a_visit_to_another_page(ready, store, make_app, fake_kind, cleanup):
    at = make_app()
    at.run()
    at.switch_page("pages/train.py").run()
    next(n for n in at.number_input if n.label == "Epochs").set_value(2)
    next(r for r in at.radio if r.label == "Starting weights").set_value("none")
    next(s for s in at.selectbox if s.label == "Image size (pixels)").set_value(128)
    start_button(at).click().run()
    assert not at.exception, at.exception
    [job] = JobTable(store).list(project="shapes")
    assert job.params["hparams"]["epochs"] == 2 and job.params["hparams"]["weights"] == "none"
    assert wait_for(lambda: JobTable(store).get(job.id).state.finished)
    at.switch_page("pages/models.py").run()  # the Train page's widgets are forgotten here
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert next(n for n in at.number_input if n.label == "Epochs").value == 2
    assert next(r for r in at.radio if r.label == "Starting weights").value == "none"
    assert next(s for s in at.selectbox if s.label == "Image size (pixels)").value == 128
    at.radio(key="studio.train.preset").set_value("full").run()  # the other preset keeps its own
    assert next(n for n in at.number_input if n.label == "Epochs").value == 30
    fresh = page("shapes")  # a reload / another tab: the last run's settings, from the job record
    assert next(n for n in fresh.number_input if n.label == "Epochs").value == 2
    assert next(r for r in fresh.radio if r.label == "Starting weights").value == "none"
    assert next(s for s in fresh.selectbox if s.label == "Image size (pixels)").value == 128


def weights_then_train(ctx: JobContext, params: dict) -> str:
    """The trainer's first step (resolving the starting weights, here without internet), then done."""
    from core.training.weights import resolve_weights

    hp = params["hparams"]
    resolve_weights(hp["weights"], hp["alpha"], hp["image_size"], timeout=3)
    return "scratch-model"


def test_no_internet_for_the_pretrained_weights_offers_training_from_scratch(ready, store, monkeypatch,
                                                                            weights_offline, cleanup):
    monkeypatch.setattr(kinds, "_KINDS", dict(kinds._KINDS))
    jobs.register_job_kind("train", weights_then_train)
    at = page("shapes")
    assert next(r for r in at.radio if r.label == "Starting weights").value == "imagenet"  # the default
    start_button(at).click().run()
    [job] = JobTable(store).list(project="shapes")
    assert wait_for(lambda: JobTable(store).get(job.id).state.finished)
    at.run()
    assert not at.exception, at.exception
    shown = [e.value for e in at.error]
    assert len(shown) == 1 and "pretrained ImageNet weights could not be downloaded" in shown[0]
    assert "no internet access" in shown[0] and "Traceback" not in texts(at)
    assert JobTable(store).get(job.id).message not in [c.value for c in at.caption]  # said once
    assert next(r for r in at.radio if r.label == "Starting weights").value == "none"  # proposed now
    fresh = page("shapes")  # a reload / another tab knows it too, from the job record
    assert next(r for r in fresh.radio if r.label == "Starting weights").value == "none"
    assert any("could not be downloaded earlier" in c.value for c in fresh.caption)
    assert list(fresh.dataframe[0].value["message"]) == ["Could not download the ImageNet weights (no internet?)"]
    next(b for b in at.button if b.label == "Train from scratch instead").click().run()
    assert not at.exception, at.exception
    newest = JobTable(store).list(project="shapes")[0]
    assert newest.id != job.id and newest.params["hparams"]["weights"] == "none"
    assert {k: v for k, v in newest.params["hparams"].items() if k != "weights"} == \
        {k: v for k, v in job.params["hparams"].items() if k != "weights"}
    assert wait_for(lambda: JobTable(store).get(newest.id).state is JobState.SUCCEEDED)
