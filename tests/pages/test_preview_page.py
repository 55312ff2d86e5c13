"""The Preview page under AppTest, on the CPU path, with a really trained tiny model artefact.

AppTest cannot drive ``st.file_uploader`` or the camera, so the photo comes from the page's own
"Sample from the project" selector (the project's test photos) — the same predict path an upload
takes after decoding.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.data.annotations import Annotation, Task
from core.data.store import NewImage, Store
from tests.coral_runtime import models as M

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "preview.py")


@pytest.fixture(scope="module")
def colour_model() -> bytes:
    return M.trained_colour_classifier()


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


# -- the live webcam in a real browser ------------------------------------------------------------
DRIVER = r'''
import json, os, signal, socket, subprocess, sys, time
from playwright.sync_api import sync_playwright

root, data, sc, shot, log = sys.argv[1:6]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
env = {**os.environ, "STUDIO_DATA_DIR": data, "PYTHONPATH": sc}
env.pop("STUDIO_PASSWORD", None)
with open(log, "w") as fh:
    srv = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                            "--server.port", str(port), "--server.headless", "true",
                            "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
                           cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT)
out = {}
try:
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
        except OSError:
            time.sleep(0.5)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium"), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", "--allow-loopback-in-peer-connection",
            "--disable-features=WebRtcHideLocalIpsWithMdns"])
        pg = b.new_context(viewport={"width": 1400, "height": 1300}, permissions=["camera"]).new_page()
        states = []
        pg.on("console", lambda m: states.append(m.text) if "connectionstatechange" in m.text else None)
        pg.goto(url + "/", timeout=90000); pg.wait_for_timeout(4000)
        pg.goto(url + "/preview", timeout=90000)
        pg.get_by_text("Live webcam").click(timeout=90000)
        pg.frame_locator("iframe").first.get_by_role("button", name="START").click(timeout=90000)
        videos = []
        for _ in range(60):
            pg.wait_for_timeout(1000)
            videos = []
            for f in pg.frames:
                try:
                    videos += f.evaluate("() => Array.from(document.querySelectorAll('video'))"
                                         ".map(v => [v.readyState, v.currentTime, v.videoWidth])")
                except Exception:
                    pass
            if any(v[0] >= 2 and v[1] > 3 for v in videos):
                break
        speed = ""  # the Speed figures under the stream (a fragment refreshed every 2 s)
        for _ in range(20):
            metrics = pg.locator('[data-testid="stMetric"]')
            if metrics.count() >= 3:
                speed = " | ".join(metrics.nth(i).inner_text() for i in range(metrics.count()))
                break
            pg.wait_for_timeout(1000)
        pg.screenshot(path=shot, full_page=True)
        out = {"videos": videos, "states": states, "speed": speed}
        b.close()
finally:
    srv.send_signal(signal.SIGTERM)
    try:
        srv.wait(15)
    except subprocess.TimeoutExpired:
        srv.kill()
print("RESULT " + json.dumps(out))
'''

SITECUSTOMIZE = '''# test-only: let aioice offer 127.0.0.1 (it skips loopback) so WebRTC stays on loopback
try:
    import aioice.ice as _ice
    _ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []
except Exception:
    pass
'''


@pytest.mark.e2e
def test_live_webcam_in_a_real_browser(studio: Store, tmp_path: Path, output_dir: Path):
    """streamlit-webrtc with Streamlit 1.67: Chromium's fake camera -> WebRTC -> the predictor -> back.

    Runs in a private network namespace that has only ``lo`` (``unshare -n``), with aioice told to
    offer 127.0.0.1 and Chromium allowed to use loopback, so all traffic stays on 127.0.0.1.
    """
    import importlib.util
    import json
    import shutil
    import subprocess
    import sys

    if importlib.util.find_spec("streamlit_webrtc") is None:
        pytest.skip("streamlit-webrtc is not installed (the page explains the live mode is off)")
    if not Path("/usr/bin/chromium").exists() or shutil.which("unshare") is None:
        pytest.skip("needs Debian's chromium and unshare")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private network namespace here: {probe.stderr.decode()[:200]}")
    sc = tmp_path / "sc"
    sc.mkdir()
    (sc / "sitecustomize.py").write_text(SITECUSTOMIZE)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    shot, log = output_dir / "preview_live_webcam.png", tmp_path / "server.log"
    root = Path(__file__).resolve().parents[2]
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable, str(driver),
           str(root), str(studio.root), str(sc), str(shot), str(log)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, f"driver failed: {r.stdout[-2000:]} {r.stderr[-2000:]} {log.read_text()[-2000:]}"
    res = json.loads(line.removeprefix("RESULT "))
    assert any("connected" in s for s in res["states"]), res
    assert any(v[0] >= 2 and v[1] > 3 and v[2] > 0 for v in res["videos"]), res
    # p50/p95 over the last frames, filled on the video thread, shown by the page
    frames = re.search(r"p50 \(last (\d+) frames\)\s*\n?\s*([\d.]+) ms", res["speed"])
    assert frames and int(frames.group(1)) >= 3 and float(frames.group(2)) > 0, res["speed"]
    assert "invoke alone" in res["speed"], res["speed"]
    server_log = log.read_text(errors="replace")
    assert "Traceback" not in server_log, server_log[-3000:]


def _det_studio(env: Path, tmp_path: Path, score_threshold: float) -> Store:
    """A detection project and a tiny detector whose manifest records ``score_threshold`` (the
    trainer's *Minimum score*; the tiny detector's own post-process op keeps boxes from 0.05)."""
    from core.data.boxes import Box

    store = Store(env)
    project = store.create_project("critters", Task.DETECTION)
    store.add_class(project, "raccoon")
    items = [NewImage(_jpeg(im), f"p{i}.png", im.width, im.height,
                      (Annotation("raccoon", Box(4, 4, 30, 30)),), split="test")
             for i, (_, im) in enumerate(M.colour_images(1, size=64, seed=3))]
    store.add_images(project, items)
    M.write_artefact(store.root / "models" / "20260101-000000-def456", M.tiny_detector(tmp_path),
                     task="detection", labels=["raccoon", "cat"], input_size=32, resize="letterbox",
                     extra={"project": "critters", "detection": {"score_threshold": score_threshold,
                                                                 "iou_threshold": 0.5, "max_detections": 5}})
    return store


@pytest.fixture
def det_studio(env: Path, tmp_path: Path) -> Store:
    return _det_studio(env, tmp_path, 0.05)  # the minimum baked into the tiny detector's op


def test_detection_boxes_and_live_threshold(det_studio):
    at = _page().run()
    assert not at.exception, at.exception
    slider = at.slider(key="studio.preview.threshold")
    assert slider.value == pytest.approx(0.05) and slider.min == pytest.approx(0.05)
    md = " ".join(m.value for m in at.markdown)
    assert "object(s) at score ≥ 0.05" in md
    n = int(md.split("**")[1])
    assert n > 0  # an untrained head still scores above its minimum: boxes are listed and drawn
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == n
    at = at.slider(key="studio.preview.threshold").set_value(1.0).run()
    assert "**0** object(s)" in " ".join(m.value for m in at.markdown)


def test_score_threshold_starts_at_the_models_own_minimum(env, tmp_path):
    """A detector trained with Minimum score 0.30 drops lower boxes itself: the slider cannot go
    below 0.30, and the page says where that minimum comes from."""
    _det_studio(env, tmp_path, 0.3)
    at = _page().run()
    assert not at.exception, at.exception
    slider = at.slider(key="studio.preview.threshold")
    assert slider.min == pytest.approx(0.3) and slider.value == pytest.approx(0.3) and slider.max == 1.0
    captions = " ".join(c.value for c in at.caption)
    assert "This model drops boxes scoring below 0.30 by itself" in captions, captions
    assert "*Minimum score* set on the Train page" in captions
    assert "drops boxes scoring below 0.30" in slider.help


def _upload(studio_at: AppTest, name: str, data: bytes, mime: str = "image/jpeg") -> AppTest:
    at = studio_at.radio(key="studio.preview.source").set_value("Upload a photo").run()
    assert not at.exception, at.exception
    return at.file_uploader(key="studio.preview.upload").set_value((name, data, mime)).run()


def test_upload_of_a_non_photo_says_so_plainly(studio):
    at = _page().run()
    at = _upload(at, "fake.jpg", b"this is a text file, not a photo\n")
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert errors == ["fake.jpg is not a photo the studio can read (JPEG, PNG, BMP, WebP …)."], errors
    assert not any(bad in errors[0] for bad in ("0x", "BytesIO", "<", "identify"))
    assert not at.metric  # no prediction for it
    # the choice and the uploader have their own labels
    assert at.radio(key="studio.preview.source").label == "Where the photo comes from"
    assert at.file_uploader(key="studio.preview.upload").label == "Photo to try (JPEG, PNG, BMP or WebP)"


def test_upload_of_a_damaged_photo_says_so_plainly(studio):
    whole = _jpeg(M.colour_images(1, seed=1)[0][1])  # a PNG
    at = _upload(_page().run(), "cut.png", whole[: len(whole) // 2], "image/png")
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert errors == ["cut.png is damaged or incomplete, so it cannot be read as a photo. Try another copy of it."]


def test_upload_of_a_good_photo_is_predicted(studio):
    red = next(im for lbl, im in M.colour_images(1, seed=5) if lbl == "red")
    at = _upload(_page().run(), "red.png", _jpeg(red), "image/png")
    assert not at.exception, at.exception
    assert not at.error
    assert "**red**" in " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("keep,missing", [(0.7, True), (0.15, True), (0.002, False)])
def test_upload_of_a_cut_short_raccoon_photo_never_crashes(studio, raccoon_jpeg, keep, missing):
    """A real JPEG cut short: shown and predicted with the missing part grey (and said so), or,
    when nothing of the picture is there, a plain error — never an exception."""
    cut = raccoon_jpeg[: int(len(raccoon_jpeg) * keep)]
    at = _upload(_page().run(), "cut.jpg", cut)
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning if "cut short" in w.value]
    if missing:
        assert len(warnings) == 1 and "% of it (at the bottom) is missing" in warnings[0]
        assert not at.error and at.metric  # predicted
    else:
        assert not warnings and at.error and "cut.jpg" in at.error[0].value
