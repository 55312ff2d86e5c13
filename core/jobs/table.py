"""The job table in ``studio.db``: job rows, their events and logs, state transitions
(usable by any runner: local, Ray ...)."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Iterable

from core.data import db
from core.data.store import Store
from core.jobs.recovery import HOST, LOCAL_RUNNERS, PROCESS_TOKEN, _MY_START, _owner_fields, new_job_id, owner_alive
from core.jobs.states import InvalidTransition, Job, JobError, JobState, can_transition


SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    project TEXT,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    epoch INTEGER, total_epochs INTEGER, step INTEGER, total_steps INTEGER,
    metrics TEXT NOT NULL DEFAULT '{}',
    message TEXT NOT NULL DEFAULT '',
    error TEXT,
    eta REAL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    artefact_id TEXT,
    runner TEXT NOT NULL,
    owner_pid INTEGER,
    owner_token TEXT,
    owner_host TEXT,
    owner_start TEXT,
    heartbeat REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_project ON jobs(project, created);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS job_logs (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""

LOG_CAP = 5000  # lines kept per job (oldest dropped)
LOG_LINE_MAX = 4000  # characters per line
MESSAGE_MAX = 8000  # characters of a failure kept in Job.error
STEP_EVENT_INTERVAL = 2.0  # seconds between stored step-only progress events
ROW_UPDATE_INTERVAL = 0.5  # seconds between job-row updates for step-only progress
CANCEL_POLL_INTERVAL = 1.0  # seconds between looks at the cancel flag in the database


# A progress event from the middle of an epoch (what the live view shows while a job runs; the
# curves and the history use the epoch-level events). Dropped once the job has ended.
_MID_EPOCH = ("json_extract(data, '$.type') = 'progress' AND json_extract(data, '$.step') IS NOT NULL"
              " AND (json_extract(data, '$.total_steps') IS NULL"
              " OR json_extract(data, '$.step') < json_extract(data, '$.total_steps'))")


# -- the database layer ---------------------------------------------------------
class JobTable:
    """Job records, events and logs in ``studio.db``; usable by any runner (local, Ray …)."""

    def __init__(self, store: Store):
        self.store = store
        with store.connect() as conn:
            conn.executescript(SCHEMA)

    def connect(self):
        return self.store.connect()

    # records
    def create(self, kind: str, params: dict, project: str | None, runner: str) -> str:
        job_id = new_job_id()
        now = time.time()
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO jobs(id, kind, project, params, state, created, runner, owner_pid, owner_token,"
                " owner_host, owner_start, heartbeat, message) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (job_id, kind, project, json.dumps(params, default=str), JobState.QUEUED.value, now, runner,
                 os.getpid(), PROCESS_TOKEN, HOST, _MY_START, now, "Waiting to start"))
        self.add_event(job_id, {"type": "state", "state": JobState.QUEUED.value})
        return job_id

    def get(self, job_id: str) -> Job:
        with self.connect() as conn:
            r = conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if r is None:
            raise JobError(f"No job {job_id!r}.")
        if _owner_gone(r):  # every reader sees the truth, not only a runner that ran recovery
            self.recover()
            return self.get(job_id)
        return _row_to_job(r)

    def list(self, project: str | None = None, limit: int = 50,
             states: Iterable[JobState | str] | None = None, kind: str | None = None) -> list[Job]:
        where, args = [], []
        if project is not None:
            where.append("project=?")
            args.append(project)
        if kind is not None:
            where.append("kind=?")
            args.append(kind)
        if states is not None:
            st = [JobState(s).value for s in states]
            where.append(f"state IN ({','.join('?' * len(st))})")
            args += st
        sql = "SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY created DESC, rowid DESC LIMIT ?"
        with self.connect() as conn:
            rows = conn.execute(sql, (*args, int(limit))).fetchall()
        if any(_owner_gone(r) for r in rows):
            self.recover()
            return self.list(project=project, limit=limit, states=states, kind=kind)
        return [_row_to_job(r) for r in rows]

    def transition(self, job_id: str, new: JobState, **fields: Any) -> Job:
        """Move a job to ``new`` (checked against ``TRANSITIONS``) and set ``fields`` atomically.

        Raises InvalidTransition when the move is not allowed from the current state
        (also when another thread changed the state first).
        """
        new = JobState(new)
        with self.connect() as conn, db.transaction(conn):
            r = conn.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
            if r is None:
                raise JobError(f"No job {job_id!r}.")
            old = JobState(r["state"])
            if not can_transition(old, new):
                raise InvalidTransition(job_id, old, new)
            now = time.time()
            values = {"state": new.value, **fields}
            if new is JobState.RUNNING:
                values.setdefault("started", now)
                values.setdefault("heartbeat", now)
            if new.finished:
                values.setdefault("finished", now)
                values["eta"] = None
            for k in ("metrics", "params"):
                if k in values and not isinstance(values[k], str):
                    values[k] = json.dumps(values[k], default=str)
            cols = ", ".join(f"{k}=?" for k in values)
            conn.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*values.values(), job_id))
            self._insert_event(conn, job_id, {"type": "state", "state": new.value, "from": old.value,
                                              **({"message": fields["message"]} if "message" in fields else {})})
            if new.finished:  # after the insert: the end event keeps a seq above every one a follower saw
                conn.execute(f"DELETE FROM job_events WHERE job_id=? AND {_MID_EPOCH}", (job_id,))
        return self.get(job_id)

    def update(self, job_id: str, **fields: Any) -> None:
        """Set plain columns (progress, metrics …) without a state change."""
        if not fields:
            return
        if "metrics" in fields and not isinstance(fields["metrics"], str):
            fields["metrics"] = json.dumps(fields["metrics"], default=str)
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.connect() as conn:
            conn.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*fields.values(), job_id))

    def request_cancel(self, job_id: str) -> None:
        with self.connect() as conn:
            conn.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))

    def cancel_requested(self, job_id: str) -> bool:
        with self.connect() as conn:
            r = conn.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(r and r[0])

    def claim(self, job_id: str) -> None:
        """Make this process the owner of a job (for running or adopting it)."""
        self.update(job_id, **_owner_fields())

    def heartbeat(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        if not ids:
            return
        with self.connect() as conn:
            conn.execute(f"UPDATE jobs SET heartbeat=? WHERE id IN ({','.join('?' * len(ids))})",
                         (time.time(), *ids))

    # events
    @staticmethod
    def _insert_event(conn, job_id: str, data: dict) -> None:
        conn.execute(
            "INSERT INTO job_events(job_id, seq, ts, data) SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?"
            " FROM job_events WHERE job_id=?", (job_id, time.time(), json.dumps(data, default=str), job_id))

    def add_event(self, job_id: str, data: dict) -> None:
        with self.connect() as conn:
            self._insert_event(conn, job_id, data)

    def events(self, job_id: str, since: int = 0) -> list[dict]:
        """Events with ``seq > since``, oldest first; each dict has ``seq`` and ``time``."""
        with self.connect() as conn:
            rows = conn.execute("SELECT seq, ts, data FROM job_events WHERE job_id=? AND seq>? ORDER BY seq",
                                (job_id, int(since))).fetchall()
        return [{**json.loads(r["data"]), "seq": r["seq"], "time": r["ts"]} for r in rows]

    # logs
    def add_log(self, job_id: str, line: str) -> None:
        line = line.rstrip("\n")[:LOG_LINE_MAX]
        with self.connect() as conn:
            cur = conn.execute(
                "INSERT INTO job_logs(job_id, seq, ts, line) SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?"
                " FROM job_logs WHERE job_id=? RETURNING seq", (job_id, time.time(), line, job_id))
            seq = cur.fetchone()[0]
            cur.close()
            if seq > LOG_CAP and seq % 100 == 0:
                conn.execute("DELETE FROM job_logs WHERE job_id=? AND seq<=?", (job_id, seq - LOG_CAP))

    def logs(self, job_id: str, tail: int = 200) -> list[str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT line FROM job_logs WHERE job_id=? ORDER BY seq DESC LIMIT ?",
                                (job_id, int(tail))).fetchall()
        return [r[0] for r in reversed(rows)]

    def compact_finished_events(self) -> int:
        """Drop the mid-epoch progress events of ended jobs (a job does it itself when it ends;
        this catches databases from before that). Returns how many rows went."""
        ended = [s.value for s in JobState if s.finished]
        with self.connect() as conn:
            cur = conn.execute(
                f"DELETE FROM job_events WHERE job_id IN (SELECT id FROM jobs WHERE state IN"
                f" ({','.join('?' * len(ended))})) AND {_MID_EPOCH}", ended)
            return int(cur.rowcount)

    # recovery
    def recover(self) -> list[str]:
        """Mark jobs whose owner process is gone: running → interrupted. Returns their ids.

        Queued jobs of a dead owner are adopted by the caller (see ``orphaned_queued``).
        """
        done = []
        with self.connect() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE state=? AND runner IN (?, ?)",
                                (JobState.RUNNING.value, *LOCAL_RUNNERS)).fetchall()
        for r in rows:
            if owner_alive(r["owner_pid"], r["owner_token"], r["owner_host"], r["owner_start"], r["heartbeat"]):
                continue
            try:
                self.transition(r["id"], JobState.INTERRUPTED,
                                message="The app stopped while this job was running "
                                        f"(process {r['owner_pid']} on {r['owner_host']} is gone). "
                                        "Start it again.")
            except InvalidTransition:
                continue  # it finished meanwhile
            self.add_log(r["id"], "marked interrupted: its process is gone")
            done.append(r["id"])
        return done

    def orphaned_queued(self) -> list[str]:
        """Queued local jobs whose owner process is gone, oldest first."""
        with self.connect() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE state=? AND runner IN (?, ?) ORDER BY created",
                                (JobState.QUEUED.value, *LOCAL_RUNNERS)).fetchall()
        return [r["id"] for r in rows if not owner_alive(
            r["owner_pid"], r["owner_token"], r["owner_host"], r["owner_start"], r["heartbeat"])]

    def live_running_since(self) -> float | None:
        """Earliest start of a running job whose owner is alive (None when there is none)."""
        with self.connect() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE state=?", (JobState.RUNNING.value,)).fetchall()
        starts = [r["started"] or r["created"] for r in rows if owner_alive(
            r["owner_pid"], r["owner_token"], r["owner_host"], r["owner_start"], r["heartbeat"])]
        return min(starts) if starts else None


def _loads(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return default


def _owner_gone(r) -> bool:
    """A running job of a local runner whose process is provably gone (recovery will interrupt it)."""
    return (r["state"] == JobState.RUNNING.value and r["runner"] in LOCAL_RUNNERS
            and not owner_alive(r["owner_pid"], r["owner_token"], r["owner_host"], r["owner_start"],
                                r["heartbeat"]))


def _row_to_job(r) -> Job:
    return Job(
        id=r["id"], kind=r["kind"], project=r["project"], params=_loads(r["params"], {}),
        state=JobState(r["state"]), progress=r["progress"] or 0.0, epoch=r["epoch"],
        total_epochs=r["total_epochs"], metrics=_loads(r["metrics"], {}), message=r["message"] or "",
        error=r["error"], created=r["created"], started=r["started"], finished=r["finished"],
        artefact_id=r["artefact_id"], runner=r["runner"], eta=r["eta"], step=r["step"],
        total_steps=r["total_steps"], owner_pid=r["owner_pid"])
