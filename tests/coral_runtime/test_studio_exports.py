"""Contract with the detection trainer's real export (core.training.detection.export): the SSDLite
graph with the fused TFLite_Detection_PostProcess op is 100% Edge TPU before the post-process op,
and the runtime maps its four outputs the way the manifest names them (untrained weights: this is
about the graph and the wiring, not accuracy)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coral_runtime.interpreter import DETECTION_SIGNATURE, make_interpreter
from coral_runtime.predictor import Predictor
from coral_runtime.preflight import preflight
from tests.coral_runtime import models as M

SIZE = 160


@pytest.fixture(scope="module")
def studio_detector(tmp_path_factory) -> Path:
    pytest.importorskip("core.training.detection.export")
    from core.training.detection.anchors import AnchorSpec, generate_anchors
    from core.training.detection.export import export_int8
    from core.training.detection.model import build_detector
    from core.training.detection.postprocess import PostprocessConfig

    det = build_detector(2, image_size=SIZE, alpha=0.35)
    anchors = generate_anchors(AnchorSpec(feature_sizes=det.feature_sizes))
    reps = [np.random.default_rng(i).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for i in range(4)]
    out = tmp_path_factory.mktemp("studio_det") / "model_int8.tflite"
    export_int8(det.model, anchors, reps, out, 2, PostprocessConfig(score_threshold=0.0, max_detections=10),
                work_dir=tempfile.mkdtemp())
    return out


def test_studio_detector_is_all_edge_tpu_before_the_postprocess(studio_detector):
    r = preflight(studio_detector)
    assert r.compilable and r.has_postprocess and r.first_cpu_op is None
    assert r.share_before_postprocess == 1.0
    assert "ops before the post-process op on TPU: 100%" in r.summary
    tail = [o.op for o in r.ops if o.placement == "cpu-tail"]
    assert tail[-1] == "TFLite_Detection_PostProcess" and set(tail) <= {"DEQUANTIZE", "TFLite_Detection_PostProcess"}


def test_runtime_maps_the_outputs_as_the_manifest_names_them(studio_detector, tmp_path):
    it = make_interpreter(studio_detector, "cpu")
    assert it.detection_roles() == DETECTION_SIGNATURE  # output_0 count, 1 scores, 2 classes, 3 boxes
    folder = M.write_artefact(tmp_path / "det", studio_detector.read_bytes(), task="detection",
                              labels=["raccoon", "cat"], input_size=SIZE, resize="letterbox")
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    pred = Predictor(folder, device="cpu").predict(img, threshold=0.0)
    assert pred.detections and len(pred.detections) <= 10
    for d in pred.detections:
        assert d.label in ("raccoon", "cat") and d.box.is_inside(320, 240) and 0.0 <= d.score <= 1.0
