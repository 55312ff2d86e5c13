"""Plain words for a full disk (ENOSPC, EDQUOT, SQLite's "database or disk is full")."""

from __future__ import annotations

import errno
import sqlite3

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
