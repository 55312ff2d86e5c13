"""Browser tests: the real app under ``streamlit run`` on a loopback port, driven by Playwright
with Debian's chromium (``playwright install`` cannot download browsers here).

Fixtures:
  ``studio``      a running app on a fresh ``$STUDIO_DATA_DIR`` (``.url``, ``.data_dir``,
                  ``.store``), stopped by PID at the end of the test;
  ``browser``     one headless chromium per session;
  ``page``        a fresh browser page (1440x1000) per test;
  ``screenshot``  ``screenshot(page, "name")`` saves ``test-output/<name>.png``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Studio:
    url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def store(self):
        from core.data.store import Store

        return Store(self.data_dir)

    def page_url(self, path: str = "") -> str:
        return f"{self.url}/{path.lstrip('/')}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _wait_healthy(url: str, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"streamlit did not become healthy in {START_TIMEOUT}s:\n{log_path.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server we started (by its PID only)."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    """``streamlit run app.py`` on 127.0.0.1:<free port> with a fresh data directory."""
    data_dir = tmp_path / "studio-data"
    data_dir.mkdir()
    port = free_port()
    env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("STUDIO_PASSWORD", None)
    log_path = tmp_path / "streamlit.log"
    streamlit = Path(sys.executable).with_name("streamlit")
    cmd = [str(streamlit) if streamlit.exists() else shutil.which("streamlit") or "streamlit",
           "run", "app.py", "--server.address", "127.0.0.1", "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log_path)
        yield Studio(url, data_dir, proc, log_path)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def browser():
    """One headless Debian chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is expected at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(45_000)
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def screenshot(output_dir: Path) -> Callable[..., Path]:
    """``screenshot(page, name, full_page=True)`` -> the saved ``test-output/<name>.png``."""

    def take(pg, name: str, full_page: bool = True) -> Path:
        path = output_dir / f"{name}.png"
        pg.screenshot(path=str(path), full_page=full_page)
        return path

    return take
