"""After a crash (kill -9, power cut, disk full): find and sweep what a dead writer left behind.

The store's writes are already all-or-nothing — image bytes go to a temporary file renamed
into place, rows are one SQLite transaction, model folders are published by one rename,
exports are written beside their target and renamed. What a killed writer can leave is
*unreferenced*: ``.tmp-*`` files, image files whose import transaction never committed.
``sweep_store`` removes them; it runs when a job runner starts (the app and the CLI).

Writers of image files hold ``writing(root)`` (a shared ``flock``; the kernel drops it when the
process dies); the sweep takes the exclusive lock without waiting, so it never removes the
file of an import that is still running. ``store_problems`` lists every inconsistency, for tests
and support.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

log = logging.getLogger(__name__)
LOCK_NAME = ".write.lock"
TMP_PREFIX = ".tmp-"


@contextmanager
def writing(root: Path) -> Iterator[None]:
    """Held (shared) while image files are written: a sweep leaves their files alone."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def _exclusive(root: Path) -> Iterator[bool]:
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _referenced(store) -> set[str]:
    with store.connect() as conn:
        return {r[0] for r in conn.execute("SELECT DISTINCT content FROM images")}


def _blob_files(store) -> Iterator[Path]:
    for sub in store.images_dir.iterdir() if store.images_dir.is_dir() else ():
        if sub.is_dir():
            yield from (p for p in sub.iterdir() if p.is_file())


def sweep_store(store, orphans: bool = True) -> dict[str, list[str]]:
    """Remove temporary files and (when ``orphans``) image files no record uses.

    Does nothing while another process is writing image files. Returns what was removed.
    """
    removed: dict[str, list[str]] = {"tmp": [], "orphans": []}
    with _exclusive(store.root) as mine:
        if not mine:
            return removed
        used = _referenced(store) if orphans else set()
        for p in list(_blob_files(store)):
            if p.name.startswith(TMP_PREFIX):
                p.unlink(missing_ok=True)
                removed["tmp"].append(p.name)
            elif orphans and p.name not in used:
                p.unlink(missing_ok=True)
                removed["orphans"].append(p.name)
    return removed


def store_problems(store, check_hashes: bool = True) -> list[str]:
    """Every inconsistency of the store, in words (empty: consistent).

    Records whose image file is missing or differs from its hash, annotations, classes or
    images of records that do not exist, leftover temporary files and unreferenced image files,
    half-made model folders.
    """
    problems: list[str] = []
    with store.connect() as conn:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("the database fails its integrity check")
        for table, parent, *_ in conn.execute("PRAGMA foreign_key_check").fetchall():
            problems.append(f"a row of {table} points to a missing {parent} row")
        contents = [r[0] for r in conn.execute("SELECT DISTINCT content FROM images")]
    for content in contents:
        path = store.blob_path(content)
        if not path.is_file():
            problems.append(f"image file {content[:12]}… of a record is missing")
        elif check_hashes and hashlib.sha256(path.read_bytes()).hexdigest() != content:
            problems.append(f"image file {content[:12]}… does not match its hash (half-written)")
    used = set(contents)
    for p in _blob_files(store):
        if p.name.startswith(TMP_PREFIX):
            problems.append(f"temporary file left behind: {p.parent.name}/{p.name}")
        elif p.name not in used:
            problems.append(f"image file no record uses: {p.parent.name}/{p.name[:12]}…")
    models = store.root / "models"
    if models.is_dir():
        for d in models.iterdir():
            if d.name.startswith(".partial-"):
                problems.append(f"half-made model folder left behind: {d.name}")
            elif d.is_dir() and not (d / "manifest.json").is_file():
                problems.append(f"model folder without a manifest: {d.name}")
    return problems


RecoveryHook = Callable[[object, list[str]], None]
_HOOKS: list[RecoveryHook] = []


def register_recovery_hook(fn: RecoveryHook) -> None:
    """``fn(store, job_ids)`` runs when a job runner starts, with the jobs it found interrupted; a job
    kind's module registers one to clean up what such a job left half-made (a robot-image build folder)."""
    if fn not in _HOOKS:
        _HOOKS.append(fn)


def run_recovery_hooks(store, jobs: Iterable[tuple[str, str]], load_kind: Callable[[str], object]) -> None:
    """Run the hooks for interrupted ``(job_id, kind)`` pairs (``load_kind`` imports each kind's module)."""
    jobs = list(jobs)
    if not jobs:
        return
    for _, kind in jobs:
        try:
            load_kind(kind)
        except Exception:  # noqa: BLE001 - an unknown kind has nothing to clean up
            pass
    for hook in list(_HOOKS):
        try:
            hook(store, [j for j, _ in jobs])
        except Exception:  # noqa: BLE001 - recovery must never stop the runner from starting
            log.exception("recovery hook %s failed", hook)
