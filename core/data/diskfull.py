"""Plain words for a full disk (ENOSPC, EDQUOT, SQLite's "database or disk is full")."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
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


RESERVE_NAME = ".disk-reserve"
RESERVE_BYTES = 2 * 1024 * 1024


def keep_reserve(root: Path) -> bool:
    """Hold ``RESERVE_BYTES`` of real disk space in ``root`` (a ballast file) while there is room.

    When the disk fills up, ``release_reserve`` gives it back so the studio can still record what
    happened (a job's failure) in its database. Returns whether the reserve is in place.
    """
    path = Path(root) / RESERVE_NAME
    if path.is_file() and path.stat().st_size == RESERVE_BYTES:
        return True
    try:
        with open(path, "wb") as fh:
            fh.write(b"\0" * RESERVE_BYTES)  # real blocks, not a sparse file
        return True
    except OSError:
        path.unlink(missing_ok=True)
        return False


def release_reserve(root: Path) -> bool:
    """Delete the ballast file (nothing holds it open: the space is free at once)."""
    path = Path(root) / RESERVE_NAME
    if not path.exists():
        return False
    path.unlink(missing_ok=True)
    return True
