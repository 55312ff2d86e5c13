"""Classification end to end: a tiny MobileNetV2 trained through the job runner on real sign-language
digits, exported to int8, evaluated, published; plus cancel, corrupt-image and offline-weights failures.

One model is trained for the whole module (module-scoped fixture) to keep CPU time small.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from types import SimpleNamespace

import numpy as np
import pytest

from core.data import artefacts
from core.jobs import JobState, JobTable, LocalRunner, run_foreground
from core.data.store import Store
from tests.core.training.helpers import FakeContext, add_digits

pytestmark = pytest.mark.slow

HP = {"epochs": 3, "image_size": 64, "alpha": 0.35, "batch_size": 8, "weights": "none",
      "learning_rate": 2e-3, "representative_samples": 16, "seed": 1}


def run_cli(argv: list[str]) -> tuple[int, dict, str]:
    """Run ``python -m cli …`` in-process; returns (exit code, last-line JSON, all stdout)."""
    from cli.__main__ import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    out = buf.getvalue()
    return rc, json.loads(out.strip().splitlines()[-1]), out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_dir):
    """One model for the module, trained by the CLI (``python -m cli train``: run_foreground)."""
    store = Store(tmp_path_factory.mktemp("cls") / "data")
    project = add_digits(store, digits_dir, classes=("0", "1", "2"), per_class=14)
    t0 = time.monotonic()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):  # the progress bar
        rc, summary, _ = run_cli(["train", "--data-dir", str(store.root), "--project", project.name,
                                  "--epochs", "3", "--image-size", "64", "--alpha", "0.35", "--batch-size", "8",
                                  "--learning-rate", "0.002", "--weights", "none", "--seed", "1"])
    seconds = time.monotonic() - t0
    assert rc == 0 and summary["ok"], summary
    table = JobTable(store)
    job = table.get(summary["job_id"])
    folder = artefacts.artefact_path(store.root, job.artefact_id)
    return SimpleNamespace(store=store, project=project, job=job, events=table.events(job.id), folder=folder,
                           manifest=artefacts.load_manifest(folder), seconds=seconds, summary=summary,
                           progress_bar=err.getvalue())


def test_cli_train_prints_artefact_and_metrics_last(trained):
    s = trained.summary
    assert s["artefact"] == str(trained.folder) and s["artefact_id"] == trained.job.artefact_id
    assert set(s["metrics"]) >= {"float", "int8"} and "accuracy" in s["metrics"]["int8"]


def test_job_goes_through_its_states_with_progress(trained):
    states = [e["state"] for e in trained.events if e.get("type") == "state"]
    assert states == ["queued", "running", "succeeded"]
    progress = [e for e in trained.events if e.get("type") == "progress"]
    epochs_done = [e["epoch"] for e in progress if e.get("metrics") and "val_loss" in e["metrics"]]
    assert epochs_done == [1, 2, 3]
    fractions = [e["fraction"] for e in progress if "fraction" in e]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "batch" in trained.progress_bar  # per-batch progress reached the live display …
    assert all("step" not in e or e["step"] >= e["total_steps"] for e in progress)  # … and was not kept
    assert trained.job.artefact_id == trained.manifest["id"]


def test_cli_jobs_list(trained):
    rc, out, _ = run_cli(["jobs", "list", "--data-dir", str(trained.store.root)])
    assert rc == 0
    assert [(j["id"], j["kind"], j["state"]) for j in out["jobs"]] == [(trained.job.id, "train", "succeeded")]


def test_artefact_folder_and_manifest(trained):
    m, folder = trained.manifest, trained.folder
    for name in (artefacts.FLOAT_MODEL, artefacts.INT8_MODEL, artefacts.LABELS, artefacts.MANIFEST):
        assert (folder / name).is_file()
    assert (folder / artefacts.LABELS).read_text().split() == ["0", "1", "2"]
    assert m["task"] == "classification" and m["project"] == "digits" and m["labels"] == ["0", "1", "2"]
    assert m["input_size"] == [64, 64]
    assert m["dataset_hash"] == trained.store.dataset_hash(trained.project)
    assert m["hparams"]["alpha"] == 0.35 and m["hparams"]["epochs"] == 3
    assert set(m["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(m["history"]["loss"]) == 3
    for kind in ("float", "int8"):
        assert set(m["metrics"][kind]) >= {"accuracy", "per_class", "confusion_matrix"}
        assert np.array(m["metrics"][kind]["confusion_matrix"]).shape == (3, 3)
    q = m["quantization"]
    assert q["input"] == {"scale": 1.0, "zero_point": 0, "dtype": "uint8", "shape": [1, 64, 64, 3]}
    assert q["output"]["dtype"] == "uint8"
    assert not list(folder.parent.glob(".partial-*"))
    assert not (trained.store.root / "jobs" / trained.job.id).exists()  # work folder cleaned


def test_int8_model_has_only_8bit_tensors(trained):
    from core.training.int8 import inspect_tflite, non_int8_tensors

    info = inspect_tflite(trained.folder / artefacts.INT8_MODEL)
    assert non_int8_tensors(info) == []
    assert {t["dtype"] for t in info["tensors"]} <= {"uint8", "int8", "int32"}
    assert info["inputs"][0]["dtype"] == "uint8" and info["outputs"][0]["dtype"] == "uint8"
    assert set(info["ops"]) <= {"QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "MUL",
                                "FULLY_CONNECTED", "SOFTMAX", "PAD", "RESHAPE"}


def test_int8_agrees_with_float_and_evaluate_cli(trained):
    rc, out, _ = run_cli(["evaluate", "--data-dir", str(trained.store.root), "--model", str(trained.folder),
                          "--project", "digits", "--split", "all"])
    assert rc == 0
    assert out["ok"] and out["split"] == "all" and out["n_images"] == 42
    for kind in ("float", "int8"):
        assert 0.0 <= out[kind]["accuracy"] <= 1.0
        assert sum(map(sum, out[kind]["confusion_matrix"])) == 42
    assert out["agreement"] >= 0.9


def test_cancel_publishes_nothing_and_leaves_no_partial(tmp_path, digits_dir):
    store = Store(tmp_path / "data")
    project = add_digits(store, digits_dir, classes=("0", "1"), per_class=8)
    runner = LocalRunner(store).start()
    try:
        job_id = runner.submit("train", {"task": "classification", "project": project.name,
                                         "hparams": {**HP, "epochs": 200}})
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:  # wait until the model is built and training starts, then cancel
            if any(e.get("message") == "Training" or e.get("step") for e in runner.events(job_id)):
                break
            assert not runner.get(job_id).state.finished, runner.get(job_id).error
            time.sleep(0.2)
        runner.cancel(job_id)
        job = runner.wait(job_id, timeout=300)
    finally:
        runner.stop()
    assert job.state == JobState.CANCELLED
    assert job.artefact_id is None
    assert artefacts.list_artefacts(store.root) == []
    assert not list(artefacts.models_dir(store.root).glob(".partial-*"))


def test_corrupt_image_fails_the_job_naming_the_image(tmp_path, digits_dir):
    store = Store(tmp_path / "data")
    project = add_digits(store, digits_dir, classes=("0", "1"), per_class=5)
    victim = store.list_images(project)[3]
    store.image_path(victim.id).write_bytes(b"\xff\xd8\xff\xe0 truncated garbage")
    job = run_foreground(store, "train", {"task": "classification", "project": project.name, "hparams": HP})
    assert job.state == JobState.FAILED
    assert victim.filename in job.error and "cannot be read" in job.error
    assert artefacts.list_artefacts(store.root) == []
    assert not list(artefacts.models_dir(store.root).glob(".partial-*"))


def test_imagenet_weights_offline_fail_with_advice(tmp_path, digits_dir, monkeypatch, weights_offline):
    weights = weights_offline
    monkeypatch.setattr(weights, "DOWNLOAD_TIMEOUT_S", 3.0)
    store = Store(tmp_path / "data")
    project = add_digits(store, digits_dir, classes=("0", "1"), per_class=3)
    from core.training.classification import train_classification
    from core.training.hparams import ClassificationHParams

    ctx = FakeContext(store, tmp_path / "work")
    with pytest.raises(weights.WeightsUnavailableError) as err:
        train_classification(ctx, project, ClassificationHParams(**{**HP, "weights": "imagenet", "image_size": 96}))
    msg = str(err.value)
    assert "could not be downloaded" in msg and "from scratch" in msg
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5" in msg
    assert not list(artefacts.models_dir(store.root).iterdir())


def test_cli_train_failure_is_json_last(tmp_path, digits_dir):
    store = Store(tmp_path / "data")
    project = add_digits(store, digits_dir, classes=("0", "1"), per_class=3)
    victim = store.list_images(project)[0]
    store.image_path(victim.id).write_bytes(b"not an image")
    rc, out, _ = run_cli(["train", "--data-dir", str(store.root), "--project", project.name, "--epochs", "1",
                          "--image-size", "32", "--weights", "none", "--no-progress"])
    assert rc == 1 and out["ok"] is False and out["state"] == "failed"
    assert victim.filename in out["error"]


def test_train_options_map_to_hparams():
    from cli.__main__ import build_parser
    from cli.train import hparams_from_args

    args = build_parser().parse_args(["train", "--project", "p", "--epochs", "4", "--image-size", "96",
                                      "--alpha", "0.5", "--batch-size", "16", "--learning-rate", "0.01",
                                      "--weights", "imagenet", "--no-augment", "--train-on", "all",
                                      "--max-images", "50"])
    assert hparams_from_args(args) == {"epochs": 4, "image_size": 96, "alpha": 0.5, "batch_size": 16,
                                       "learning_rate": 0.01, "weights": "imagenet", "augment": False,
                                       "train_on": "all", "max_images": 50}
    assert hparams_from_args(build_parser().parse_args(["train", "--project", "p"])) == {}


def test_too_few_classes_is_explained(tmp_path, digits_dir):
    store = Store(tmp_path / "data")
    project = add_digits(store, digits_dir, classes=("0",), per_class=3)
    job = run_foreground(store, "train", {"task": "classification", "project": project.name, "hparams": HP})
    assert job.state == JobState.FAILED and "at least two classes" in job.error
