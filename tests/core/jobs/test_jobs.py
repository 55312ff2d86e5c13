"""The job engine: state machine, runner, progress, cancel, failures, crash recovery, foreground runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from core.data import artefacts
from core import jobs
from core.jobs import kinds as kinds_mod
from core.jobs import recovery, table
from core.jobs import (TRANSITIONS, InvalidTransition, JobCancelled, JobContext, JobError, JobState,
                       JobTable, LocalRunner, can_transition, register_job_kind, run_foreground)


@pytest.fixture
def kinds(monkeypatch):
    """Register test job kinds for one test only (the registry is restored afterwards)."""
    monkeypatch.setattr(kinds_mod, "_KINDS", dict(kinds_mod._KINDS))

    def reg(kind, fn):
        register_job_kind(kind, fn)
        return kind

    return reg


@pytest.fixture
def runner(store):
    r = LocalRunner(store).start()
    yield r
    r.stop(timeout=5)


def progress_job(ctx: JobContext, params: dict) -> str:
    n = params.get("epochs", 3)
    for e in range(1, n + 1):
        for s in range(1, 3):
            ctx.check_cancelled()
            ctx.progress(epoch=e, total_epochs=n, step=s, total_steps=2, metrics={"batch_loss": 1.0 / e})
        ctx.progress(epoch=e, total_epochs=n, metrics={"loss": 1.0 / e, "accuracy": e / n})
        ctx.log(f"epoch {e} done")
    return "artefact-123"


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


# -- the state machine --------------------------------------------------------------
ALLOWED = [("queued", "running"), ("queued", "cancelled"), ("queued", "failed"), ("running", "succeeded"),
           ("running", "failed"),
           ("running", "cancelled"), ("running", "interrupted")]


def test_transition_table_is_exactly_the_documented_one():
    got = {(a.value, b.value) for a, bs in TRANSITIONS.items() for b in bs}
    assert got == set(ALLOWED)
    for end in ("succeeded", "failed", "cancelled", "interrupted"):
        assert JobState(end).finished
    assert not JobState.QUEUED.finished and not JobState.RUNNING.finished


@pytest.mark.parametrize("old,new", ALLOWED)
def test_every_allowed_transition_is_recorded(store, old, new):
    t = JobTable(store)
    jid = t.create("x", {}, "p", "test")
    if old == "running":
        t.transition(jid, JobState.RUNNING)
    job = t.transition(jid, JobState(new), message="m")
    assert job.state.value == new
    if JobState(new).finished:
        assert job.finished is not None
    states = [e["state"] for e in t.events(jid) if e["type"] == "state"]
    assert states[-1] == new and states[0] == "queued"


@pytest.mark.parametrize("old,new", [("queued", "succeeded"), ("queued", "interrupted"),
                                     ("succeeded", "running"), ("cancelled", "queued"),
                                     ("failed", "succeeded"), ("running", "queued")])
def test_forbidden_transitions_raise_and_change_nothing(store, old, new):
    assert not can_transition(old, new)
    t = JobTable(store)
    jid = t.create("x", {}, "p", "test")
    path = {"queued": [], "running": ["running"], "succeeded": ["running", "succeeded"],
            "failed": ["running", "failed"], "cancelled": ["cancelled"]}[old]
    for s in path:
        t.transition(jid, JobState(s))
    with pytest.raises(InvalidTransition):
        t.transition(jid, JobState(new))
    assert t.get(jid).state.value == old


# -- a job that reports progress and succeeds ------------------------------------------
def test_progress_events_and_success(store, runner, kinds):
    kinds("prog", progress_job)
    jid = runner.submit("prog", {"epochs": 3, "project": "birds"})
    job = runner.wait(jid, timeout=20)
    assert job.state is JobState.SUCCEEDED, job.message
    assert job.project == "birds" and job.artefact_id == "artefact-123" and job.progress == 1.0
    assert job.epoch == 3 and job.total_epochs == 3
    assert job.metrics["accuracy"] == pytest.approx(1.0) and job.metrics["loss"] == pytest.approx(1 / 3)
    assert job.started >= job.created and job.finished >= job.started and job.duration >= 0
    ev = runner.events(jid)
    assert [e["state"] for e in ev if e["type"] == "state"] == ["queued", "running", "succeeded"]
    epochs = [e for e in ev if e["type"] == "progress" and "step" not in e and "metrics" in e]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert [e["fraction"] for e in epochs] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert all("eta" in e and e["eta"] >= 0 for e in epochs)
    assert epochs[-1]["eta"] == pytest.approx(0.0)
    seqs = [e["seq"] for e in ev]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert runner.events(jid, since=seqs[-2]) == ev[-1:]
    assert runner.logs(jid) == ["epoch 1 done", "epoch 2 done", "epoch 3 done"]
    assert runner.logs(jid, tail=1) == ["epoch 3 done"]
    assert [j.id for j in runner.list(project="birds")] == [jid]
    assert runner.list(project="other") == []


def test_fraction_and_eta_from_steps(store):
    t = JobTable(store)
    jid = t.create("x", {}, None, "test")
    t.transition(jid, JobState.RUNNING)
    ctx = JobContext(t, jid)
    ctx._started = time.time() - 10.0  # ten seconds in
    ctx.progress(epoch=2, total_epochs=4, step=1, total_steps=2, message="training")
    job = t.get(jid)
    assert job.progress == pytest.approx(0.375)
    assert job.eta == pytest.approx(10.0 * 0.625 / 0.375, rel=0.05)
    assert job.message == "training" and job.step == 1 and job.total_steps == 2


def test_keras_style_reporting_keeps_every_epoch_and_thins_batches(store):
    """Batch updates with messages (many) are thinned; epoch ends with metrics are all kept."""
    t = JobTable(store)
    jid = t.create("x", {}, None, "test")
    t.transition(jid, JobState.RUNNING)
    ctx = JobContext(t, jid)
    for e in range(1, 4):
        for b in range(1, 51):
            ctx.progress(fraction=((e - 1) * 50 + b) / 150, epoch=e, total_epochs=3, step=b, total_steps=50,
                         message=f"epoch {e} batch {b}")
        ctx.progress(fraction=e / 3, epoch=e, total_epochs=3, step=50, total_steps=50,
                     metrics={"loss": 1.0 / e, "val_loss": 2.0 / e}, message=f"epoch {e} done")
    ev = [x for x in t.events(jid) if x["type"] == "progress"]
    assert len(ev) < 20
    ends = [x for x in ev if x.get("metrics")]
    assert [x["epoch"] for x in ends] == [1, 2, 3]
    assert ends[-1]["metrics"] == {"loss": pytest.approx(1 / 3), "val_loss": pytest.approx(2 / 3)}
    assert t.get(jid).message == "epoch 3 done"


def _progress_kinds(events):
    return ["mid" if "step" in e and e["step"] < e.get("total_steps", 1e9) else "epoch"
            for e in events if e["type"] == "progress"]


@pytest.mark.parametrize("end", [JobState.SUCCEEDED, JobState.CANCELLED, JobState.FAILED, JobState.INTERRUPTED])
def test_an_ended_job_keeps_its_epoch_events_and_drops_the_mid_epoch_ones(store, end):
    t = JobTable(store)
    jid = t.create("x", {}, None, "test")
    t.transition(jid, JobState.RUNNING)
    ctx = JobContext(t, jid)
    for e in (1, 2):
        for b in (1, 2, 3):  # new epoch -> stored; the rest thinned to one per STEP_EVENT_INTERVAL
            ctx.progress(epoch=e, total_epochs=3, step=b, total_steps=4, metrics={"batch_loss": 1.0})
        ctx.progress(epoch=e, total_epochs=3, step=4, total_steps=4, metrics={"loss": 1.0 / e})
    ctx.progress(epoch=3, total_epochs=3, step=1, total_steps=4, message="epoch 3")  # the run ends mid-epoch
    other = t.create("x", {}, None, "test")  # a job still running keeps everything
    t.transition(other, JobState.RUNNING)
    JobContext(t, other).progress(epoch=1, total_epochs=1, step=1, total_steps=9)
    before = t.events(jid)
    assert _progress_kinds(before) == ["mid", "epoch", "mid", "epoch", "mid"]
    follower_seen = before[-1]["seq"]  # a follower (CLI, page) has read everything so far
    t.transition(jid, end, message="done")
    after = t.events(jid)
    assert _progress_kinds(after) == ["epoch", "epoch"]
    assert [e["metrics"]["loss"] for e in after if e["type"] == "progress"] == [1.0, 0.5]
    assert [e["state"] for e in after if e["type"] == "state"] == ["queued", "running", end.value]
    assert [e["state"] for e in t.events(jid, since=follower_seen)] == [end.value]  # the end is not missed
    assert t.get(jid).message == "done" and t.get(jid).epoch == 3
    assert _progress_kinds(t.events(other)) == ["mid"]


def test_older_databases_are_compacted_when_the_runner_starts(store):
    t = JobTable(store)
    jid = t.create("x", {}, None, "test")
    t.transition(jid, JobState.RUNNING)
    t.transition(jid, JobState.SUCCEEDED)
    t.add_event(jid, {"type": "progress", "epoch": 1, "step": 3, "total_steps": 9})  # as stored before
    t.add_event(jid, {"type": "progress", "epoch": 1, "metrics": {"loss": 1.0}})
    assert _progress_kinds(t.events(jid)) == ["mid", "epoch"]
    r = LocalRunner(store).start()
    try:
        assert _progress_kinds(t.events(jid)) == ["epoch"]
        assert t.compact_finished_events() == 0
    finally:
        r.stop(timeout=5)


def test_unknown_kind_is_refused_at_submit(runner):
    with pytest.raises(JobError):
        runner.submit("no-such-kind", {})


def test_known_module_kind_is_imported_lazily(store, runner, kinds, monkeypatch, tmp_path):
    """A kind listed in KIND_MODULES is registered by importing that module when first run."""
    (tmp_path / "fake_kind_mod.py").write_text(
        "from core.jobs import register_job_kind\n"
        "register_job_kind('lazy', lambda ctx, params: 'lazy-ok')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_kind_mod", raising=False)
    monkeypatch.setitem(jobs.KIND_MODULES, "lazy", "fake_kind_mod")
    monkeypatch.setitem(jobs.KIND_MODULES, "lazy-missing", "no_such_module_xyz")
    assert "fake_kind_mod" not in sys.modules
    job = runner.wait(runner.submit("lazy", {}), timeout=10)
    assert job.state is JobState.SUCCEEDED and job.artefact_id == "lazy-ok"
    assert "fake_kind_mod" in sys.modules
    job = runner.wait(runner.submit("lazy-missing", {}), timeout=10)
    assert job.state is JobState.FAILED and "not available" in job.message
    sys.modules.pop("fake_kind_mod", None)


# -- cancel --------------------------------------------------------------------------------
def endless_job(ctx: JobContext, params: dict) -> None:
    i = 0
    while True:
        ctx.check_cancelled()
        i += 1
        ctx.progress(step=i % 100, total_steps=100)
        time.sleep(0.02)


def test_cancel_a_running_job_within_seconds(store, runner, kinds):
    kinds("endless", endless_job)
    jid = runner.submit("endless", {}, project="p")
    assert wait_for(lambda: runner.get(jid).state is JobState.RUNNING)
    t0 = time.monotonic()
    runner.cancel(jid)
    job = runner.wait(jid, timeout=10)
    assert job.state is JobState.CANCELLED
    assert time.monotonic() - t0 < 3.0
    assert job.finished is not None and job.error is None


def test_cancel_a_queued_job_at_once(store, runner, kinds):
    kinds("endless", endless_job)
    ran = []
    kinds("mark", lambda ctx, p: ran.append(1))
    first = runner.submit("endless", {})
    queued = runner.submit("mark", {})
    assert wait_for(lambda: runner.get(first).state is JobState.RUNNING)
    runner.cancel(queued)
    assert runner.get(queued).state is JobState.CANCELLED  # immediately, not after `first`
    runner.cancel(first)
    assert runner.wait(first, timeout=10).state is JobState.CANCELLED
    time.sleep(0.2)
    assert ran == [] and runner.get(queued).started is None
    runner.cancel(queued)  # cancelling a finished job is a no-op
    assert runner.get(queued).state is JobState.CANCELLED


def test_cancel_through_the_database_from_another_runner(store, runner, kinds):
    """A second process (here: another runner object) cancels through the database flag."""
    kinds("endless", endless_job)
    jid = runner.submit("endless", {})
    assert wait_for(lambda: runner.get(jid).state is JobState.RUNNING)
    other = LocalRunner(store)
    other.cancel(jid)
    assert runner.wait(jid, timeout=10).state is JobState.CANCELLED


# -- failures -----------------------------------------------------------------------------
def test_failing_job_is_failed_with_a_readable_message_and_runner_goes_on(store, runner, kinds):
    def boom(ctx, params):
        ctx.log("about to fail")
        raise ValueError("the dataset has no validation images")

    kinds("boom", boom)
    kinds("ok", lambda ctx, p: "fine")
    bad = runner.submit("boom", {})
    good = runner.submit("ok", {})
    b = runner.wait(bad, timeout=10)
    assert b.state is JobState.FAILED
    assert b.error == "the dataset has no validation images"
    assert "the dataset has no validation images" in b.message and "Traceback" not in b.message
    logs = runner.logs(bad)
    assert logs[0] == "about to fail" and any("Traceback" in line for line in logs)
    assert any("ValueError" in line for line in logs)
    g = runner.wait(good, timeout=10)
    assert g.state is JobState.SUCCEEDED and g.artefact_id == "fine"


def test_logs_are_capped(store, monkeypatch):
    monkeypatch.setattr(table, "LOG_CAP", 150)
    t = JobTable(store)
    jid = t.create("x", {}, None, "test")
    for i in range(400):
        t.add_log(jid, f"line {i}")
    lines = t.logs(jid, tail=10_000)
    assert lines[-1] == "line 399" and len(lines) <= 250
    with store.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM job_logs WHERE job_id=?", (jid,)).fetchone()[0] <= 250


# -- crash recovery -------------------------------------------------------------------------
def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_start_marks_dead_running_jobs_interrupted_and_removes_partials(store):
    t = JobTable(store)
    jid = t.create("train", {"project": "p"}, "p", "local")
    t.transition(jid, JobState.RUNNING)
    t.update(jid, owner_pid=dead_pid(), owner_token="a-dead-process", owner_host=jobs.HOST, owner_start="1")
    partial = artefacts.partial_dir(store.root, "20260101-000000-dead00")
    (partial / "model_float.keras").write_bytes(b"half")
    r = LocalRunner(store)
    r.start()
    try:
        job = r.get(jid)
        assert job.state is JobState.INTERRUPTED
        assert "process" in job.message and job.finished is not None and job.eta is None
        assert not partial.exists()
        assert [e["state"] for e in r.events(jid) if e["type"] == "state"][-1] == "interrupted"
    finally:
        r.stop(timeout=5)


def test_local_recovery_leaves_cluster_jobs_to_their_runner(store):
    """A Ray job outlives the studio process that followed it: the Ray runner re-attaches to it."""
    t = JobTable(store)
    running = t.create("train", {"project": "p"}, "p", "ray")
    t.transition(running, JobState.RUNNING)
    queued = t.create("train", {"project": "p"}, "p", "ray")
    for jid in (running, queued):
        t.update(jid, owner_pid=dead_pid(), owner_token="a-dead-process", owner_host=jobs.HOST, owner_start="1")
    r = LocalRunner(store).start()
    try:
        assert r.get(running).state is JobState.RUNNING and r.get(queued).state is JobState.QUEUED
    finally:
        r.stop(timeout=5)


def test_start_leaves_live_jobs_of_another_process_and_their_partials_alone(store):
    ppid = os.getppid()  # a live process that is not this one
    t = JobTable(store)
    live = t.create("train", {}, "p", "local")
    t.transition(live, JobState.RUNNING, started=time.time() - 100)
    t.update(live, owner_pid=ppid, owner_token="another-live-process", owner_host=jobs.HOST,
             owner_start=recovery._proc_start(ppid))
    old = artefacts.partial_dir(store.root, "old-dead")  # older than the live job: not its folder
    os.utime(old, (time.time() - 1000, time.time() - 1000))
    current = artefacts.partial_dir(store.root, "being-built")  # may be the live job's folder
    r = LocalRunner(store)
    r.start()
    try:
        assert r.get(live).state is JobState.RUNNING
        assert current.exists() and not old.exists()
    finally:
        r.stop(timeout=5)


def test_owner_alive_rules():
    assert jobs.owner_alive(12345, jobs.PROCESS_TOKEN, "elsewhere", None, None)
    assert not jobs.owner_alive(os.getpid(), "old-token", jobs.HOST, None, None)  # earlier run, same pid
    assert not jobs.owner_alive(dead_pid(), "t", jobs.HOST, None, None)
    ppid = os.getppid()
    assert jobs.owner_alive(ppid, "t", jobs.HOST, recovery._proc_start(ppid), None)
    if recovery._proc_start(ppid) is not None:
        assert not jobs.owner_alive(ppid, "t", jobs.HOST, "1", None)  # pid reused
    now = time.time()
    assert jobs.owner_alive(1, "t", "other-host", None, now - 5, now=now)
    assert not jobs.owner_alive(1, "t", "other-host", None, now - jobs.STALE_AFTER - 1, now=now)


def test_queued_jobs_of_a_dead_process_are_adopted(store, kinds):
    kinds("ok", lambda ctx, p: "adopted")
    t = JobTable(store)
    jid = t.create("ok", {}, None, "local")
    t.update(jid, owner_pid=dead_pid(), owner_token="dead", owner_host=jobs.HOST)
    r = LocalRunner(store).start()
    try:
        assert r.wait(jid, timeout=10).state is JobState.SUCCEEDED
    finally:
        r.stop(timeout=5)


# -- concurrency -----------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [1, 2])
def test_max_concurrent_is_honoured(store, kinds, limit):
    lock = threading.Lock()
    now = {"n": 0, "max": 0}

    def busy(ctx, params):
        with lock:
            now["n"] += 1
            now["max"] = max(now["max"], now["n"])
        time.sleep(0.3)
        with lock:
            now["n"] -= 1

    kinds("busy", busy)
    r = LocalRunner(store, max_concurrent=limit).start()
    try:
        ids = [r.submit("busy", {}) for _ in range(4)]
        assert all(r.wait(i, timeout=20).state is JobState.SUCCEEDED for i in ids)
    finally:
        r.stop(timeout=5)
    assert now["max"] == limit


def test_stop_cancels_pending_work(store, kinds):
    kinds("endless", endless_job)
    r = LocalRunner(store).start()
    a = r.submit("endless", {})
    b = r.submit("endless", {})
    assert wait_for(lambda: r.get(a).state is JobState.RUNNING)
    r.stop(timeout=5)
    assert r.get(a).state is JobState.CANCELLED and r.get(b).state is JobState.CANCELLED


def test_runner_satisfies_the_protocol(store):
    assert isinstance(LocalRunner(store), jobs.Runner)


# -- foreground --------------------------------------------------------------------------------
def test_run_foreground_runs_in_this_thread_with_events(store, kinds):
    threads = []

    def job(ctx, params):
        threads.append(threading.current_thread())
        return progress_job(ctx, params)

    kinds("prog", job)
    seen = []
    job_ = run_foreground(store, "prog", {"epochs": 2}, project="p", on_event=seen.append)
    assert threads == [threading.current_thread()]
    assert job_.state is JobState.SUCCEEDED and job_.artefact_id == "artefact-123"
    assert job_.runner == "foreground" and job_.project == "p"
    assert [e["epoch"] for e in seen if "metrics" in e and "step" not in e] == [1, 2]
    assert JobTable(store).get(job_.id).state is JobState.SUCCEEDED


def test_run_foreground_failure_and_cancel(store, kinds):
    kinds("boom", lambda ctx, p: 1 / 0)
    job = run_foreground(store, "boom", {})
    assert job.state is JobState.FAILED and job.error == "division by zero"

    def cancels_itself(ctx, params):
        ctx._cancel.set()
        ctx.check_cancelled()

    kinds("self-cancel", cancels_itself)
    assert run_foreground(store, "self-cancel", {}).state is JobState.CANCELLED
    with pytest.raises(JobError):
        run_foreground(store, "no-such-kind", {})


def test_job_cancelled_is_an_exception():
    assert issubclass(JobCancelled, Exception)


def test_running_jobs_are_interrupted_when_the_process_exits(store, kinds, tmp_path):
    """A process that exits while a job runs records it as interrupted (its partial is then removed
    by the next start)."""
    code = f"""
