"""The Preview page under AppTest, on the CPU path, with a really trained tiny model artefact.

AppTest cannot drive ``st.file_uploader`` or the camera, so the photo comes from the page's own
"Sample from the project" selector (the project's test photos) — the same predict path an upload
takes after decoding.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.annotations import Annotation, Task
from core.store import NewImage, Store
from tests.coral_runtime import models as M

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "preview.py")


@pytest.fixture(scope="module")
def colour_model() -> bytes:
    return M.trained_colour_classifier()


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(data_dir))
    monkeypatch.delenv("STUDIO_PASSWORD", raising=False)
    return data_dir


def _jpeg(im) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def studio(env: Path, colour_model: bytes) -> Store:
    store = Store(env)
    project = store.create_project("colours", Task.CLASSIFICATION)
    for lbl in M.COLOURS:
        store.add_class(project, lbl)
    items = []
    for i, (lbl, im) in enumerate(M.colour_images(2, seed=7)):
        items.append(NewImage(_jpeg(im), f"{lbl}_{i}.png", im.width, im.height,
                              (Annotation(lbl),), split="test"))
    store.add_images(project, items)
    M.write_artefact(store.root / "models" / "20260101-000000-abc123", colour_model,
                     task="classification", labels=list(M.COLOURS), input_size=32,
                     extra={"metrics": {"int8": {"accuracy": 1.0}}})
    return store


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120)


def test_no_model_yet(env):
    at = _page().run()
    assert not at.exception, at.exception
    assert any("No trained model yet" in i.value for i in at.info)


def test_sample_photo_prediction_with_latency(studio):
    at = _page().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="studio.preview.device").value == "cpu"
    assert any("No Coral Edge TPU was found" in c.value for c in at.caption)
    sample = at.selectbox(key="studio.preview.sample")
    assert len(sample.options) == 6
    # the first sample is a red photo: the trained model says so
    md = " ".join(m.value for m in at.markdown)
    assert "**red**" in md, md
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["This photo"].endswith(" ms")
    assert "Ran on **cpu**" in " ".join(c.value for c in at.caption)
    # pick a blue photo: the prediction follows
    blue = next(r.id for r in studio.list_images(studio.get_project("colours")) if r.class_label == "blue")
    at = sample.set_value(blue).run()
    assert not at.exception, at.exception
    assert "**blue**" in " ".join(m.value for m in at.markdown)


def test_latency_window_and_repeat(studio):
    at = _page().run()
    at.button(key="studio.preview.runs").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    p50_label = next(k for k in metrics if k.startswith("p50"))
    n = int(p50_label.removeprefix("p50 (last ").removesuffix(")"))
    assert n >= 21
    assert metrics[p50_label].endswith(" ms") and metrics[next(k for k in metrics if k.startswith("p95"))].endswith(" ms")


def test_threshold_is_live(studio):
    at = _page().run()
    at.slider(key="studio.preview.threshold").set_value(1.0).run()
    assert not at.exception, at.exception
    assert any("No class scores above the minimum" in m.value for m in at.markdown)


def test_live_webcam_explains_itself(studio):
    at = _page().run()
    at.radio(key="studio.preview.source").set_value("Live webcam").run()
    assert not at.exception, at.exception
    import importlib.util
    import sys

    infos = " ".join(i.value for i in at.info)
    if importlib.util.find_spec("streamlit_webrtc") is None:
        assert "streamlit-webrtc" in infos
    elif "aiortc" not in sys.modules:
        # this test process trained a model (TensorFlow loaded first): the page must not import
        # aiortc now (it would segfault) and says why
        assert "TensorFlow was loaded" in infos
    else:  # the component needs a real server runtime and browser (test_live_webcam_in_a_real_browser);
        # under AppTest (a mocked runtime) the page says it could not start, and keeps working
        assert any("Each frame goes through the same predictor" in c.value for c in at.caption)
