"""SQLite connections for the studio's metadata (WAL mode, one file per data directory)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DB_NAME = "studio.db"
BUSY_TIMEOUT_ENV = "STUDIO_DB_BUSY_TIMEOUT_S"  # how long a write waits for another writer (default 30 s)


def busy_timeout_s() -> float:
    """Seconds a connection waits for a lock another process holds before "database is locked"."""
    try:
        return max(0.0, float(os.environ.get(BUSY_TIMEOUT_ENV, "30")))
    except ValueError:
        return 30.0


def connect(data_dir: Path) -> sqlite3.Connection:
    """A new connection to ``data_dir/studio.db`` with WAL, foreign keys and a busy timeout."""
    data_dir.mkdir(parents=True, exist_ok=True)
    wait = busy_timeout_s()
    conn = sqlite3.connect(data_dir / DB_NAME, timeout=wait, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
