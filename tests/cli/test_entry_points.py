"""The CLI's three doors: the `studio` console command, `python -m cli`, and the old `python -m core`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("dataset", "train", "evaluate", "jobs", "preflight", "compile", "predict", "build-image")


def _run(argv: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


def _lists_every_command(out: str) -> None:
    assert out.startswith("usage: studio"), out
    for cmd in COMMANDS:
        assert cmd in out, (cmd, out)


def test_python_m_cli_help():
    r = _run([sys.executable, "-m", "cli", "--help"])
    assert r.returncode == 0, r.stderr
    _lists_every_command(r.stdout)


def test_python_m_core_still_runs_the_cli_and_says_where_it_moved(tmp_path):
    r = _run([sys.executable, "-m", "core", "--help"])
    assert r.returncode == 0, r.stderr
    _lists_every_command(r.stdout)
    assert "moved to `studio`" in r.stderr and "python -m cli" in r.stderr
    # a real command, its exit code and JSON summary pass through unchanged
    r = _run([sys.executable, "-m", "core", "--data-dir", str(tmp_path / "d"), "dataset", "stats",
              "--project", "nope"])
    assert r.returncode == 2 and '"ok": false' in r.stdout.splitlines()[-1]


def test_pyproject_declares_the_studio_command():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["studio"] == "cli.__main__:run"
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --no-deps -e ." in makefile  # `make` installs it into the venv


def test_the_studio_console_command():
    exe = Path(sys.executable).parent / "studio"
    if not exe.exists():
        exe = shutil.which("studio")
    if exe is None:
        pytest.skip("the project is not installed in this venv yet (`make venv` installs the studio command)")
    r = _run([str(exe), "--help"], cwd=Path("/"))
    assert r.returncode == 0, r.stderr
    _lists_every_command(r.stdout)
