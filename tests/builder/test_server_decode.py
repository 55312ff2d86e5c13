"""The model server's fast paths: reduced-scale JPEG decode (``Image.draft``) mapped back to the
original pixels, EXIF orientation, and HTTP/1.1 keep-alive (several requests on one connection)."""

from __future__ import annotations

import http.client
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from builder.docker import compare_predictions, free_port, http_json, local_prediction

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "builder" / "templates" / "server.py"


def _server_module():
    spec = importlib.util.spec_from_file_location("studio_model_server_under_test", SERVER)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _jpeg(im: Image.Image, orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    im.save(buf, "JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_jpeg(raccoon_jpeg) -> bytes:
    """The raccoon photo as a 1600x1024 camera-sized JPEG."""
    im = Image.open(io.BytesIO(raccoon_jpeg)).convert("RGB").resize((1600, 1024), Image.Resampling.BICUBIC)
    return _jpeg(im)


@pytest.fixture(scope="module")
def service(tiny_artefact):
    return _server_module().ModelService(tiny_artefact, device="cpu")


def test_large_jpeg_is_decoded_at_reduced_scale(service, big_jpeg, raccoon_jpeg):
    # a 48 px classifier: 1600x1024 needs no more than 96x96 -> libjpeg's 1/8 scale, 200x128
    d = service.decode(big_jpeg)
    assert (d.width, d.height) == (1600, 1024) and d.scale == 8.0 and d.image.size == (200, 128)
    assert d.image.mode == "RGB"
    # never below twice the model input: the 650x417 photo can only be halved... or quartered
    small = service.decode(raccoon_jpeg)
    w, h = Image.open(io.BytesIO(raccoon_jpeg)).size
    assert (small.width, small.height) == (w, h)
    assert min(small.image.size) >= 2 * 48 and small.image.size == (w // small.scale, h // small.scale)
    # PNG has no reduced-scale decoding: full size
    buf = io.BytesIO()
    Image.open(io.BytesIO(big_jpeg)).save(buf, "PNG")
    p = service.decode(buf.getvalue())
    assert p.scale == 1.0 and p.image.size == (1600, 1024)


def test_draft_can_be_switched_off(tiny_artefact, big_jpeg):
    full = _server_module().ModelService(tiny_artefact, device="cpu", draft=False).decode(big_jpeg)
    assert full.scale == 1.0 and full.image.size == (1600, 1024)


def test_exif_rotated_jpeg_is_upright_at_reduced_scale(service, raccoon_jpeg):
    im = Image.open(io.BytesIO(raccoon_jpeg)).convert("RGB").resize((1600, 1000))
    # stored landscape with orientation 6 (rotate 90° clockwise to view): upright it is 1000x1600
    d = service.decode(_jpeg(im, orientation=6))
    assert (d.width, d.height) == (1000, 1600)
    assert d.image.size == (1000 // d.scale, 1600 // d.scale) and d.scale > 1


def test_reduced_decode_gives_the_in_app_answer(service, tiny_artefact, big_jpeg):
    out = service.predict(service.decode(big_jpeg))
    local = local_prediction(tiny_artefact, big_jpeg, device="cpu", full_decode=True)
    ok, msg = compare_predictions(out, local)
    assert ok, msg
    assert out["image"] == {"width": 1600, "height": 1024} and out["image_size"] == [1600, 1024]


@pytest.fixture(scope="module")
def det_service(tmp_path_factory):
    from tests.coral_runtime.models import tiny_detector, write_artefact

    tmp = tmp_path_factory.mktemp("det")
    folder = write_artefact(tmp / "det-model", tiny_detector(tmp, num_classes=2, size=32), task="detection",
                            labels=["raccoon", "dog"], input_size=32, resize="letterbox")
    return folder, _server_module().ModelService(folder, device="cpu")


def test_detection_boxes_are_in_original_pixels_after_a_reduced_decode(det_service, big_jpeg):
    folder, svc = det_service
    d = svc.decode(big_jpeg)
    assert d.scale == 8.0 and d.image.size == (200, 128)  # letterbox 32 px: 1600x1024 decodes at 1/8
    out = svc.predict(d, threshold=0.0)
    # the Predictor on the reduced image, its boxes scaled by 8: the server's boxes exactly
    reduced = svc.predictor.predict(d.image, threshold=0.0)
    assert out["detections"] and len(out["detections"]) == len(reduced.detections)
    for got, det in zip(out["detections"], reduced.detections):
        b = det.box
        want = [min(b.x_min * 8, 1600), min(b.y_min * 8, 1024), min(b.x_max * 8, 1600), min(b.y_max * 8, 1024)]
        assert got["label"] == det.label and got["box"] == pytest.approx(want, abs=0.08)
        x0, y0, x1, y1 = got["box"]
        assert 0 <= x0 <= x1 <= 1600 and 0 <= y0 <= y1 <= 1024
    assert out["image"] == {"width": 1600, "height": 1024}
    # and local_prediction (the smoke test's reference) decodes the way the server does
    ok, msg = compare_predictions(svc.predict(svc.decode(big_jpeg)), local_prediction(folder, big_jpeg, device="cpu"))
    assert ok, msg


@pytest.fixture(scope="module")
def server_port(tiny_artefact, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("keepalive") / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODEL_DIR": str(tiny_artefact), "PORT": str(port),
           "BIND_ADDRESS": "127.0.0.1", "DEVICE": "cpu"}
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, str(SERVER)], env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not answer:\n" + log.read_text()
            try:
                if http_json("GET", f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_keep_alive_serves_many_requests_on_one_connection(server_port, raccoon_jpeg):
    conn = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        assert first.status == 200 and first.version == 11 and json.loads(first.read())["ok"] is True
        sock = conn.sock
        answers = []
        for path in ("/v1/predict", "/v1/predict?top_k=1", "/nowhere", "/v1/predict"):
            conn.request("POST", path, body=raccoon_jpeg, headers={"Content-Type": "image/jpeg"})
            resp = conn.getresponse()
            answers.append((resp.status, json.loads(resp.read())))
            assert resp.getheader("Connection", "").lower() != "close"
        assert conn.sock is sock, "the server closed the keep-alive connection"
    finally:
        conn.close()
    assert [s for s, _ in answers] == [200, 200, 404, 200]
    assert len(answers[1][1]["classes"]) == 1 and answers[2][1]["status"] == 404
    assert answers[0][1]["classes"] == answers[3][1]["classes"] and answers[0][1]["classes"]


def test_keep_alive_answers_have_no_nagle_stall(server_port):
    """Headers and body leave in one write with TCP_NODELAY: a persistent connection does not wait
    for the client's delayed ACK (~40 ms on Linux) between them on every answer."""
    conn = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
    times = []
    try:
        for _ in range(15):
            t0 = time.perf_counter()
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["ok"] is True
            times.append(time.perf_counter() - t0)
    finally:
        conn.close()
    times.sort()
    assert times[len(times) // 2] < 0.02, f"median {times[len(times) // 2] * 1000:.1f} ms per /healthz"
