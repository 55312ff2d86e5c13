"""The jobs room: background jobs — job table and states (``table``, ``states``), owners and recovery
(``recovery``), kinds (``kinds``), the job context (``context``), runners (``runner``, ``ray_runner``,
and ``remote``, a cluster job's entrypoint). Imports core.data and core.config only (job kinds' modules by name).

Background jobs: records in SQLite, one state machine, a local runner, progress, cancel.

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
*name string* and registers itself. Layers above add their kinds' modules with
``register_kind_module`` (the pages and the CLI declare ``"build-image"`` -> ``builder.jobs``),
so ``core`` never names ``builder``.

Ownership: a running job records the process that runs it (pid, a random
per-process token, the host name and the process start time) and a heartbeat.
``LocalRunner.start()`` marks only jobs whose owner is provably gone as
``interrupted`` (same host: the pid is dead or belongs to a new process; other
host: no heartbeat for ``STALE_AFTER`` seconds), so two app processes on one data
directory never interrupt each other's live jobs. Their queued jobs are adopted and
run; partial artefact folders no live job can be writing are removed. A process that
exits normally records its running jobs as interrupted itself.
"""

from core.jobs.context import JobContext
from core.jobs.kinds import (KIND_MODULES, JobFn, known_kinds, register_job_kind, register_kind_module,
                             require_known, resolve_kind)
from core.jobs.recovery import (HEARTBEAT_INTERVAL, HOST, LOCAL_RUNNERS, PROCESS_TOKEN, STALE_AFTER,
                                discard_dead_partials, new_job_id, owner_alive)
from core.jobs.runner import LocalRunner, Runner, TableReads, run_foreground
from core.jobs.states import (ACTIVE_STATES, TRANSITIONS, InvalidTransition, Job, JobCancelled, JobError,
                              JobState, can_transition)
from core.jobs.table import LOG_CAP, SCHEMA, JobTable

__all__ = ["ACTIVE_STATES", "HEARTBEAT_INTERVAL", "HOST", "KIND_MODULES", "LOCAL_RUNNERS", "LOG_CAP",
           "PROCESS_TOKEN", "SCHEMA", "STALE_AFTER", "TRANSITIONS", "InvalidTransition", "Job", "JobCancelled",
           "JobContext", "JobError", "JobFn", "JobState", "JobTable", "LocalRunner", "Runner", "TableReads",
           "can_transition", "discard_dead_partials", "known_kinds", "new_job_id", "owner_alive",
           "register_job_kind", "register_kind_module", "require_known", "resolve_kind", "run_foreground"]
