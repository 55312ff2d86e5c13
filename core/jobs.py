"""Background jobs: records in SQLite, one state machine, a local runner, progress, cancel.

A job is a function ``fn(ctx: JobContext, params: dict) -> str | None`` registered
under a *kind* (``register_job_kind``). It returns the id of the artefact it made
(or None). The runner records every job in the store's ``studio.db`` (tables
``jobs``, ``job_events``, ``job_logs``), so any page, process or CLI reading the
same data directory sees the same jobs.

States and the only allowed moves (``TRANSITIONS``)::

    queued  -> running | cancelled | failed   (failed: it could not even start, e.g. no cluster)
    running -> succeeded | failed | cancelled | interrupted

Threading: ``LocalRunner`` owns ``max_concurrent`` worker threads fed by a queue
(plus optional *lanes*: a kind with a queue and workers of its own). Job functions
run in those threads and must never call ``st.*``. Pages keep only a job id and read
``Runner.get`` / ``events`` / ``logs``, which read SQLite. ``run_foreground`` runs the
same job in the calling thread (the CLI).

Cancel: a queued job becomes ``cancelled`` at once; a running one gets its
``threading.Event`` set and a flag in its row (so another process can cancel it too),
and ``JobContext.check_cancelled()`` raises ``JobCancelled`` at the next batch.

Job kinds are found lazily: the first time a job of kind ``"train"`` runs, the
module named in ``KIND_MODULES`` (``core.training.jobs``) is imported by its
*name string* and registers itself. ``"build-image"`` maps to the builder's
module the same way, so ``core`` never imports ``builder`` at module level.

Ownership: a running job records the process that runs it (pid, a random
per-process token, the host name and the process start time) and a heartbeat.
``LocalRunner.start()`` marks only jobs whose owner is provably gone as
``interrupted`` (same host: the pid is dead or belongs to a new process; other
host: no heartbeat for ``STALE_AFTER`` seconds), so two app processes on one data
directory never interrupt each other's live jobs. Their queued jobs are adopted and
run; partial artefact folders no live job can be writing are removed. A process that
exits normally records its running jobs as interrupted itself.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import queue
import shutil
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from core import artefacts, db
from core.store import Store

log = logging.getLogger(__name__)


# -- states -------------------------------------------------------------------
class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        """True for the end states (nothing can follow them)."""
        return not TRANSITIONS[self]


#: The one table of allowed state changes.
TRANSITIONS: dict[JobState, set[JobState]] = {
    JobState.QUEUED: {JobState.RUNNING, JobState.CANCELLED, JobState.FAILED},
    JobState.RUNNING: {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED},
    JobState.SUCCEEDED: set(),
    JobState.FAILED: set(),
    JobState.CANCELLED: set(),
    JobState.INTERRUPTED: set(),
}

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


class JobError(Exception):
    """A job operation that cannot be done (unknown job or kind, forbidden transition)."""


class InvalidTransition(JobError):
    def __init__(self, job_id: str, old: JobState, new: JobState):
        super().__init__(f"Job {job_id}: cannot go from {old.value} to {new.value}.")
        self.job_id, self.old, self.new = job_id, old, new


def can_transition(old: JobState | str, new: JobState | str) -> bool:
    """Whether ``TRANSITIONS`` allows ``old -> new``."""
    return JobState(new) in TRANSITIONS[JobState(old)]


class JobCancelled(Exception):
    """Raised inside a job function by ``JobContext.check_cancelled`` after a cancel."""


# -- records ------------------------------------------------------------------
@dataclass
class Job:
    """A snapshot of one job record."""

    id: str
    kind: str
    project: str | None
    params: dict
    state: JobState
    progress: float
    epoch: int | None
    total_epochs: int | None
    metrics: dict
    message: str
    error: str | None
    created: float
    started: float | None
    finished: float | None
    artefact_id: str | None
    runner: str
    eta: float | None = None  # seconds left, estimated from elapsed time / progress
    step: int | None = None
    total_steps: int | None = None
    owner_pid: int | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def duration(self) -> float | None:
        """Seconds spent running (up to now while it runs)."""
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["state"] = self.state.value
        return d


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
HEARTBEAT_INTERVAL = 15.0
STALE_AFTER = 120.0  # a job on another host without heartbeat this long is considered dead

# A progress event from the middle of an epoch (what the live view shows while a job runs; the
# curves and the history use the epoch-level events). Dropped once the job has ended.
_MID_EPOCH = ("json_extract(data, '$.type') = 'progress' AND json_extract(data, '$.step') IS NOT NULL"
              " AND (json_extract(data, '$.total_steps') IS NULL"
              " OR json_extract(data, '$.step') < json_extract(data, '$.total_steps'))")


# -- this process -------------------------------------------------------------
PROCESS_TOKEN = uuid.uuid4().hex
HOST = socket.gethostname()


def _proc_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of process ``pid``, where /proc exists."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return raw.rsplit(")", 1)[1].split()[19]
    except IndexError:
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


_MY_START = _proc_start(os.getpid())


def owner_alive(pid: int | None, token: str | None, host: str | None, start: str | None,
                heartbeat: float | None, now: float | None = None) -> bool:
    """Whether the process that owns a job record is still alive (conservative: when unsure, yes)."""
    if token == PROCESS_TOKEN:
        return True
    now = time.time() if now is None else now
    if host == HOST and pid is not None:
        if pid == os.getpid():
            return False  # same pid, other token: an earlier run of this program (e.g. a container)
        if not _pid_alive(pid):
            return False
        current = _proc_start(pid)
        if start is not None and current is not None and current != start:
            return False  # the pid was reused by another process
        return True
    return heartbeat is not None and now - heartbeat < STALE_AFTER


def _owner_fields() -> dict[str, Any]:
    """Columns that say this process owns a job."""
    return {"owner_pid": os.getpid(), "owner_token": PROCESS_TOKEN, "owner_host": HOST,
            "owner_start": _MY_START, "heartbeat": time.time()}


def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


#: Runners whose jobs run inside a studio process (a dead process means a dead job). Jobs of
#: other runners (Ray) live on elsewhere: their runner re-attaches to them instead.
LOCAL_RUNNERS = ("local", "foreground")


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


def discard_dead_partials(store: Store, table: JobTable) -> list[str]:
    """Remove partial artefact folders no live job can be writing.

    Partial folders carry no job id, so a folder is kept when a job of a live
    process was already running when the folder last changed.
    """
    since = table.live_running_since()
    keep: set[str] = set()
    if since is not None:
        for d in artefacts.models_dir(store.root).glob(".partial-*"):
            try:
                if d.stat().st_mtime >= since - 1.0:
                    keep.add(d.name.removeprefix(".partial-"))
            except OSError:
                continue
    return artefacts.discard_partials(store.root, keep=keep)


# -- job kinds -------------------------------------------------------------------
JobFn = Callable[["JobContext", dict], "str | None"]
_KINDS: dict[str, JobFn] = {}
_KINDS_LOCK = threading.Lock()

#: kind -> module that registers it on import (imported lazily, by name, when first needed).
KIND_MODULES: dict[str, str] = {
    "train": "core.training.jobs",
    "build-image": "builder.jobs",
}


def register_job_kind(kind: str, fn: JobFn) -> None:
    """Register (or replace) the function that runs jobs of ``kind``; it returns an artefact id or None."""
    with _KINDS_LOCK:
        _KINDS[kind] = fn


def known_kinds() -> list[str]:
    return sorted(set(_KINDS) | set(KIND_MODULES))


def resolve_kind(kind: str) -> JobFn:
    """The function for ``kind``, importing its module from ``KIND_MODULES`` on first use."""
    fn = _KINDS.get(kind)
    if fn is not None:
        return fn
    module = KIND_MODULES.get(kind)
    if module is None:
        raise JobError(f"Unknown job kind {kind!r} (known: {', '.join(known_kinds()) or 'none'}).")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise JobError(f"Jobs of kind {kind!r} are not available here: {exc}") from exc
    fn = _KINDS.get(kind)
    if fn is None:
        raise JobError(f"Module {module} did not register job kind {kind!r}.")
    return fn


# -- the context handed to a job function ------------------------------------------
class JobContext:
    """What a running job sees: its id, the store, a scratch folder, progress/log/cancel.

    Lives in the worker thread (or the CLI's thread); never touches Streamlit.
    """

    def __init__(self, table: JobTable, job_id: str, cancel_event: threading.Event | None = None,
                 on_event: Callable[[dict], None] | None = None):
        self._table = table
        self.job_id = job_id
        self.store: Store = table.store
        self.work_dir: Path = table.store.root / "jobs" / job_id
        self._cancel = cancel_event or threading.Event()
        self._on_event = on_event
        self._started = time.time()
        self._last_row = 0.0
        self._last_step_event = 0.0
        self._last_cancel_poll = 0.0
        self._epoch: int | None = None
        self._total_epochs: int | None = None
        self._metrics: dict = {}

    # cancel
    @property
    def cancelled(self) -> bool:
        """True once cancel was asked for (here or by another process through the database)."""
        if self._cancel.is_set():
            return True
        now = time.monotonic()
        if now - self._last_cancel_poll >= CANCEL_POLL_INTERVAL:
            self._last_cancel_poll = now
            if self._table.cancel_requested(self.job_id):
                self._cancel.set()
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise JobCancelled when the job was cancelled (call it at least once per batch)."""
        if self.cancelled:
            raise JobCancelled("Cancelled")

    # progress
    def progress(self, *, fraction: float | None = None, epoch: int | None = None,
                 total_epochs: int | None = None, step: int | None = None, total_steps: int | None = None,
                 metrics: dict | None = None, message: str | None = None) -> None:
        """Record progress. ``epoch`` is 1-based: without ``step`` it means epoch ``epoch`` is done;
        with ``step``/``total_steps`` it is the epoch in progress. ``fraction`` (0..1) overrides the
        fraction computed from them. Epoch-level metrics (no ``step``, or ``step == total_steps``)
        and the first event of an epoch are always stored as events; per-batch updates are thinned
        out (the job row still shows the latest message)."""
        now = time.time()
        if total_epochs is not None:
            self._total_epochs = int(total_epochs)
        new_epoch = epoch is not None and epoch != self._epoch
        if epoch is not None:
            self._epoch = int(epoch)
        if fraction is None:
            fraction = _fraction(epoch, self._total_epochs, step, total_steps)
        if metrics:
            clean = {k: _num(v) for k, v in metrics.items()}
            self._metrics.update(clean)
        else:
            clean = None
        elapsed = now - self._started
        eta = None
        if fraction is not None:
            fraction = min(max(float(fraction), 0.0), 1.0)
            if fraction > 0:
                eta = elapsed * (1.0 - fraction) / fraction
        # Stored always: epoch-level metrics (no step, or the last step of the epoch) and the
        # first event of a new epoch; per-batch updates at most every STEP_EVENT_INTERVAL s.
        epoch_level = step is None or (total_steps is not None and step >= total_steps)
        important = (bool(clean) and epoch_level) or new_epoch
        row_now = important or message is not None
        event = {"type": "progress", "fraction": fraction, "epoch": epoch, "total_epochs": self._total_epochs,
                 "step": step, "total_steps": total_steps, "metrics": clean, "message": message,
                 "elapsed": elapsed, "eta": eta}
        event = {k: v for k, v in event.items() if v is not None}
        if important or now - self._last_step_event >= STEP_EVENT_INTERVAL:
            self._last_step_event = now
            self._table.add_event(self.job_id, event)
        if row_now or now - self._last_row >= ROW_UPDATE_INTERVAL:
            self._last_row = now
            fields: dict[str, Any] = {"heartbeat": now}
            if fraction is not None:
                fields["progress"] = fraction
                fields["eta"] = eta
            if self._epoch is not None:
                fields["epoch"] = self._epoch
            if self._total_epochs is not None:
                fields["total_epochs"] = self._total_epochs
            if step is not None:
                fields["step"] = step
            if total_steps is not None:
                fields["total_steps"] = total_steps
            if clean:
                fields["metrics"] = self._metrics
            if message is not None:
                fields["message"] = message
            self._table.update(self.job_id, **fields)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - a display callback must not kill the job
                log.exception("on_event callback failed")

    def log(self, line: str) -> None:
        """Append a line to the job's log (kept in the database, capped)."""
        for part in str(line).splitlines() or [""]:
            self._table.add_log(self.job_id, part)
        log.debug("[%s] %s", self.job_id, line)


def _num(v: Any) -> Any:
    """Metric values as plain JSON numbers where possible (numpy scalars …)."""
    try:
        if hasattr(v, "item"):
            v = v.item()
    except (ValueError, TypeError):
        pass
    return v


def _fraction(epoch: int | None, total_epochs: int | None, step: int | None,
              total_steps: int | None) -> float | None:
    in_epoch = step / total_steps if step is not None and total_steps else None
    if total_epochs:
        if epoch is None:
            return None  # a step without its epoch says nothing about the whole run
        if in_epoch is not None:
            return (max(epoch - 1, 0) + in_epoch) / total_epochs
        return epoch / total_epochs
    return in_epoch


# -- executing one job (shared by the runner and run_foreground) ----------------------
def _execute(table: JobTable, job_id: str, ctx: JobContext) -> Job:
    """Run a queued job in this thread through to an end state. Never raises (except KeyboardInterrupt)."""
    try:
        job = table.transition(job_id, JobState.RUNNING, message="Starting", **_owner_fields())
    except InvalidTransition:
        return table.get(job_id)  # cancelled while queued
    ctx._started = job.started or time.time()
    try:
        fn = resolve_kind(job.kind)
        ctx.check_cancelled()
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        artefact_id = fn(ctx, job.params)
    except JobCancelled:
        ctx.log("cancelled")
        _remove_dir(ctx.work_dir)
        return _finish(table, job_id, JobState.CANCELLED, message="Cancelled")
    except KeyboardInterrupt:
        ctx.log("cancelled (keyboard interrupt)")
        _finish(table, job_id, JobState.CANCELLED, message="Cancelled (Ctrl-C)")
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure ends the job, never the runner
        tb = traceback.format_exc()
        for line in tb.splitlines():
            table.add_log(job_id, line)
        if ctx.cancelled:
            return _finish(table, job_id, JobState.CANCELLED, message="Cancelled")
        msg = str(exc).strip() or type(exc).__name__
        if isinstance(exc, (SystemExit, GeneratorExit)):
            msg = f"{type(exc).__name__}: {msg}"
        msg = msg[:MESSAGE_MAX]
        short = msg if len(msg) <= 600 else msg[:600].rstrip() + " … (full text in the log)"
        return _finish(table, job_id, JobState.FAILED, message=f"Failed: {short}", error=msg)
    _remove_dir(ctx.work_dir)
    return _finish(table, job_id, JobState.SUCCEEDED, message="Finished", progress=1.0,
                   artefact_id=str(artefact_id) if artefact_id is not None else None)


def _finish(table: JobTable, job_id: str, state: JobState, **fields: Any) -> Job:
    try:
        return table.transition(job_id, state, **fields)
    except InvalidTransition:
        return table.get(job_id)


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- runners --------------------------------------------------------------------------
@runtime_checkable
class Runner(Protocol):
    """What pages and the CLI need from a runner (LocalRunner now, a Ray runner later)."""

    def submit(self, kind: str, params: dict, project: str | None = None) -> str: ...
    def get(self, job_id: str) -> Job: ...
    def list(self, project: str | None = None, limit: int = 50) -> list[Job]: ...
    def cancel(self, job_id: str) -> None: ...
    def events(self, job_id: str, since: int = 0) -> list[dict]: ...
    def logs(self, job_id: str, tail: int = 200) -> list[str]: ...


class TableReads:
    """The read side of the Runner interface, shared by every runner that keeps jobs in a JobTable."""

    table: "JobTable"

    def get(self, job_id: str) -> Job:
        return self.table.get(job_id)

    def list(self, project: str | None = None, limit: int = 50) -> list[Job]:
        return self.table.list(project=project, limit=limit)

    def active(self, project: str | None = None) -> list[Job]:
        """Queued and running jobs (newest first)."""
        return self.table.list(project=project, states=ACTIVE_STATES, limit=100)

    def events(self, job_id: str, since: int = 0) -> list[dict]:
        return self.table.events(job_id, since)

    def logs(self, job_id: str, tail: int = 200) -> list[str]:
        return self.table.logs(job_id, tail)

    def wait(self, job_id: str, timeout: float = 60.0, poll: float = 0.05) -> Job:
        """Block until the job reaches an end state or ``timeout`` passes (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.table.get(job_id)
            if job.state.finished or time.monotonic() >= deadline:
                return job
            time.sleep(poll)


class LocalRunner(TableReads):
    """Runs jobs in this process: a queue and ``max_concurrent`` worker threads.

    ``lanes`` gives some kinds a queue and workers of their own, e.g. ``{"build-image": 1}``
    lets an image build run while a training job occupies the main queue.
    """

    name = "local"

    def __init__(self, store: Store, max_concurrent: int = 1, lanes: dict[str, int] | None = None):
        if max_concurrent < 1 or any(n < 1 for n in (lanes or {}).values()):
            raise ValueError("max_concurrent (and every lane's workers) must be at least 1")
        self.store = store
        self.table = JobTable(store)
        self.max_concurrent = int(max_concurrent)
        self.lanes = {str(k): int(n) for k, n in (lanes or {}).items()}
        self._workers: dict[str | None, int] = {None: self.max_concurrent, **self.lanes}
        self._queues: dict[str | None, queue.Queue[str | None]] = {k: queue.Queue() for k in self._workers}
        self._cancel_events: dict[str, threading.Event] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._started = False
        self._atexit = False

    # lifecycle
    def start(self) -> "LocalRunner":
        """Recover from dead processes (interrupt their running jobs, remove partial folders, adopt
        their queued jobs) and start the worker threads. Idempotent."""
        with self._lock:
            if self._started:
                return self
            self._started = True
            self._stop.clear()
        self.recover()
        self.table.compact_finished_events()
        for lane, n in self._workers.items():
            for i in range(n):
                t = threading.Thread(target=self._worker, args=(self._queues[lane],),
                                     name=f"job-worker-{lane or 'main'}-{i}", daemon=True)
                t.start()
                self._threads.append(t)
        hb = threading.Thread(target=self._heartbeat_loop, name="job-heartbeat", daemon=True)
        hb.start()
        self._threads.append(hb)
        if not self._atexit:
            self._atexit = True
            atexit.register(self._interrupt_running)
        return self

    def _interrupt_running(self) -> None:
        """At interpreter exit: record this runner's running jobs as interrupted right away."""
        with self._lock:
            ids = list(self._running)
        for job_id in ids:
            try:
                self.table.transition(job_id, JobState.INTERRUPTED,
                                      message="The app was stopped while this job was running. Start it again.")
            except Exception:  # noqa: BLE001 - best effort; start() recovers the rest
                pass

    def recover(self) -> list[str]:
        """Interrupt running jobs of dead processes, discard dead partial folders, adopt queued orphans."""
        interrupted = self.table.recover()
        removed = discard_dead_partials(self.store, self.table)
        if interrupted or removed:
            log.info("recovered: interrupted %s, removed partial folders %s", interrupted, removed)
        for job_id in self.table.orphaned_queued():
            self.table.claim(job_id)
            self.table.add_log(job_id, f"adopted by process {os.getpid()} after its process stopped")
            self._enqueue(job_id, self.table.get(job_id).kind)
        return interrupted

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel this runner's queued and running jobs and stop the threads."""
        self._stop.set()
        with self._lock:
            pending = list(self._cancel_events)
        for job_id in pending:
            self.cancel(job_id)
        for lane, n in self._workers.items():
            for _ in range(n):
                self._queues[lane].put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        with self._lock:
            self._started = False

    # the Runner interface
    def submit(self, kind: str, params: dict, project: str | None = None) -> str:
        """Queue a job; returns its id. Raises JobError for an unknown kind."""
        if kind not in _KINDS and kind not in KIND_MODULES:
            raise JobError(f"Unknown job kind {kind!r} (known: {', '.join(known_kinds()) or 'none'}).")
        if project is None and isinstance(params, dict):
            project = params.get("project")
        job_id = self.table.create(kind, params, project, self.name)
        self._enqueue(job_id, kind)
        if not self._started:
            self.start()
        return job_id

    def cancel(self, job_id: str) -> None:
        """Cancel a job: a queued one at once, a running one at its next ``check_cancelled``.

        Works for jobs of other processes too (through the database flag). No-op when finished."""
        job = self.table.get(job_id)
        if job.state.finished:
            return
        self.table.request_cancel(job_id)
        with self._lock:
            ev = self._cancel_events.get(job_id)
        if ev is not None:
            ev.set()
        if job.state is JobState.QUEUED:
            try:
                self.table.transition(job_id, JobState.CANCELLED, message="Cancelled before it started")
                self.table.add_log(job_id, "cancelled while queued")
            except InvalidTransition:
                pass  # it started meanwhile: the event stops it

    # internals
    def _enqueue(self, job_id: str, kind: str) -> None:
        with self._lock:
            self._cancel_events.setdefault(job_id, threading.Event())
        self._queues[kind if kind in self.lanes else None].put(job_id)

    def _worker(self, jobs: "queue.Queue[str | None]") -> None:
        while True:
            job_id = jobs.get()
            if job_id is None:
                return
            with self._lock:
                ev = self._cancel_events.setdefault(job_id, threading.Event())
                self._running.add(job_id)
            try:
                if self._stop.is_set():
                    self.cancel(job_id)
                else:
                    _execute(self.table, job_id, JobContext(self.table, job_id, ev))
            except Exception:  # noqa: BLE001 - the worker must survive anything
                log.exception("job %s: runner error", job_id)
                try:
                    _finish(self.table, job_id, JobState.FAILED, message="Failed: internal runner error",
                            error="internal runner error")
                except Exception:  # noqa: BLE001
                    log.exception("job %s: could not record the failure", job_id)
            finally:
                with self._lock:
                    self._running.discard(job_id)
                    self._cancel_events.pop(job_id, None)

    def _heartbeat_loop(self) -> None:
        last_recover = time.monotonic()
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            try:
                with self._lock:
                    ids = list(self._running)
                self.table.heartbeat(ids)
                if time.monotonic() - last_recover > STALE_AFTER / 2:
                    last_recover = time.monotonic()
                    self.table.recover()
            except Exception:  # noqa: BLE001
                log.exception("heartbeat failed")


def run_foreground(store: Store, kind: str, params: dict, project: str | None = None,
                   on_event: Callable[[dict], None] | None = None) -> Job:
    """Run a job in the calling thread (the CLI), recorded like any other job; returns the final Job.

    ``on_event(event)`` is called for each progress event (e.g. to drive a tqdm bar).
    Ctrl-C cancels the job and re-raises KeyboardInterrupt.
    """
    if kind not in _KINDS and kind not in KIND_MODULES:
        raise JobError(f"Unknown job kind {kind!r} (known: {', '.join(known_kinds()) or 'none'}).")
    table = JobTable(store)
    if project is None and isinstance(params, dict):
        project = params.get("project")
    job_id = table.create(kind, params, project, "foreground")
    ctx = JobContext(table, job_id, on_event=on_event)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_INTERVAL):
            try:
                table.heartbeat([job_id])
            except Exception:  # noqa: BLE001
                pass

    t = threading.Thread(target=beat, name="job-heartbeat-fg", daemon=True)
    t.start()
    try:
        return _execute(table, job_id, ctx)
    finally:
        stop.set()
