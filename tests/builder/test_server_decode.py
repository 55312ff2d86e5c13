"""The model server's decode path and HTTP fast paths: the server decodes with coral_runtime.decode
through ``Predictor.predict_bytes`` (the in-app predictor's own call — issue #7: the same bytes give
the same detections), ``JPEG_DRAFT`` switches the reduced-scale decode, and HTTP/1.1 keep-alive
(several requests on one connection, no Nagle stall). The decode itself is tested in
tests/coral_runtime/test_decode.py."""

from __future__ import annotations

import http.client
import io
import json
import time

import pytest
from PIL import Image

from tests.builder.conftest import model_server
from builder.docker import (compare_predictions, http_json, local_prediction, prediction_to_dict,
                            server_module)
from coral_runtime.predictor import Predictor



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
    return server_module().ModelService(tiny_artefact, device="cpu")


def test_server_decodes_with_the_shared_runtime_module(service, big_jpeg):
    import coral_runtime.decode as shared

    d = service.decode(big_jpeg)
    assert isinstance(d, shared.Decoded)  # not a copy of the decode: the coral_runtime module itself
    assert d.original_size == (1600, 1024) and d.scale == 8.0 and d.image.size == (200, 128)
    assert not hasattr(server_module(), "DRAFT_GAP") and not hasattr(server_module(), "Decoded")


def test_draft_can_be_switched_off(tiny_artefact, big_jpeg):
    full = server_module().ModelService(tiny_artefact, device="cpu", draft=False).decode(big_jpeg)
    assert full.scale == 1.0 and full.image.size == (1600, 1024)


def test_bad_and_too_large_images_are_api_errors(service, tiny_artefact, big_jpeg):
    mod = server_module()
    small_limit = mod.ModelService(tiny_artefact, device="cpu", max_pixels=1600 * 1024 - 1)
    for svc, body, status in ((service, b"", 400), (service, b"not an image", 400), (service, big_jpeg[:2000], 400),
                              (small_limit, big_jpeg, 413)):
        with pytest.raises(mod.ApiError) as exc:
            svc.predict(body)
        assert exc.value.status == status, (body[:20], exc.value.message)
    assert service.predict(big_jpeg)["classes"]


def test_server_answer_is_the_in_app_answer(service, tiny_artefact, big_jpeg):
    out = service.predict(big_jpeg)
    local = local_prediction(tiny_artefact, big_jpeg, device="cpu")
    assert out["classes"] == local["classes"]
    ok, msg = compare_predictions(out, local)
    assert ok, msg
    assert out["image"] == {"width": 1600, "height": 1024} and out["image_size"] == [1600, 1024]
    # and the reduced decode gives the answer a full decode gives
    ok, msg = compare_predictions(out, local_prediction(tiny_artefact, big_jpeg, device="cpu", draft=False))
    assert ok, msg


@pytest.fixture(scope="module")
def det_service(tmp_path_factory):
    from tests.coral_runtime.models import tiny_detector, write_artefact

    tmp = tmp_path_factory.mktemp("det")
    folder = write_artefact(tmp / "det-model", tiny_detector(tmp, num_classes=2, size=32), task="detection",
                            labels=["raccoon", "dog"], input_size=32, resize="letterbox")
    return folder, server_module().ModelService(folder, device="cpu")


def test_detections_equal_the_in_app_predictor_after_a_reduced_decode(det_service, big_jpeg, raccoon_jpeg):
    folder, svc = det_service
    assert svc.decode(big_jpeg).scale == 8.0  # letterbox 32 px: 1600x1024 decodes at 1/8
    rotated = _jpeg(Image.open(io.BytesIO(big_jpeg)), orientation=6)
    in_app = Predictor(folder, device="cpu")  # the studio's predictor, its own call
    for body in (big_jpeg, rotated, raccoon_jpeg):
        out = svc.predict(body, threshold=0.0)
        local = prediction_to_dict(in_app.predict_bytes(body, threshold=0.0))
        assert out["detections"] and out["detections"] == local["detections"]
        w, h = out["image_size"]
        assert out["image"] == {"width": w, "height": h} and local["image_size"] == [w, h]
        for d in out["detections"]:
            x0, y0, x1, y1 = d["box"]
            assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
    # the smoke test's reference (default threshold) agrees with the server too
    ok, msg = compare_predictions(svc.predict(big_jpeg), local_prediction(folder, big_jpeg, device="cpu"))
    assert ok, msg
    assert svc.predict(rotated)["image_size"] == [1024, 1600]


@pytest.fixture(scope="module")
def server_port(tiny_artefact, tmp_path_factory):
    # no PYTHONPATH: the template finds coral_runtime/ of the source tree by itself (in the image it
    # finds the copy shipped beside it)
    log = tmp_path_factory.mktemp("keepalive") / "server.log"
    with model_server(tiny_artefact, log, pythonpath=False, DEVICE="cpu") as srv:
        yield srv["port"]

def test_http_predict_equals_the_in_app_predictor_on_a_large_jpeg(server_port, tiny_artefact, big_jpeg):
    """Issue #7 over HTTP: /v1/predict answers what Predictor.predict_bytes answers in the studio."""
    status, out = http_json("POST", f"http://127.0.0.1:{server_port}/v1/predict", big_jpeg, "image/jpeg")
    assert status == 200, out
    local = local_prediction(tiny_artefact, big_jpeg, device="cpu")
    assert out["classes"] == local["classes"] and out["image_size"] == local["image_size"] == [1600, 1024]


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
