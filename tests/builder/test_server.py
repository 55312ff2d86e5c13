"""The model server without Docker: server.py in a subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.builder.conftest import model_server
from builder.docker import compare_predictions, http_json, local_prediction

MAX_BODY = 400_000


@pytest.fixture(scope="module")
def server(tiny_artefact, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with model_server(tiny_artefact, log, MAX_BODY_BYTES=str(MAX_BODY), DEVICE="auto") as srv:
        yield srv

def _multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "----studio-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_healthz_and_model(server, tiny_artefact):
    status, health = http_json("GET", server["base"] + "/healthz")
    assert status == 200 and health["ok"] is True and health["device"] == "cpu"
    status, model = http_json("GET", server["base"] + "/v1/model")
    assert status == 200
    manifest = json.loads((tiny_artefact / "manifest.json").read_text())
    assert model["labels"] == manifest["labels"] and model["task"] == "classification"
    assert model["input_size"] == [48, 48] and model["device"] == "cpu"
    assert model["versions"]["ai-edge-litert"] and model["versions"]["numpy"] and model["versions"]["pillow"]


def test_predict_raw_and_multipart_equal_in_app_predictor(server, tiny_artefact, raccoon_jpeg):
    local = local_prediction(tiny_artefact, raccoon_jpeg)
    status, raw = http_json("POST", server["base"] + "/v1/predict", raccoon_jpeg, "image/jpeg")
    assert status == 200, raw
    ok, msg = compare_predictions(raw, local)
    assert ok, msg
    assert raw["image"] == {"width": local["image_size"][0], "height": local["image_size"][1]}
    body, ctype = _multipart("image", "r.jpg", raccoon_jpeg)
    status, multi = http_json("POST", server["base"] + "/v1/predict", body, ctype)
    assert status == 200, multi
    assert [c["label"] for c in multi["classes"]] == [c["label"] for c in raw["classes"]]
    assert [c["score"] for c in multi["classes"]] == [c["score"] for c in raw["classes"]]


def test_query_options(server, raccoon_jpeg):
    status, out = http_json("POST", server["base"] + "/v1/predict?top_k=1", raccoon_jpeg, "image/jpeg")
    assert status == 200 and len(out["classes"]) == 1
    status, out = http_json("POST", server["base"] + "/v1/predict?threshold=0.99", raccoon_jpeg, "image/jpeg")
    assert status == 200 and out["classes"] == []
    for bad in ("?threshold=2", "?threshold=x", "?top_k=0", "?top_k=x"):
        assert http_json("POST", server["base"] + "/v1/predict" + bad, raccoon_jpeg, "image/jpeg")[0] == 400


def test_errors_are_json(server):
    status, err = http_json("POST", server["base"] + "/v1/predict", b"this is not an image", "image/jpeg")
    assert status == 400 and "image" in err["error"] and err["status"] == 400
    status, err = http_json("POST", server["base"] + "/v1/predict", b"", "image/jpeg")
    assert status == 400
    status, err = http_json("POST", server["base"] + "/v1/predict", b"\0" * (MAX_BODY + 1), "image/jpeg")
    assert status == 413 and str(MAX_BODY) in err["error"]
    status, err = http_json("GET", server["base"] + "/nowhere")
    assert status == 404 and err["status"] == 404
    status, err = http_json("GET", server["base"] + "/v1/predict")
    assert status == 405
    body, ctype = _multipart("note2", "x.txt", b"")
    status, err = http_json("POST", server["base"] + "/v1/predict", body, ctype)
    assert status == 400


def test_concurrent_requests_are_all_correct(server, raccoon_dir):
    images = [p.read_bytes() for p in sorted((raccoon_dir / "images").glob("*.jpg"))[:4]]
    expected = [http_json("POST", server["base"] + "/v1/predict", im, "image/jpeg")[1]["classes"] for im in images]

    def one(i: int):
        status, out = http_json("POST", server["base"] + "/v1/predict", images[i % 4], "image/jpeg")
        return i, status, out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(32)))
    for i, status, out in results:
        assert status == 200
        assert out["classes"] == expected[i % 4]


def test_one_log_line_per_request(server):
    before = server["log"].read_text().count('"GET /healthz"')
    for _ in range(3):
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(server["base"] + "/healthz").read()
    time.sleep(0.2)
    assert server["log"].read_text().count('"GET /healthz"') == before + 3


def test_model_reports_requests_and_latency(tiny_artefact, raccoon_jpeg, tmp_path):
    with model_server(tiny_artefact, tmp_path / "server.log", DEVICE="cpu") as srv:
        status, model = http_json("GET", srv["base"] + "/v1/model")
        assert status == 200 and model["requests"] == 0
        assert model["latency"] == {"window": 0, "p50_ms": None, "p95_ms": None, "invoke_p50_ms": None}
        for _ in range(3):
            assert http_json("POST", srv["base"] + "/v1/predict", raccoon_jpeg, "image/jpeg")[0] == 200
        assert http_json("POST", srv["base"] + "/v1/predict", b"not an image", "image/jpeg")[0] == 400
        _, model = http_json("GET", srv["base"] + "/v1/model")
    lat = model["latency"]
    assert model["requests"] == 3 and lat["window"] == 3  # a refused image is not a prediction
    assert 0 < lat["invoke_p50_ms"] < lat["p50_ms"] <= lat["p95_ms"]  # the decode is part of the call
