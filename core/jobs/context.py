"""The context handed to a job function (progress, logs, cancel) and the execution of one job,
shared by the local runner, ``run_foreground`` and the cluster entrypoint."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from core.data.diskfull import is_disk_full, keep_reserve, plain_error, release_reserve
from core.data.store import Store
from core.jobs.kinds import resolve_kind
from core.jobs.recovery import _owner_fields
from core.jobs.states import InvalidTransition, Job, JobCancelled, JobState
from core.jobs.table import CANCEL_POLL_INTERVAL, JobTable, MESSAGE_MAX, ROW_UPDATE_INTERVAL, STEP_EVENT_INTERVAL

log = logging.getLogger(__name__)


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

    def event(self, data: dict) -> None:
        """Store an event of the job's own (e.g. ``{"type": "device", ...}``) beside its progress events."""
        self._table.add_event(self.job_id, dict(data))


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
        keep_reserve(table.store.root)  # room to record a disk-full failure (core.data.diskfull)
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
        if is_disk_full(exc):  # give space back first, so that how the job ended can be recorded
            release_reserve(table.store.root)
            _remove_dir(ctx.work_dir)
        try:
            for line in tb.splitlines():
                table.add_log(job_id, line)
        except sqlite3.Error:
            pass  # the disk may still be full: recording how the job ended matters more than its traceback
        if ctx.cancelled:
            return _finish(table, job_id, JobState.CANCELLED, message="Cancelled")
        msg = plain_error(exc)
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
