"""Runners: the interface pages and the CLI use, the local runner (a queue and worker threads,
recovery of jobs of dead processes at start) and ``run_foreground`` for the CLI."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from typing import Callable, Protocol, runtime_checkable

from core.data.store import Store
from core.jobs.context import JobContext, _execute, _finish
from core.data.diskfull import keep_reserve
from core.data.store_recovery import run_recovery_hooks, sweep_store
from core.jobs.kinds import require_known, resolve_kind
from core.jobs.recovery import HEARTBEAT_INTERVAL, STALE_AFTER, discard_dead_partials
from core.jobs.states import ACTIVE_STATES, InvalidTransition, Job, JobState
from core.jobs.table import JobTable

log = logging.getLogger(__name__)


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
        keep_reserve(self.store.root)
        removed = discard_dead_partials(self.store, self.table)
        sweep_store(self.store, orphans=self.table.live_running_since() is None)  # a dead import's files
        run_recovery_hooks(self.store, [(j, self.table.get(j).kind) for j in interrupted], resolve_kind)
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
        require_known(kind)
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
    require_known(kind)
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
