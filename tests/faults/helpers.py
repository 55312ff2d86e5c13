"""Real processes for the fault tests: start the CLI, wait for a moment on disk, kill -9 it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]


def start_cli(data_dir: Path, *args: str) -> subprocess.Popen:
    """``python -m cli --data-dir DATA …`` in its own process (output to files, never a full pipe)."""
    log = open(data_dir.parent / f"cli-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed by the OS
    env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "cli", "--data-dir", str(data_dir), *args], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 300.0,
              poll: float = 0.002) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()``; False when it ended (or timed out) first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            return True
        time.sleep(poll)
    proc.kill()
    proc.wait(30)
    return False


def any_file_under(folder: Path, pattern: str = "*") -> Callable[[], bool]:
    """A probe: some file matching ``pattern`` exists somewhere under ``folder``."""
    def probe() -> bool:
        try:
            return any(p.is_file() for p in folder.rglob(pattern))
        except OSError:
            return False
    return probe
