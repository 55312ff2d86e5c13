"""The access password and the warning for a studio reachable from the network."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def _sign_in(at, password: str):
    at.text_input(key="studio.auth.password").input(password)
    at.button(key="FormSubmitter:studio.auth.form-Sign in").click().run()
    return at


def test_password_gate(make_app, monkeypatch, store):
    store.create_project("Secret stuff", "detection")
    monkeypatch.setenv("STUDIO_PASSWORD", "correct horse")
    at = make_app()
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Edge TPU Studio"]  # the sign-in page, nothing else
    assert not at.sidebar.selectbox and not at.metric
    at.switch_page("pages/dataset.py").run()  # a page's URL (a bookmark): still only the sign-in form
    assert [t.value for t in at.title] == ["Edge TPU Studio"]
    assert not at.sidebar.selectbox and not at.metric and not at.tabs

    _sign_in(at, "wrong")
    assert any("not right" in e.value for e in at.error)
    assert [t.value for t in at.title] == ["Edge TPU Studio"]

    _sign_in(at, "correct horse")
    assert not at.exception
    assert at.title[0].value == "Dataset"  # the page asked for, once signed in
    assert at.sidebar.selectbox[0].value == "Secret stuff"
    at.switch_page("pages/projects.py").run()  # remembered for the session
    assert at.title[0].value == "Projects"


def test_a_page_run_without_app_py_still_asks(data_dir, monkeypatch, store):
    """Streamlit runs pages/<page>.py on its own for a fresh server's very first request."""
    store.create_project("Secret stuff", "detection")
    monkeypatch.setenv("STUDIO_DATA_DIR", str(data_dir))
    monkeypatch.setenv("STUDIO_PASSWORD", "pw")
    at = AppTest.from_file(str(ROOT / "pages" / "upload.py"), default_timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Edge TPU Studio"]
    assert not at.file_uploader


def _listen_on(monkeypatch, address):
    import streamlit as st

    orig = st.get_option
    monkeypatch.setattr(st, "get_option", lambda name: address if name == "server.address" else orig(name))


def _warned(make_app) -> bool:
    at = make_app()
    at.run()
    assert not at.exception
    return any("reachable from other computers" in w.value for w in at.warning)


def test_exposure_warning_only_when_reachable_without_password(make_app, monkeypatch):
    _listen_on(monkeypatch, "0.0.0.0")
    assert _warned(make_app)
    _listen_on(monkeypatch, None)  # Streamlit's default: every interface
    assert _warned(make_app)
    monkeypatch.setenv("STUDIO_PASSWORD", "pw")
    assert not _warned(make_app)
    monkeypatch.delenv("STUDIO_PASSWORD")
    for loopback in ("127.0.0.1", "localhost", "::1"):
        _listen_on(monkeypatch, loopback)
        assert not _warned(make_app)
