"""Every reader of the job table sees the truth: a job whose process died is *interrupted* for the CLI too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core import jobs
from core.jobs import JobState, JobTable

ROOT = Path(__file__).resolve().parents[4]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_cli_jobs_list_shows_a_dead_process_job_as_interrupted(store):
    t = JobTable(store)
    jid = t.create("train", {"project": "p"}, "p", "foreground")
    t.transition(jid, JobState.RUNNING)
    t.update(jid, owner_pid=_dead_pid(), owner_token="dead", owner_host=jobs.HOST, owner_start="1")
    out = subprocess.run([sys.executable, "-m", "cli", "--data-dir", str(store.root), "jobs", "list"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout.strip().splitlines()[-1])["jobs"]
    assert [j["state"] for j in listed if j["id"] == jid] == ["interrupted"]
    assert JobTable(store).get(jid).state is JobState.INTERRUPTED


def test_get_of_a_live_job_leaves_it_running(store):
    t = JobTable(store)
    jid = t.create("train", {"project": "p"}, "p", "foreground")
    t.transition(jid, JobState.RUNNING)  # owned by this (live) process
    assert t.get(jid).state is JobState.RUNNING
    assert [j.state for j in t.list()] == [JobState.RUNNING]
