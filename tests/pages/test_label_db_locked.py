"""The database is locked by another process for 10 s while the Label page saves a box (real SQLite
lock from a real second process): the save waits and succeeds; with a shorter wait it fails with a
message, the box stays in the page, and "Save again" stores it once the lock is gone."""

from __future__ import annotations

import subprocess
import sys
import time

from core.data.db import BUSY_TIMEOUT_ENV, DB_NAME
from tests.pages.test_label_page import SYNC, _app, _draw, detection  # noqa: F401 - the fixture

HOLD_S = 10.0
LOCKER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("COMMIT")
"""


def _lock(store, seconds: float) -> subprocess.Popen:
    """Another process holding the database's write lock for ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(store.root / DB_NAME), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


BOX = {"label": "raccoon", "left": 20, "top": 30, "width": 100, "height": 80}


def test_save_waits_for_the_lock_and_succeeds(detection):  # noqa: F811
    store, project, ids = detection
    at = _app()
    locker = _lock(store, HOLD_S)
    t0 = time.monotonic()
    try:
        _draw(at, [BOX])
        waited = time.monotonic() - t0
    finally:
        locker.wait(30)
    assert not at.exception and not at.error
    assert len(store.get_image(project, ids[0]).boxes) == 1
    assert waited >= HOLD_S - 1.5  # it really waited for the other process


def test_save_that_cannot_wait_keeps_the_box_and_retries(detection, monkeypatch):  # noqa: F811
    store, project, ids = detection
    monkeypatch.setenv(BUSY_TIMEOUT_ENV, "1")
    at = _app()
    locker = _lock(store, 4.0)
    try:
        _draw(at, [BOX])
        assert not at.exception
        assert any("Not saved: the database is busy" in e.value for e in at.error), [e.value for e in at.error]
        assert len(store.get_image(project, ids[0]).boxes) == 0
        pending = at.session_state["studio.label.conflict"]
        assert pending is not None and pending.busy and len(pending.pending) == 1  # the box is kept
    finally:
        locker.wait(30)
    at.button(key="studio.label.save_again").click().run()
    assert not at.exception and not at.error
    rec = store.get_image(project, ids[0])
    assert len(rec.boxes) == 1 and at.session_state[SYNC].baseline == list(rec.annotations)
