"""Resuming an interrupted training job from its last per-epoch checkpoint.

A resume is a new job with the interrupted job's params plus ``resume_from`` (its id): the
interrupted job's record stays as it was (an end state), the new one ends like an uninterrupted
run would. The new job claims the checkpoint when it starts (``checkpoint.mark_resumed``), so a
second resume of the same job is refused with the id of the job that resumed it.
"""

from __future__ import annotations

import shutil
from typing import Any

from core.jobs import JobState, JobTable, discard_dead_partials
from core.data.store import Store
from core.training import checkpoint
from core.training.checkpoint import ResumeError


def resume_params(store: Store, job_id: str) -> dict[str, Any]:
    """The params of the job that resumes ``job_id``; ResumeError with the reason when it cannot be."""
    table = JobTable(store)
    job = table.get(job_id)  # reading interrupts it first if its process is gone
    if job.kind != "train":
        raise ResumeError(f"Job {job_id} is a {job.kind!r} job; only training jobs can be resumed.")
    if job.state in (JobState.QUEUED, JobState.RUNNING):
        raise ResumeError(f"Job {job_id} is still {job.state.value}; it can be resumed only after it was "
                          "interrupted.")
    if job.state is not JobState.INTERRUPTED:
        raise ResumeError(f"Job {job_id} ended as {job.state.value}; only an interrupted job can be resumed.")
    by = checkpoint.resumed_by(store.root, job_id)
    if by:
        try:
            state = table.get(by).state.value
        except Exception:  # noqa: BLE001 - the other job's record may be gone
            state = "unknown"
        hint = " Resume that job instead." if state == "interrupted" else ""
        raise ResumeError(f"Job {job_id} was already resumed as job {by} ({state}).{hint}")
    info = checkpoint.latest(store.root, job_id)
    if info is None:
        raise ResumeError(f"Job {job_id} has no checkpoint to resume from: it was deleted, or the job "
                          "stopped before its first epoch ended. Start a new training instead.")
    params = {k: v for k, v in job.params.items() if k != "resume_from"}
    params["resume_from"] = job_id
    params["resume_epoch"] = int(info["epoch"])
    return params


def prepare_resume(store: Store, job_id: str) -> dict[str, Any]:
    """Check ``job_id`` can be resumed and tidy what its dead process left (its scratch folder,
    partial model folders no live job writes); returns the new job's params."""
    params = resume_params(store, job_id)
    shutil.rmtree(store.root / "jobs" / job_id, ignore_errors=True)
    discard_dead_partials(store, JobTable(store))
    return params


def resumable(store: Store, job_id: str) -> tuple[bool, str]:
    """(can it be resumed, why not / at which epoch) -- for the Train page's button."""
    try:
        params = resume_params(store, job_id)
    except ResumeError as exc:
        return False, str(exc)
    return True, f"continues after epoch {params['resume_epoch']}"


def discard_checkpoint(store: Store, job_id: str) -> bool:
    """Delete an interrupted job's checkpoint (it can no longer be resumed). True if one existed."""
    return checkpoint.remove(store.root, job_id)


__all__ = ["ResumeError", "prepare_resume", "resume_params", "resumable", "discard_checkpoint"]
