"""The model server with a detection model (no Docker): boxes in original-image pixels, equal to the
in-app Predictor's. The tiny SSD-like model with the fused post-process op comes from the coral
part's test models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builder.conftest import model_server
from builder.docker import compare_predictions, http_json, local_prediction



@pytest.fixture(scope="module")
def detection_artefact(tmp_path_factory) -> Path:
    from tests.coral_runtime.models import tiny_detector, write_artefact

    tmp = tmp_path_factory.mktemp("det")
    return write_artefact(tmp / "det-model", tiny_detector(tmp, num_classes=2, size=32), task="detection",
                          labels=["raccoon", "dog"], input_size=32, resize="letterbox")


@pytest.fixture(scope="module")
def det_server(detection_artefact, tmp_path_factory):
    log = tmp_path_factory.mktemp("detsrv") / "server.log"
    with model_server(detection_artefact, log) as srv:
        yield srv["base"]

def test_detection_boxes_match_the_in_app_predictor(det_server, detection_artefact, raccoon_jpeg):
    status, model = http_json("GET", det_server + "/v1/model")
    assert status == 200 and model["task"] == "detection" and model["labels"] == ["raccoon", "dog"]
    status, out = http_json("POST", det_server + "/v1/predict?threshold=0.0", raccoon_jpeg, "image/jpeg")
    assert status == 200, out
    local = local_prediction(detection_artefact, raccoon_jpeg)
    status, same_thr = http_json("POST", det_server + "/v1/predict", raccoon_jpeg, "image/jpeg")
    ok, msg = compare_predictions(same_thr, local)
    assert ok, f"{msg}\nserver: {same_thr['detections']}\nin-app: {local['detections']}"
    w, h = out["image"]["width"], out["image"]["height"]
    assert out["classes"] == [] and isinstance(out["detections"], list)
    for d in out["detections"]:
        x0, y0, x1, y1 = d["box"]
        assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
        assert d["label"] in ("raccoon", "dog")
