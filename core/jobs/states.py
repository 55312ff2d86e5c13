"""Job states, the only allowed moves between them, the job record and the job errors."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any



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
