"""Who owns a running job: this process's identity, whether another owner is still alive
(pid + start time on this host, heartbeat elsewhere), and the cleanup of partial artefacts
that no live job can be writing."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.data import artefacts
from core.data.store import Store

if TYPE_CHECKING:
    from core.jobs.table import JobTable


HEARTBEAT_INTERVAL = 15.0
STALE_AFTER = 120.0  # a job on another host without heartbeat this long is considered dead


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
