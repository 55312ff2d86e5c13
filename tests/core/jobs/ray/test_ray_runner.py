"""Training jobs through a real Ray head (Jobs API), behind the same job interface as local jobs."""

from __future__ import annotations

import shutil
import time

import pytest

from core.data import artefacts
from core.data.importer import import_paths
from core.jobs import JobState, LocalRunner
from core.jobs.ray_runner import RayRunner, cluster_status
from core.training import device

pytestmark = pytest.mark.ray

CLS_HPARAMS = {"image_size": 64, "epochs": 2, "batch_size": 8, "alpha": 0.35, "weights": "none",
               "augment": False, "representative_samples": 8, "early_stopping_patience": 5}


@pytest.fixture
def digits_project(store, digits_dir, tmp_path):
    src = tmp_path / "digits"
    for c in ("0", "1", "2"):
        (src / c).mkdir(parents=True)
        for f in sorted((digits_dir / c).iterdir())[:12]:
            shutil.copy(f, src / c / f.name)
    p = store.create_project("digits", "classification")
    assert import_paths(store, p, [src], fmt="folders").images_added == 36
    return p


@pytest.fixture
def raccoon_project(store, raccoon_dir, tmp_path):
    src = tmp_path / "raccoon"
    (src / "images").mkdir(parents=True)
    (src / "annotations").mkdir()
    for i in range(1, 7):
        shutil.copy(raccoon_dir / "images" / f"raccoon-{i}.jpg", src / "images")
        shutil.copy(raccoon_dir / "annotations" / f"raccoon-{i}.xml", src / "annotations")
    p = store.create_project("raccoon", "detection")
    import_paths(store, p, [src])
    return p


def _manifest_shape(m: dict) -> dict:
    return {"keys": sorted(k for k in m if k != "path"), "metrics": sorted(m.get("metrics", {})),
            "files": sorted(m.get("files", {}))}


def test_cluster_status_reports_resources(ray_address):
    s = cluster_status(ray_address)
    assert s.reachable and s.nodes == 1 and s.resources["CPU"] == 2.0


def test_classification_job_runs_on_ray_like_a_local_job(store, digits_project, ray_address):
    runner = RayRunner(store, ray_address, poll_interval=0.5)
    job_id = runner.submit("train", {"task": "classification", "project": "digits", "hparams": CLS_HPARAMS})
    assert runner.get(job_id).state is JobState.QUEUED and runner.get(job_id).runner == "ray"
    job = runner.wait(job_id, timeout=900)
    assert job.state is JobState.SUCCEEDED, (job.message, runner.logs(job_id, 40))
    events = runner.events(job_id)
    epochs = [e for e in events if e.get("type") == "progress" and e.get("epoch")]
    assert epochs and min(e["time"] for e in epochs) < job.finished - 0.5  # arrived while it ran
    assert [e["state"] for e in events if e.get("type") == "state"] == ["queued", "running", "succeeded"]
    folder = artefacts.artefact_path(store.root, job.artefact_id)
    m = artefacts.load_manifest(folder)
    assert m["job_id"] == job_id and m["dataset_hash"] == store.dataset_hash(digits_project)
    assert m["metrics"]["float"]["accuracy"] >= 0 and "accuracy" in m["metrics"]["int8"]
    assert "preflight" not in m or m["preflight"]  # hooks ran here, not on the cluster

    # the same job through the local runner: an artefact of the same shape
    local = LocalRunner(store).start()
    try:
        lid = local.submit("train", {"task": "classification", "project": "digits", "hparams": CLS_HPARAMS})
        ljob = local.wait(lid, timeout=900)
    finally:
        local.stop()
    assert ljob.state is JobState.SUCCEEDED, ljob.message
    lm = artefacts.load_manifest(artefacts.artefact_path(store.root, ljob.artefact_id))
    assert _manifest_shape(lm) == _manifest_shape(m)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in artefacts.artefact_path(store.root, ljob.artefact_id).iterdir())


