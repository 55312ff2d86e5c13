"""AppTest fixtures: the whole studio (app.py + pages) on a fresh data directory."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


SCRIPT_CPU_S: list[float] = []  # CPU seconds of each app.py run (script thread only)


def _run_main_script(main_script_path: str) -> None:
    """What a running server does once st.navigation was called: run app.py every time."""
    module = sys.modules["__main__"]
    code = compile(Path(main_script_path).read_text(encoding="utf-8"), main_script_path, "exec")
    t0 = time.thread_time()
    try:
        exec(code, module.__dict__)  # noqa: S102 - the app's own entry script
    finally:
        SCRIPT_CPU_S.append(time.thread_time() - t0)


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The studio's environment for a page test: a fresh data dir, no password."""
    monkeypatch.setenv("STUDIO_DATA_DIR", str(data_dir))
    monkeypatch.delenv("STUDIO_PASSWORD", raising=False)
    return data_dir


@pytest.fixture
def make_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """A factory of AppTest instances of app.py, with the store in a tmp data dir.

    A server leaves Streamlit's "pages/ folder" mode after its first st.navigation call;
    AppTest re-enters that mode before every run (and would then run a page without
    app.py), so the tests route that fallback to app.py, as the server does.
    """
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("STUDIO_DATA_DIR", str(data_dir))
    monkeypatch.delenv("STUDIO_PASSWORD", raising=False)
    monkeypatch.setattr(script_runner, "_mpa_v1", _run_main_script)

    def make(timeout: float = 60) -> AppTest:
        return AppTest.from_file(APP, default_timeout=timeout)

    return make


@pytest.fixture
def app(make_app):
    """AppTest of the studio after its first run (the Projects page)."""
    at = make_app()
    at.run()
    assert not at.exception, at.exception
    return at
