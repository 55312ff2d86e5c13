"""The Deploy page under Streamlit's AppTest (the build job runs in the page's runner thread)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import JobTable, LocalRunner
from core.data.store import Store

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
    from core.data import artefacts

    dest = artefacts.models_dir(store.root) / "20261125-000000-tiny01"
    shutil.copytree(tiny_artefact, dest)
    yield dest
    r = LocalRunner(store)
    for j in JobTable(store).list():
        r.wait(j.id, timeout=60)


def field(at: AppTest, label: str):
    return next(t for t in at.text_input if t.label == label)


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
    # a plain verdict and what can still be done; the engine's address and error only under Technical details
    warning = at.warning[0].value
    assert warning.startswith("Docker is not running on this computer, so the robot image cannot be built or "
                              "tested here."), warning
    assert "build the image on a computer that has Docker" in warning
    assert not any(w in warning for w in ("unix://", "Error", "FileNotFoundError", "DOCKER_HOST", "dockerd"))
    details = next(e for e in at.expander if e.label == "Technical details")
    inside = "\n".join([m.value for m in details.markdown] + [c.value for c in details.code])
    assert "unix:///nonexistent/docker.sock" in inside and "No Docker engine is reachable" in inside
    assert "scripts/start_dockerd.sh" in inside and "DOCKER_HOST" in inside
    smoke = next(c for c in at.checkbox if c.label.startswith("Smoke test"))
    assert smoke.disabled and smoke.value is False  # nothing can run without an engine
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
    code = "\n".join(c.value for c in at.code)
    assert "--restart unless-stopped" in code and "--privileged --network host -v /dev:/dev -e PORT=8080" in code
    assert "curl -s http://ROBOT:8080/healthz" in code
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


@pytest.mark.docker
def test_push_form_pushes_and_forgets_the_password(with_model, store, offline_build, registry):
    """A build job of the same model (docker's layer cache: quick; its own tag, so the session image
    stays as it is), then the page's push form."""
    from core.jobs import JobState, run_foreground

    job = run_foreground(store, "build-image", {"artefact_id": "20261125-000000-tiny01", "profile": "offline",
                                                "tag": offline_build["result"].tag.replace("tiny-offline", "tiny-page"),
                                                "smoke_test": False,
                                                "base_image": offline_build["context"].spec.base_image})
    assert job.state == JobState.SUCCEEDED, job.error
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["studio.deploy.job"] = job.id
    at.run()
    assert not at.exception, at.exception
    assert "Push to a registry" in texts(at)
    pw = registry["password"]
    field(at, "Registry (host:port)").set_value(registry["address"])
    field(at, "Username").set_value(registry["username"])
    field(at, "Password").set_value("wrong-" + pw)
    next(b for b in at.button if b.label == "Push").click().run()
    assert "refused the credentials" in texts(at)
    field(at, "Registry (host:port)").set_value(registry["address"])
    field(at, "Username").set_value(registry["username"])
    field(at, "Password").set_value(pw)
    next(b for b in at.button if b.label == "Push").click().run()
    assert not at.exception, at.exception
    assert "digest `sha256:" in texts(at), texts(at)
    # the form was cleared on submit: the password is in no widget or session value any more
    assert field(at, "Password").value == ""
    state = at.session_state._state.filtered_state  # every key the session holds (widgets included)
    assert state and not [k for k, v in state.items() if pw in repr(v)]
    for p in store.root.rglob("*"):
        if p.is_file() and p.stat().st_size < 20_000_000:
            assert pw.encode() not in p.read_bytes(), p