def test_tiny_detection_job_on_ray(store, raccoon_project, ray_address):
    runner = RayRunner(store, ray_address, poll_interval=0.5)
    hp = {"image_size": 256, "epochs": 1, "batch_size": 4, "alpha": 0.35, "weights": "none", "augment": False,
          "representative_samples": 4, "train_on": "all"}
    job = runner.wait(runner.submit("train", {"task": "detection", "project": "raccoon", "hparams": hp}),
                      timeout=900)
    assert job.state is JobState.SUCCEEDED, (job.message, runner.logs(job.id, 40))
    m = artefacts.load_manifest(artefacts.artefact_path(store.root, job.artefact_id))
    assert m["task"] == "detection" and "mAP50" in m["metrics"]["float"] and "mAP50" in m["metrics"]["int8"]
    # the record says which node and which device trained it (a CPU node: the head, on 127.0.0.1)
    assert job.params["ray_node"] == "cpu" and job.params["device"] == "cpu"
    rec = device.device_of(runner.events(job.id))
    assert rec["kind"] == "cpu" and rec["name"] == device.cpu_model() and rec["node"] == "127.0.0.1"
    assert m["device"]["kind"] == "cpu" and m["device"]["node"] == "127.0.0.1"


def test_a_gpu_node_request_waits_for_a_gpu_and_can_be_cancelled(store, digits_project, ray_address):
    """The head has no GPU: a job that asks for a GPU node (entrypoint_num_gpus=1) must not start on it."""
    assert cluster_status(ray_address).gpus == 0
    runner = RayRunner(store, ray_address, poll_interval=0.5, gpu_packages=[])  # no pip install offline
    job_id = runner.submit("train", {"task": "classification", "project": "digits", "hparams": CLS_HPARAMS,
                                     "ray_node": "gpu"})
    assert runner.get(job_id).params["device"] == "gpu"
    deadline = time.monotonic() + 300
    while "Waiting for a Ray node with a free GPU" not in runner.get(job_id).message:
        assert time.monotonic() < deadline, (runner.get(job_id).message, runner.logs(job_id, 20))
        time.sleep(0.5)
    time.sleep(3)
    assert runner.get(job_id).state is JobState.QUEUED  # still waiting: nothing ran on the CPU-only head
    runner.cancel(job_id)
    job = runner.wait(job_id, timeout=60)
    assert job.state is JobState.CANCELLED and job.artefact_id is None
    assert device.device_of(runner.events(job_id)) is None


def test_cancel_stops_a_running_ray_job_within_seconds(store, digits_project, ray_address):
    runner = RayRunner(store, ray_address, poll_interval=0.5)
    hp = {**CLS_HPARAMS, "epochs": 200, "early_stopping_patience": 1000}
    job_id = runner.submit("train", {"task": "classification", "project": "digits", "hparams": hp})
    deadline = time.monotonic() + 600
    while not any(e.get("type") == "progress" for e in runner.events(job_id)):
        assert time.monotonic() < deadline and not runner.get(job_id).state.finished, runner.logs(job_id, 30)
        time.sleep(0.5)
    t0 = time.monotonic()
    runner.cancel(job_id)
    job = runner.wait(job_id, timeout=60)
    assert job.state is JobState.CANCELLED and time.monotonic() - t0 < 20
    assert job.artefact_id is None


def test_job_submitted_while_the_head_is_down_waits_then_fails_with_the_reason(store, digits_project):
    runner = RayRunner(store, "http://127.0.0.1:9", submit_timeout=20, retry_interval=1)
    job_id = runner.submit("train", {"task": "classification", "project": "digits", "hparams": CLS_HPARAMS})
    deadline = time.monotonic() + 180  # generous: this machine is shared and slow under load
    while "Waiting for the Ray cluster" not in runner.get(job_id).message:
        assert time.monotonic() < deadline, runner.get(job_id).message
        time.sleep(0.2)
    assert runner.get(job_id).state is JobState.QUEUED  # not lost: still queued while it retries
    job = runner.wait(job_id, timeout=60)
    assert job.state is JobState.FAILED and "could not be reached" in job.message
    assert not cluster_status("http://127.0.0.1:9").reachable


def test_cli_train_with_the_ray_runner(store, digits_project, ray_address, data_dir):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[4]
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "train", "--project", "digits",
         "--runner", "ray", "--ray-address", ray_address, "--epochs", "1", "--image-size", "64", "--alpha",
         "0.35", "--batch-size", "8", "--weights", "none", "--no-augment", "--no-progress"],
        cwd=root, capture_output=True, text=True, timeout=900)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and summary["ok"], (summary, proc.stderr[-2000:])
    assert "accuracy" in summary["metrics"]["int8"]
    assert store.dataset_hash(digits_project) == artefacts.load_manifest(summary["artefact"])["dataset_hash"]
