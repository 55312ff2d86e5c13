"""The Deploy page under Streamlit's AppTest (the build job runs in the page's runner thread)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import JobTable, LocalRunner
from core.store import Store

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "deploy.py")


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(data_dir))
    monkeypatch.delenv("STUDIO_PASSWORD", raising=False)
    return data_dir


@pytest.fixture
def no_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")


@pytest.fixture
def with_model(env, store: Store, tiny_artefact):
    from core import artefacts

    dest = artefacts.models_dir(store.root) / "20261125-000000-tiny01"
    shutil.copytree(tiny_artefact, dest)
    yield dest
    r = LocalRunner(store)
    for j in JobTable(store).list():
        r.wait(j.id, timeout=60)


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [s.value for s in at.subheader]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def test_without_models_it_points_to_training(env, no_engine):
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception, at.exception
    assert "No trained model yet" in texts(at)


def test_without_engine_it_says_so_and_offers_the_context(with_model, no_engine, store):
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception, at.exception
    assert "No Docker engine is reachable" in texts(at)
    assert at.text_input(key="studio.deploy.tag").value == "studio/raccoons-classification:20261125-000000-tiny01"
    at.radio(key="studio.deploy.profile").set_value("coral")
    at.button[0].click().run()  # "Make the build context"
    assert not at.exception, at.exception
    job_id = at.session_state["studio.deploy.job"]
    assert job_id
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        at.run()
        if "no image was built" in texts(at):
            break
        time.sleep(0.5)
    assert "no image was built" in texts(at), texts(at)
    assert "--privileged -v /dev/bus/usb:/dev/bus/usb --network host" in "\n".join(c.value for c in at.code)
    from builder import jobs as bj

    assert bj.load_build(store.root, job_id)["status"] == "no-engine"
    assert "Push" not in texts(at)  # nothing to push without an image


def test_bad_tag_is_refused_before_a_job(with_model, no_engine):
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.text_input(key="studio.deploy.tag").set_value("Bad Tag!")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "not a valid image reference" in texts(at)
    assert at.session_state["studio.deploy.job"] is None
