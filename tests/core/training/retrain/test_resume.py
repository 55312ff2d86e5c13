"""Resume after a crash: kill -9 a real training process mid-epoch, then resume it to a whole model."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.data import artefacts
from core import jobs
from core.jobs import JobState, JobTable
from core.data.store import Store
from core.training import checkpoint
from tests.core.training.helpers import FakeContext, add_digits

ROOT = Path(__file__).resolve().parents[4]
EPOCHS = 4


def run_cli(argv: list[str]) -> tuple[int, dict]:
    from cli.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, json.loads(out.getvalue().strip().splitlines()[-1])


def _kill_mid_epoch(store: Store, proc: subprocess.Popen, timeout: float = 600) -> tuple[str, int]:
    """Wait until a checkpoint exists and the next epoch is under way, then SIGKILL; (job id, epochs done)."""
    table = JobTable(store)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the training ended before it could be killed"
        running = table.list(states=[JobState.RUNNING])
        if running:
            job = running[0]
            info = checkpoint.latest(store.root, job.id)
            if (info and job.epoch == info["epoch"] + 1 and job.step and job.total_steps
                    and 0 < job.step < job.total_steps and info["epoch"] < EPOCHS):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(30)
                return job.id, info["epoch"]
        time.sleep(0.05)
    raise AssertionError("no mid-epoch moment seen")


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_completes_a_whole_model(tmp_path, digits_dir):
    store = Store(tmp_path / "data")
    project = add_digits(store, digits_dir, classes=("0", "1", "2"), per_class=40)
    cmd = [sys.executable, "-m", "cli", "train", "--data-dir", str(store.root), "--project", project.name,
           "--epochs", str(EPOCHS), "--image-size", "64", "--alpha", "0.35", "--batch-size", "8",
           "--weights", "none", "--seed", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        jid, done = _kill_mid_epoch(store, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    # every reader (here: a plain JobTable, as `jobs list` uses) sees the truth
    assert JobTable(store).get(jid).state is JobState.INTERRUPTED
    assert list(artefacts.models_dir(store.root).glob(".partial-*")), "the killed job left its partial folder"
    assert checkpoint.latest(store.root, jid)["epoch"] == done

    rc, summary = run_cli(["jobs", "resume", jid, "--data-dir", str(store.root), "--no-progress"])
    assert rc == 0 and summary["ok"], summary
    folder = Path(summary["artefact"])
    m = artefacts.load_manifest(folder)
    assert m["training"]["epochs_run"] == EPOCHS
    assert m["training"]["resumed_from"] == jid and m["training"]["resumed_at_epoch"] == done
    assert all(len(v) == EPOCHS for v in m["history"].values())
    assert len(m["training"]["epoch_seconds"]) == EPOCHS
    for name in (artefacts.FLOAT_MODEL, artefacts.INT8_MODEL, artefacts.LABELS):
        assert (folder / name).stat().st_size > 0
    assert m["metrics"]["float"]["accuracy"] is not None and m["metrics"]["int8"]["accuracy"] is not None
    assert m["class_balance"]["mode"] == "weights" and set(m["class_balance"]["weights"]) == {"0", "1", "2"}
    assert m["dataset_version"]["hash"] == m["dataset_hash"] and (folder / "dataset.json").exists()
    assert not list(artefacts.models_dir(store.root).glob(".partial-*"))
    assert not checkpoint.checkpoint_dir(store.root, jid).exists()
    assert not checkpoint.checkpoint_dir(store.root, summary["job_id"]).exists()
    assert not (store.root / "jobs" / jid).exists()

    rc, again = run_cli(["jobs", "resume", jid, "--data-dir", str(store.root)])
    assert rc == 2 and "no checkpoint" in again["error"]


def _interrupted_job(store: Store) -> str:
    t = JobTable(store)
    jid = t.create("train", {"project": "p", "task": "classification"}, "p", "foreground")
    t.transition(jid, JobState.RUNNING)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    t.update(jid, owner_pid=p.pid, owner_token="dead", owner_host=jobs.HOST, owner_start="1")
    return jid


def _fake_checkpoint(store: Store, jid: str) -> None:
    d = checkpoint.checkpoint_dir(store.root, jid) / "e0002"
    d.mkdir(parents=True)
    (d / "state.pkl").write_bytes(b"x")
    (d.parent / checkpoint.LATEST).write_text(json.dumps({"epoch": 2, "dir": "e0002"}))


def test_resume_without_checkpoint_twice_and_of_a_finished_job_say_why(store):
    jid = _interrupted_job(store)
    rc, out = run_cli(["jobs", "resume", jid, "--data-dir", str(store.root)])
    assert rc == 2 and "has no checkpoint" in out["error"] and "Start a new training" in out["error"]

    _fake_checkpoint(store, jid)
    checkpoint.mark_resumed(store.root, jid, "20260101-000000-later")
    rc, out = run_cli(["jobs", "resume", jid, "--data-dir", str(store.root)])
    assert rc == 2 and "already resumed as job 20260101-000000-later" in out["error"]

    rc, out = run_cli(["jobs", "discard-checkpoint", jid, "--data-dir", str(store.root)])
    assert rc == 0 and out["removed"] is True and checkpoint.latest(store.root, jid) is None

    t = JobTable(store)
    done = t.create("train", {"project": "p"}, "p", "foreground")
    t.transition(done, JobState.RUNNING)
    t.transition(done, JobState.SUCCEEDED)
    rc, out = run_cli(["jobs", "resume", done, "--data-dir", str(store.root)])
    assert rc == 2 and "ended as succeeded" in out["error"]


def test_checkpoint_restores_weights_optimizer_step_and_best(store, tmp_path):
    """Two epochs with checkpoints, then a fresh model restored from them is the same model and
    optimizer (iterations drive the learning-rate schedule)."""
    import keras

    from core.training.callbacks import make_best_weights_callback

    def model():
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
        sched = keras.optimizers.schedules.CosineDecay(0.01, decay_steps=40)
        m.compile(optimizer=keras.optimizers.Adam(sched), loss="mse")
        return m

    x = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    y = np.random.default_rng(1).normal(size=(40, 2)).astype("float32")
    ctx = FakeContext(store, tmp_path / "w")
    ctx.job_id = "job-a"
    m1 = model()
    best = tmp_path / "w" / "best.weights.h5"
    best.parent.mkdir(parents=True)
    mc = make_best_weights_callback(str(best), monitor="loss")  # the trainers' in-memory best weights
    ck = checkpoint.Checkpointer(ctx, m1, best)
    ck.restore([mc])
    m1.fit(x, y, batch_size=10, epochs=2, callbacks=[mc, ck.callback()], verbose=0, shuffle=False)
    assert checkpoint.latest(store.root, "job-a")["epoch"] == 2

    ctx2 = FakeContext(store, tmp_path / "w2")
    ctx2.job_id, ctx2.resume_from = "job-b", "job-a"
    m2 = model()
    best2 = tmp_path / "w2" / "best.weights.h5"
    mc2 = make_best_weights_callback(str(best2), monitor="loss")
    ck2 = checkpoint.Checkpointer(ctx2, m2, best2)
    assert ck2.restore([mc2]) == 2
    assert int(m2.optimizer.iterations.numpy()) == 8 == int(m1.optimizer.iterations.numpy())
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(m1.optimizer.variables, m2.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert mc2.best == mc.best and mc.weights is not None and not best2.exists()  # numpy, never HDF5
    for a, b in zip(mc.weights, mc2.weights):  # the best-so-far weights come back too
        np.testing.assert_array_equal(a, b)
    assert len(ck2.full_history({"loss": [0.1]})["loss"]) == 3