import time
from core.jobs import LocalRunner, register_job_kind
from core.data.store import Store
def forever(ctx, params):
    while True:
        time.sleep(0.05)
register_job_kind("forever", forever)
r = LocalRunner(Store({str(store.root)!r})).start()
jid = r.submit("forever", {{}})
while r.get(jid).state.value != "running":
    time.sleep(0.02)
print(jid, flush=True)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[3]))
    assert out.returncode == 0, out.stderr
    job = JobTable(store).get(out.stdout.split()[-1])
    assert job.state is JobState.INTERRUPTED and "stopped" in job.message


def test_a_lane_lets_one_kind_run_beside_the_main_queue(store, kinds):
    kinds("endless", endless_job)
    kinds("build", lambda ctx, p: "image")
    r = LocalRunner(store, max_concurrent=1, lanes={"build": 1}).start()
    try:
        busy = r.submit("endless", {})
        assert wait_for(lambda: r.get(busy).state is JobState.RUNNING)
        waiting = r.submit("endless", {})
        build = r.submit("build", {})
        assert r.wait(build, timeout=10).state is JobState.SUCCEEDED  # not stuck behind `busy`
        assert r.get(waiting).state is JobState.QUEUED
    finally:
        r.stop(timeout=5)
    assert r.get(busy).state is JobState.CANCELLED and r.get(waiting).state is JobState.CANCELLED
