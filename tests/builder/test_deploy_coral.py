"""The Deploy page's coral profile under AppTest (no Docker engine): a download whose sha256 differs
from the pin stops the build and shows both hashes; the user confirms the file's hash, and the next
build takes it. An upload's hash is computed, shown and recorded. The .deb is the DUMMY of
tests/builder/dummy_deb.py, served from a loopback HTTP server."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder import jobs as bj
from builder import runtime_pins as rp
from core.jobs import JobTable, LocalRunner
from core.data.store import Store
from tests.builder.coral_fixtures import coral_wheelhouse, deb_folder  # noqa: F401
from tests.builder.test_runtime_pins import serve

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "deploy.py")
KEY = "studio.deploy."


@pytest.fixture
def studio(data_dir: Path, monkeypatch, tiny_artefact, coral_wheelhouse):  # noqa: F811 - a fixture
    from core.data import artefacts

    monkeypatch.setenv("STUDIO_DATA_DIR", str(data_dir))
    monkeypatch.delenv("STUDIO_PASSWORD", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    shutil.copytree(tiny_artefact, artefacts.models_dir(data_dir) / "20261125-000000-tiny01")
    store = Store(data_dir)
    yield store
    r = LocalRunner(store)
    for j in JobTable(store).list():
        r.wait(j.id, timeout=60)


def _texts(at: AppTest) -> str:
    parts = [e.value for e in at.error] + [s.value for s in at.success] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts + [m.value for m in at.markdown])


def _until(at: AppTest, what: str, timeout: float = 180) -> AppTest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        if what in _texts(at):
            return at
        time.sleep(0.5)
    raise AssertionError(f"{what!r} never shown:\n{_texts(at)}")


def test_a_mismatching_download_stops_and_a_confirmed_hash_is_used(studio, deb_folder, monkeypatch):
    good = rp.sha256_file(deb_folder / rp.LIBEDGETPU.filename)
    with serve(deb_folder) as base:
        monkeypatch.setattr(rp, "LIBEDGETPU", dataclasses.replace(
            rp.LIBEDGETPU, url=f"{base}/{rp.LIBEDGETPU.filename}", sha256="0" * 64))
        at = AppTest.from_file(PAGE, default_timeout=120).run()
        assert not at.exception, at.exception
        at.radio(key=KEY + "profile").set_value("coral")
        at.button[0].click().run()  # "Make the build context" (download is the default source)
        at = _until(at, "Checksum mismatch")
        assert f"expected sha256 {'0' * 64}, got {good}" in _texts(at)
        rec = bj.list_builds(studio.root)[0]
        assert rec["status"] == "checksum-mismatch" and rec["got_sha256"] == good
        # the build stopped while making the context: no .deb went into it, no cache entry either
        assert not list((bj.build_dir(studio.root, rec["id"]) / "context").rglob("*.deb"))
        assert not (bj.coral_state_dir(studio.root) / "cache" / rp.LIBEDGETPU.filename).exists()
        at.button(key=KEY + "confirm_hash").click().run()
        assert "Recorded. Build again" in _texts(at)
        assert rp.recorded_hashes(bj.coral_state_dir(studio.root))[rp.LIBEDGETPU.filename]["sha256"] == good
        at.button[0].click().run()
        at = _until(at, "no image was built")
    newest = bj.list_builds(studio.root)[0]
    ctx = Path(newest["context_dir"])
    assert (ctx / "deb" / rp.LIBEDGETPU.filename).read_bytes() == (deb_folder / rp.LIBEDGETPU.filename).read_bytes()
    assert f"ARG LIBEDGETPU_SHA256={good}" in (ctx / "Dockerfile").read_text()


def test_an_uploaded_deb_is_hashed_shown_and_recorded(studio, deb_folder):
    data = (deb_folder / rp.LIBEDGETPU.filename).read_bytes()
    sha = rp.sha256_file(deb_folder / rp.LIBEDGETPU.filename)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.radio(key=KEY + "profile").set_value("coral")
    at.radio(key=KEY + "deb_source").set_value("upload")
    at.button[0].click().run()
    assert "Choose the libedgetpu .deb to upload" in _texts(at)  # nothing chosen: said, no job
    assert at.session_state[KEY + "job"] is None
    at.file_uploader(key=KEY + "deb_upload").set_value((rp.LIBEDGETPU.filename, data, "application/octet-stream"))
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert f"{rp.LIBEDGETPU.filename}: sha256 `{sha}` — recorded now" in _texts(at)
    assert rp.recorded_hashes(bj.coral_state_dir(studio.root))[rp.LIBEDGETPU.filename]["sha256"] == sha
    at = _until(at, "no image was built")
    ctx = Path(bj.list_builds(studio.root)[0]["context_dir"])
    assert f"ARG LIBEDGETPU_SHA256={sha}" in (ctx / "Dockerfile").read_text()
