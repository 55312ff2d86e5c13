"""`streamlit run app.py` really serves: HTTP 200 from / and /_stcore/health (loopback only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - 127.0.0.1 only
        return r.status, r.read()


@pytest.fixture
def password() -> str | None:
    return None


@pytest.fixture
def server(tmp_path: Path, password: str | None):
    port = _free_port()
    env = {**os.environ, "STUDIO_DATA_DIR": str(tmp_path / "data"), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    env.pop("STUDIO_PASSWORD", None)
    if password:
        env["STUDIO_PASSWORD"] = password
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail("streamlit exited early:\n" + (tmp_path / "server.log").read_text(errors="replace"))
            try:
                if _get(base + "/_stcore/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("streamlit did not answer within 90 s:\n"
                            + (tmp_path / "server.log").read_text(errors="replace"))
            time.sleep(0.3)
        yield base, tmp_path / "server.log"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # by PID, never by name
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()


def test_app_serves_index_and_health(server):
    base, log = server
    status, body = _get(base + "/")
    assert status == 200 and b"<html" in body.lower()
    status, body = _get(base + "/_stcore/health")
    assert status == 200 and body.strip() == b"ok"
    text = log.read_text(errors="replace")
    assert "Traceback" not in text


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.mark.e2e
@pytest.mark.parametrize("password", ["open sesame"])
def test_first_request_to_a_page_url_still_asks_for_the_password(server, password):
    """A fresh server runs pages/<page>.py directly for its very first request (Streamlit's pages/
    folder mode): the page must still show only the sign-in form, then work after signing in."""
    base, _ = server
    # its own thread: the e2e tests' session browser keeps Playwright's loop running in the main thread
    errors: list[BaseException] = []
    worker = threading.Thread(target=lambda: _sign_in_flow(base, password, errors))
    worker.start()
    worker.join(timeout=300)
    assert not worker.is_alive(), "the browser flow did not finish in 5 minutes"
    if errors:
        raise errors[0]


def _sign_in_flow(base: str, password: str, errors: list) -> None:
    try:
        _sign_in_steps(base, password)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
        errors.append(exc)


def _sign_in_steps(base: str, password: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(base + "/upload")
            page.wait_for_selector("h1", timeout=90_000)
            page.wait_for_timeout(1500)
            assert page.locator("h1").all_inner_texts() == ["Edge TPU Studio"]
            assert page.locator('[data-testid="stFileUploader"]').count() == 0
            page.fill('input[type="password"]', password)
            page.keyboard.press("Enter")
            page.get_by_text("There is no project yet").wait_for(timeout=60_000)
            assert page.locator("h1").all_inner_texts() == ["Upload"]
        finally:
            browser.close()
