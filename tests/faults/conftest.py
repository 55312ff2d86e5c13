"""Fixtures for the fault tests: a small real file system that fills up (tmpfs, needs root)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


class SmallDisk:
    """A tmpfs mounted at ``path``; ``resize(mb)`` grows or shrinks it; ``free()`` its free bytes."""

    def __init__(self, path: Path):
        self.path = path

    def resize(self, mb: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={mb}m", str(self.path)], check=True, capture_output=True)

    def free(self) -> int:
        import os

        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int) -> Path:
        """Write a filler file so that only about ``leave`` bytes stay free."""
        filler = self.path / "filler.bin"
        with open(filler, "wb") as fh:
            fh.write(b"\x00" * max(0, self.free() - leave))
        return filler


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MB tmpfs (grown with ``resize``); skipped when this machine refuses to mount one."""
    path = tmp_path / "disk"
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small file system here (needs root): {proc.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
