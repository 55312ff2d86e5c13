"""Plain words for a full disk (ENOSPC, EDQUOT, SQLite's "database or disk is full")."""

from __future__ import annotations

import errno
import gc
import os
import shutil
import sqlite3
import traceback
from pathlib import Path

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the disk or a quota is full."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
            return True
        if "no space left on device" in str(exc).lower() or "disk quota exceeded" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def disk_full_message(what: str, where: str = "") -> str:
    """``The disk is full …``: what stopped, that nothing half-done was kept, what to do."""
    at = f" ({where})" if where else ""
    return (f"The disk is full{at}: {what} stopped and nothing half-done was kept. Free some space and "
            "try again.")


def plain_error(exc: BaseException) -> str:
    """The message of ``exc``, or the disk-full sentence when that is what happened."""
    if is_disk_full(exc):
        return disk_full_message("the job", f"details: {str(exc).strip() or type(exc).__name__}")
    return str(exc).strip() or type(exc).__name__


def free_job_files(exc: BaseException, folder: Path) -> None:
    """After a disk-full failure: close what the failed frames held open, then empty and remove ``folder``.

    A library that failed to close a file (h5py on ENOSPC) keeps its space in use until the file is
    cut to 0 bytes: every file is truncated before the folder is removed.
    """
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        traceback.clear_frames(seen.__traceback__)
        seen = seen.__cause__ or seen.__context__
    gc.collect()
    for p in Path(folder).rglob("*") if Path(folder).is_dir() else ():
        try:
            if p.is_file():
                os.truncate(p, 0)
        except OSError:
            pass
    shutil.rmtree(folder, ignore_errors=True)
